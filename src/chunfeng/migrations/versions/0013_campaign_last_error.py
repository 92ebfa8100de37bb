"""a campaign's last error: a scheduled run that fails is recorded on its campaign, and the others go on

Revision ID: 0013
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('push_campaign', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_error', sa.Text(), nullable=False, server_default=''))


def downgrade() -> None:
    # Not a batch (copy, drop, rename) on SQLite: dropping push_campaign would cascade to push_message.
    op.drop_column('push_campaign', 'last_error')
