"""shipped policies carry a review note: why a fact could not be confirmed from the published document

Revision ID: 0018
Revises: 0017
"""
import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('push_policy', schema=None) as batch_op:
        batch_op.add_column(sa.Column('review', sa.Text(), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('push_policy', schema=None) as batch_op:
        batch_op.drop_column('review')
