"""policies say what their claim amounts are: reduction, deferral or timing (the dividend bill sums reductions only)

Revision ID: 0020
Revises: 0019
"""
import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('push_policy', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), server_default='reduction', nullable=False))
    # The shipped policies already seeded that are not reductions: the manufacturing SME deferrals pay later, the
    # one-off equipment deduction moves tax to later years; set here so the bill is right before the next seeding.
    op.execute("UPDATE push_policy SET kind = 'deferral' WHERE id IN ('ZZY-HJ-2021', 'ZZY-HJ-2022')")
    op.execute("UPDATE push_policy SET kind = 'timing' WHERE id IN ('SBQJ-2018', 'SBQJ-2021')")


def downgrade() -> None:
    with op.batch_alter_table('push_policy', schema=None) as batch_op:
        batch_op.drop_column('kind')
