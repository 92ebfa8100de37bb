"""credit: the register's year read from one index (year, credit code, level, score) in place of the year index it
extends, so the annual evaluation compares a year's stored levels and scores without visiting the table

Revision ID: 0044
Revises: 0040
"""
from alembic import op


revision = '0044'
down_revision = '0040'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('credit_rating', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_rating_year'))
        batch_op.create_index('ix_credit_rating_year_levels', ['year', 'credit_code', 'level', 'score'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('credit_rating', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_rating_year_levels')
        batch_op.create_index(batch_op.f('ix_credit_rating_year'), ['year'], unique=False)
