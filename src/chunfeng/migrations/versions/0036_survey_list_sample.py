"""survey: samples drawn from an uploaded list (the sample's source, the list's name and digest; the contacts the
list gave for the members drawn)

Revision ID: 0036
Revises: 0033
"""
import sqlalchemy as sa
from alembic import op


revision = '0036'
down_revision = '0033'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('survey_sample', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=16), server_default='registry', nullable=False))
        batch_op.add_column(sa.Column('list_name', sa.String(length=200), server_default='', nullable=False))
        batch_op.add_column(sa.Column('list_digest', sa.String(length=64), server_default='', nullable=False))
    op.create_table('survey_list_contact',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('address', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('person', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['survey_sample_member.id'], name=op.f('fk_survey_list_contact_member_id_survey_sample_member'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_list_contact')),
    sa.UniqueConstraint('member_id', 'channel', name=op.f('uq_survey_list_contact_member_id'))
    )


def downgrade() -> None:
    op.drop_table('survey_list_contact')
    with op.batch_alter_table('survey_sample', schema=None) as batch_op:
        batch_op.drop_column('list_digest')
        batch_op.drop_column('list_name')
        batch_op.drop_column('source')
