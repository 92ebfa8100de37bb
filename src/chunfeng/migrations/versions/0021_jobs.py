"""scheduled work and page-started tasks: one table of runs, one lease per periodic job

Revision ID: 0021
Revises: 0020
"""
import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'job_run',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.Column('heartbeat_at', sa.DateTime(), nullable=False),
        sa.Column('host', sa.String(length=100), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('started_by', sa.String(length=100), nullable=False),
        sa.Column('done', sa.Integer(), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('message', sa.String(length=500), nullable=False),
        sa.Column('summary', sa.Text(), nullable=False),
        sa.Column('error', sa.Text(), nullable=False),
        sa.Column('status', sa.Integer(), nullable=False),
        sa.Column('link', sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_job_run')),
    )
    op.create_index('ix_job_run_name_started', 'job_run', ['name', 'started_at'], unique=False)
    op.create_index(op.f('ix_job_run_state'), 'job_run', ['state'], unique=False)
    op.create_table(
        'job_lease',
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('holder', sa.String(length=200), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=True),
        sa.Column('due_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_job_lease')),
    )


def downgrade() -> None:
    op.drop_table('job_lease')
    op.drop_index(op.f('ix_job_run_state'), table_name='job_run')
    op.drop_index('ix_job_run_name_started', table_name='job_run')
    op.drop_table('job_run')
