"""rate limits held in the database, shared by every server process (per address, and a ceiling per endpoint)

Revision ID: 0023
Revises: 0022
"""
import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'rate_limit',
        sa.Column('bucket', sa.String(length=32), nullable=False),
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('tat', sa.Float(), nullable=False),
        sa.Column('refused', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('bucket', 'key', name=op.f('pk_rate_limit')),
    )
    with op.batch_alter_table('rate_limit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rate_limit_tat'), ['tat'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('rate_limit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rate_limit_tat'))
    op.drop_table('rate_limit')
