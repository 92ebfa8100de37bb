"""audit entries say how their digest was made: unkeyed SM3 before, HMAC-SM3 under the audit key from now on

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Entries already written keep their unkeyed digests (version 0) and still verify; new ones are keyed.
    with op.batch_alter_table('org_audit', schema=None) as batch_op:
        batch_op.add_column(sa.Column('digest_version', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('org_audit', schema=None) as batch_op:
        batch_op.drop_column('digest_version')
