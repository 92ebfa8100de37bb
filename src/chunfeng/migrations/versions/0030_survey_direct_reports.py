"""survey: direct reports (measure 19), strata population sizes and response strata, themes linked to measures (measure 3)

Revision ID: 0030
Revises: 0029
"""
import sqlalchemy as sa
from alembic import op


revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('survey_direct_form',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('policy_id', sa.String(length=40), nullable=True),
    sa.Column('policy_name', sa.String(length=200), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('instructions', sa.Text(), nullable=False),
    sa.Column('issued_on', sa.Date(), nullable=False),
    sa.Column('working_days', sa.Integer(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['policy_id'], ['push_policy.id'], name=op.f('fk_survey_direct_form_policy_id_push_policy')),
    sa.ForeignKeyConstraint(['unit_id'], ['org_unit.id'], name=op.f('fk_survey_direct_form_unit_id_org_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_direct_form'))
    )
    with op.batch_alter_table('survey_direct_form', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_survey_direct_form_due_on'), ['due_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_survey_direct_form_unit_id'), ['unit_id'], unique=False)

    op.create_table('survey_direct_report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('form_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('problems', sa.Text(), nullable=False),
    sa.Column('reactions', sa.Text(), nullable=False),
    sa.Column('suggestions', sa.Text(), nullable=False),
    sa.Column('free_text', sa.Text(), nullable=False),
    sa.Column('submitted_by', sa.String(length=64), nullable=False),
    sa.Column('submitted_at', sa.DateTime(), nullable=True),
    sa.Column('reminders', sa.Integer(), nullable=False),
    sa.Column('reminded_on', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['form_id'], ['survey_direct_form.id'], name=op.f('fk_survey_direct_report_form_id_survey_direct_form'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['unit_id'], ['org_unit.id'], name=op.f('fk_survey_direct_report_unit_id_org_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_direct_report')),
    sa.UniqueConstraint('form_id', 'unit_id', name=op.f('uq_survey_direct_report_form_id'))
    )
    with op.batch_alter_table('survey_direct_report', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_survey_direct_report_form_id'), ['form_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_survey_direct_report_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_survey_direct_report_unit_id'), ['unit_id'], unique=False)

    op.create_table('survey_stratum_size',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('survey_id', sa.Integer(), nullable=False),
    sa.Column('stratum', sa.String(length=64), nullable=False),
    sa.Column('population', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['survey_id'], ['survey.id'], name=op.f('fk_survey_stratum_size_survey_id_survey'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_stratum_size')),
    sa.UniqueConstraint('survey_id', 'stratum', name=op.f('uq_survey_stratum_size_survey_id'))
    )
    with op.batch_alter_table('survey_stratum_size', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_survey_stratum_size_survey_id'), ['survey_id'], unique=False)

    op.create_table('survey_theme',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('survey_id', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('terms', sa.JSON(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('measures', sa.JSON(), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['survey_id'], ['survey.id'], name=op.f('fk_survey_theme_survey_id_survey'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_theme')),
    sa.UniqueConstraint('survey_id', 'label', name=op.f('uq_survey_theme_survey_id'))
    )
    with op.batch_alter_table('survey_theme', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_survey_theme_survey_id'), ['survey_id'], unique=False)

    with op.batch_alter_table('survey_invitation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stratum', sa.String(length=64), nullable=True))

    with op.batch_alter_table('survey_response', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stratum', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_survey_response_stratum'), ['stratum'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('survey_response', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_survey_response_stratum'))
        batch_op.drop_column('stratum')

    with op.batch_alter_table('survey_invitation', schema=None) as batch_op:
        batch_op.drop_column('stratum')

    with op.batch_alter_table('survey_theme', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_survey_theme_survey_id'))

    op.drop_table('survey_theme')
    with op.batch_alter_table('survey_stratum_size', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_survey_stratum_size_survey_id'))

    op.drop_table('survey_stratum_size')
    with op.batch_alter_table('survey_direct_report', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_survey_direct_report_unit_id'))
        batch_op.drop_index(batch_op.f('ix_survey_direct_report_state'))
        batch_op.drop_index(batch_op.f('ix_survey_direct_report_form_id'))

    op.drop_table('survey_direct_report')
    with op.batch_alter_table('survey_direct_form', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_survey_direct_form_unit_id'))
        batch_op.drop_index(batch_op.f('ix_survey_direct_form_due_on'))

    op.drop_table('survey_direct_form')
