"""failed logins per user name and source address: a lockout locks an address out of a user name, not the account

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'org_login_failure',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('username', sa.String(length=64), nullable=False),
        sa.Column('source', sa.String(length=64), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('last_failure_at', sa.DateTime(), nullable=False),
        sa.Column('locked_until', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_org_login_failure')),
        sa.UniqueConstraint('username', 'source', name=op.f('uq_org_login_failure_username')),
    )
    op.create_index(op.f('ix_org_login_failure_last_failure_at'), 'org_login_failure', ['last_failure_at'],
                    unique=False)
    # The account-wide lock is gone: any lock running now is forgotten (it lasted minutes).
    with op.batch_alter_table('org_user', schema=None) as batch_op:
        batch_op.drop_column('locked_until')
        batch_op.drop_column('failed_logins')


def downgrade() -> None:
    with op.batch_alter_table('org_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failed_logins', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('locked_until', sa.DateTime(), nullable=True))
    op.drop_index(op.f('ix_org_login_failure_last_failure_at'), table_name='org_login_failure')
    op.drop_table('org_login_failure')
