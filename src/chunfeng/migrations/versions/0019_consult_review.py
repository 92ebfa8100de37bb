"""knowledge entries carry the documents they repeal and when an official last reviewed them

Revision ID: 0019
Revises: 0018
"""
import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('consult_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('repeals', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('reviewed_at', sa.DateTime(), nullable=True))
    # An entry an official saved was reviewed then; imported sample content was never reviewed.
    op.execute("UPDATE consult_entry SET reviewed_at = updated_at WHERE NOT sample")
    with op.batch_alter_table('consult_entry', schema=None) as batch_op:
        batch_op.alter_column('repeals', server_default=None, existing_type=sa.Text(), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('consult_entry', schema=None) as batch_op:
        batch_op.drop_column('reviewed_at')
        batch_op.drop_column('repeals')
