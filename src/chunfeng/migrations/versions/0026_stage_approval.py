"""push stages: the approval for scheduled sending (who, when, the preview's figures), the hold on its day, the
reminder of an unapproved stage come due

Revision ID: 0026
Revises: 0025
"""
import sqlalchemy as sa
from alembic import op

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('push_stage', schema=None) as batch_op:
        batch_op.add_column(sa.Column('approved_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('approved_by', sa.String(length=64), server_default='', nullable=False))
        batch_op.add_column(sa.Column('approved_unit_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('approved_taxpayers', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('approved_messages', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('held_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('held_reason', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('overdue_notified_at', sa.DateTime(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_push_stage_approved_unit_id_org_unit'), 'org_unit',
                                    ['approved_unit_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('push_stage', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_push_stage_approved_unit_id_org_unit'), type_='foreignkey')
        batch_op.drop_column('overdue_notified_at')
        batch_op.drop_column('held_reason')
        batch_op.drop_column('held_at')
        batch_op.drop_column('approved_messages')
        batch_op.drop_column('approved_taxpayers')
        batch_op.drop_column('approved_unit_id')
        batch_op.drop_column('approved_by')
        batch_op.drop_column('approved_at')
