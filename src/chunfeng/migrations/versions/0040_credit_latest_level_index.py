"""credit: the register's latest level read from one index (credit code, year, level) in place of the credit-code
index it extends, so publishing every taxpayer's latest level for push rules never visits the table

Revision ID: 0040
Revises: 0036
"""
from alembic import op


revision = '0040'
down_revision = '0036'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('credit_rating', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_rating_credit_code'))
        batch_op.create_index('ix_credit_rating_latest', ['credit_code', 'year', 'level'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('credit_rating', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_rating_latest')
        batch_op.create_index(batch_op.f('ix_credit_rating_credit_code'), ['credit_code'], unique=False)
