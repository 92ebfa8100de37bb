"""TOTP: the last accepted time step (a code is good once) and the server-issued secret awaiting confirmation

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('org_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('totp_pending_secret', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('org_user', schema=None) as batch_op:
        batch_op.drop_column('totp_pending_secret')
        batch_op.drop_column('totp_last_step')
