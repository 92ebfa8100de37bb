"""survey samples: strata with frame sizes, sampled taxpayers and their invitations, survey opt-outs

Revision ID: 0029
Revises: 0028
"""
import sqlalchemy as sa
from alembic import op

revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('survey_opt_out',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('credit_code', sa.String(length=18), nullable=False),
    sa.Column('survey_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['survey_id'], ['survey.id'], name=op.f('fk_survey_opt_out_survey_id_survey'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_opt_out')),
    sa.UniqueConstraint('credit_code', name=op.f('uq_survey_opt_out_credit_code'))
    )
    op.create_table('survey_sample',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('survey_id', sa.Integer(), nullable=False),
    sa.Column('dimensions', sa.JSON(), nullable=False),
    sa.Column('allocation', sa.String(length=16), nullable=False),
    sa.Column('requested', sa.Integer(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('frame_total', sa.Integer(), nullable=False),
    sa.Column('drawn', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('personal_data', sa.JSON(), nullable=False),
    sa.Column('roles', sa.JSON(), nullable=False),
    sa.Column('channels', sa.JSON(), nullable=False),
    sa.Column('public_url', sa.String(length=300), nullable=False),
    sa.Column('max_reminders', sa.Integer(), nullable=False),
    sa.Column('remind_after_days', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('invited_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['push_campaign.id'], name=op.f('fk_survey_sample_campaign_id_push_campaign')),
    sa.ForeignKeyConstraint(['survey_id'], ['survey.id'], name=op.f('fk_survey_sample_survey_id_survey'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_sample'))
    )
    with op.batch_alter_table('survey_sample', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_survey_sample_survey_id'), ['survey_id'], unique=False)

    op.create_table('survey_stratum',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sample_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=120), nullable=False),
    sa.Column('label', sa.String(length=300), nullable=False),
    sa.Column('frame_size', sa.Integer(), nullable=False),
    sa.Column('quota', sa.Integer(), nullable=False),
    sa.Column('drawn', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['sample_id'], ['survey_sample.id'], name=op.f('fk_survey_stratum_sample_id_survey_sample'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_stratum')),
    sa.UniqueConstraint('sample_id', 'key', name=op.f('uq_survey_stratum_sample_id'))
    )
    with op.batch_alter_table('survey_stratum', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_survey_stratum_sample_id'), ['sample_id'], unique=False)

    op.create_table('survey_sample_member',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sample_id', sa.Integer(), nullable=False),
    sa.Column('stratum_id', sa.Integer(), nullable=False),
    sa.Column('credit_code', sa.String(length=18), nullable=False),
    sa.Column('invitation_id', sa.Integer(), nullable=True),
    sa.Column('token', sa.Text(), nullable=False),
    sa.Column('opted_out', sa.Boolean(), nullable=False),
    sa.Column('reminders', sa.Integer(), nullable=False),
    sa.Column('last_sent_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['invitation_id'], ['survey_invitation.id'], name=op.f('fk_survey_sample_member_invitation_id_survey_invitation'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['sample_id'], ['survey_sample.id'], name=op.f('fk_survey_sample_member_sample_id_survey_sample'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['stratum_id'], ['survey_stratum.id'], name=op.f('fk_survey_sample_member_stratum_id_survey_stratum'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_sample_member')),
    sa.UniqueConstraint('invitation_id', name=op.f('uq_survey_sample_member_invitation_id')),
    sa.UniqueConstraint('sample_id', 'credit_code', name=op.f('uq_survey_sample_member_sample_id'))
    )
    with op.batch_alter_table('survey_sample_member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_survey_sample_member_credit_code'), ['credit_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_survey_sample_member_sample_id'), ['sample_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_survey_sample_member_stratum_id'), ['stratum_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('survey_sample_member', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_survey_sample_member_stratum_id'))
        batch_op.drop_index(batch_op.f('ix_survey_sample_member_sample_id'))
        batch_op.drop_index(batch_op.f('ix_survey_sample_member_credit_code'))

    op.drop_table('survey_sample_member')
    with op.batch_alter_table('survey_stratum', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_survey_stratum_sample_id'))

    op.drop_table('survey_stratum')
    with op.batch_alter_table('survey_sample', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_survey_sample_survey_id'))

    op.drop_table('survey_sample')
    op.drop_table('survey_opt_out')
