"""credit: individual businesses' applications for a voluntary credit evaluation (measure 115)

Revision ID: 0028
Revises: 0025
"""
import sqlalchemy as sa
from alembic import op

revision = '0028'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'credit_evaluation',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('credit_code', sa.String(length=18), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('unit_id', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('applied_by', sa.String(length=100), nullable=False),
        sa.Column('applied_at', sa.DateTime(), nullable=False),
        sa.Column('decided_by', sa.String(length=100), nullable=True),
        sa.Column('decided_at', sa.DateTime(), nullable=True),
        sa.Column('rating_id', sa.Integer(), nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['rating_id'], ['credit_rating.id'], name=op.f('fk_credit_evaluation_rating_id_credit_rating')),
        sa.ForeignKeyConstraint(['unit_id'], ['org_unit.id'], name=op.f('fk_credit_evaluation_unit_id_org_unit')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_evaluation')),
    )
    with op.batch_alter_table('credit_evaluation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_evaluation_credit_code'), ['credit_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_evaluation_unit_id'), ['unit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_evaluation_state'), ['state'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('credit_evaluation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_evaluation_state'))
        batch_op.drop_index(batch_op.f('ix_credit_evaluation_unit_id'))
        batch_op.drop_index(batch_op.f('ix_credit_evaluation_credit_code'))
    op.drop_table('credit_evaluation')
