"""survey: invitations to a list of units (which unit each went to, its token for reminders, reminders sent);
outbox: an index the claim reads a queue's fresh rows of one origin from in id order

Revision ID: 0033
Revises: 0032
"""
import sqlalchemy as sa
from alembic import op


revision = '0033'
down_revision = '0032'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('survey_unit_invitation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('survey_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('invitation_id', sa.Integer(), nullable=False),
    sa.Column('token', sa.Text(), nullable=False),
    sa.Column('reminders', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_sent_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['invitation_id'], ['survey_invitation.id'], name=op.f('fk_survey_unit_invitation_invitation_id_survey_invitation'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['survey_id'], ['survey.id'], name=op.f('fk_survey_unit_invitation_survey_id_survey'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['unit_id'], ['org_unit.id'], name=op.f('fk_survey_unit_invitation_unit_id_org_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_unit_invitation')),
    sa.UniqueConstraint('invitation_id', name=op.f('uq_survey_unit_invitation_invitation_id')),
    sa.UniqueConstraint('survey_id', 'unit_id', name=op.f('uq_survey_unit_invitation_survey_id'))
    )
    with op.batch_alter_table('survey_unit_invitation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_survey_unit_invitation_survey_id'), ['survey_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_survey_unit_invitation_unit_id'), ['unit_id'], unique=False)
    with op.batch_alter_table('outbox_delivery', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_delivery_queue', ['origin', 'state', 'next_attempt_at', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox_delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_delivery_queue')
    with op.batch_alter_table('survey_unit_invitation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_survey_unit_invitation_unit_id'))
        batch_op.drop_index(batch_op.f('ix_survey_unit_invitation_survey_id'))
    op.drop_table('survey_unit_invitation')
