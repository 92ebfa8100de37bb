"""credit: each taxpayer's level per year with its deductions, and the published major tax violators

Revision ID: 0024
Revises: 0023
"""
import sqlalchemy as sa
from alembic import op

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'credit_rating',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('credit_code', sa.String(length=18), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('score', sa.Float(), nullable=False),
        sa.Column('level', sa.String(length=1), nullable=False),
        sa.Column('deductions', sa.JSON(), nullable=False),
        sa.Column('unit_id', sa.Integer(), nullable=False),
        sa.Column('imported_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['unit_id'], ['org_unit.id'], name=op.f('fk_credit_rating_unit_id_org_unit')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_rating')),
        sa.UniqueConstraint('credit_code', 'year', name=op.f('uq_credit_rating_credit_code')),
    )
    with op.batch_alter_table('credit_rating', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_rating_credit_code'), ['credit_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_rating_year'), ['year'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_rating_level'), ['level'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_rating_unit_id'), ['unit_id'], unique=False)
    op.create_table(
        'credit_violator',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('credit_code', sa.String(length=18), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('unit_id', sa.Integer(), nullable=False),
        sa.Column('case_nature', sa.String(length=100), nullable=False),
        sa.Column('facts', sa.Text(), nullable=False),
        sa.Column('amount_unpaid', sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column('amount_penalty', sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column('published_on', sa.Date(), nullable=False),
        sa.Column('off_on', sa.Date(), nullable=False),
        sa.Column('removed_on', sa.Date(), nullable=True),
        sa.Column('removal_reason', sa.String(length=16), nullable=True),
        sa.Column('removal_note', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['unit_id'], ['org_unit.id'], name=op.f('fk_credit_violator_unit_id_org_unit')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_violator')),
    )
    with op.batch_alter_table('credit_violator', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_violator_credit_code'), ['credit_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_violator_unit_id'), ['unit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_violator_published_on'), ['published_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_violator_off_on'), ['off_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_violator_removed_on'), ['removed_on'], unique=False)


def downgrade() -> None:
    op.drop_table('credit_violator')
    op.drop_table('credit_rating')
