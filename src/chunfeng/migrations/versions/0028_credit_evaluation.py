"""credit: individual businesses' applications for a voluntary credit evaluation (measure 115), risk tiers (95)

Revision ID: 0028
Revises: 0027
"""
import sqlalchemy as sa
from alembic import op

revision = '0028'
down_revision = '0027'
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
    op.create_table(
        'credit_risk',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('credit_code', sa.String(length=18), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('unit_id', sa.Integer(), nullable=False),
        sa.Column('tier', sa.String(length=1), nullable=False),
        sa.Column('indicators', sa.JSON(), nullable=False),
        sa.Column('computed_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['unit_id'], ['org_unit.id'], name=op.f('fk_credit_risk_unit_id_org_unit')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_risk')),
        sa.UniqueConstraint('credit_code', name=op.f('uq_credit_risk_credit_code')),
    )
    with op.batch_alter_table('credit_risk', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_risk_unit_id'), ['unit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_risk_tier'), ['tier'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('credit_risk', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_risk_tier'))
        batch_op.drop_index(batch_op.f('ix_credit_risk_unit_id'))
    op.drop_table('credit_risk')
    with op.batch_alter_table('credit_evaluation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_evaluation_state'))
        batch_op.drop_index(batch_op.f('ix_credit_evaluation_unit_id'))
        batch_op.drop_index(batch_op.f('ix_credit_evaluation_credit_code'))
    op.drop_table('credit_evaluation')
