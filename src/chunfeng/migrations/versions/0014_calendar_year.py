"""calendar years imported from the State Council's holiday notices, with the STA's filing deadlines

Revision ID: 0014
Revises: 0013
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'calendar_year',
        sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('holidays', sa.JSON(), nullable=False),
        sa.Column('makeup_days', sa.JSON(), nullable=False),
        sa.Column('deadlines', sa.JSON(), nullable=False),
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('deadline_source', sa.Text(), nullable=False),
        sa.Column('notice_text', sa.Text(), nullable=False),
        sa.Column('updated_by', sa.String(length=100), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('year', name=op.f('pk_calendar_year')),
    )


def downgrade() -> None:
    op.drop_table('calendar_year')
