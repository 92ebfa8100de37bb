"""credit repair (measures 117, 118): applications with their decision and the rating before and after, and their evidence files

Revision ID: 0027
Revises: 0026
"""
import sqlalchemy as sa
from alembic import op


revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('credit_repair',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('credit_code', sa.String(length=18), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('rating_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('path', sa.String(length=16), nullable=False),
    sa.Column('indicator', sa.String(length=100), nullable=False),
    sa.Column('points', sa.Float(), nullable=False),
    sa.Column('failed_on', sa.Date(), nullable=False),
    sa.Column('corrected_on', sa.Date(), nullable=False),
    sa.Column('correction', sa.Text(), nullable=False),
    sa.Column('court', sa.String(length=200), nullable=False),
    sa.Column('ruling_number', sa.String(length=100), nullable=False),
    sa.Column('ruling_on', sa.Date(), nullable=True),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('applicant', sa.String(length=64), nullable=False),
    sa.Column('on_behalf', sa.Boolean(), nullable=False),
    sa.Column('applied_at', sa.DateTime(), nullable=False),
    sa.Column('applied_on', sa.Date(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('proposal', sa.JSON(), nullable=False),
    sa.Column('score_before', sa.Float(), nullable=False),
    sa.Column('level_before', sa.String(length=1), nullable=False),
    sa.Column('score_after', sa.Float(), nullable=True),
    sa.Column('level_after', sa.String(length=1), nullable=True),
    sa.Column('decided_by', sa.String(length=64), nullable=True),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('violator_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['rating_id'], ['credit_rating.id'], name=op.f('fk_credit_repair_rating_id_credit_rating')),
    sa.ForeignKeyConstraint(['unit_id'], ['org_unit.id'], name=op.f('fk_credit_repair_unit_id_org_unit')),
    sa.ForeignKeyConstraint(['violator_id'], ['credit_violator.id'], name=op.f('fk_credit_repair_violator_id_credit_violator')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_repair'))
    )
    with op.batch_alter_table('credit_repair', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_repair_applied_on'), ['applied_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_repair_credit_code'), ['credit_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_repair_due_on'), ['due_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_repair_path'), ['path'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_repair_rating_id'), ['rating_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_repair_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_repair_unit_id'), ['unit_id'], unique=False)

    op.create_table('credit_repair_evidence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('repair_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('uploaded_by', sa.String(length=64), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['repair_id'], ['credit_repair.id'], name=op.f('fk_credit_repair_evidence_repair_id_credit_repair'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_repair_evidence'))
    )
    with op.batch_alter_table('credit_repair_evidence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_repair_evidence_repair_id'), ['repair_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_repair_evidence_sha256'), ['sha256'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('credit_repair_evidence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_repair_evidence_sha256'))
        batch_op.drop_index(batch_op.f('ix_credit_repair_evidence_repair_id'))

    op.drop_table('credit_repair_evidence')
    with op.batch_alter_table('credit_repair', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_repair_unit_id'))
        batch_op.drop_index(batch_op.f('ix_credit_repair_state'))
        batch_op.drop_index(batch_op.f('ix_credit_repair_rating_id'))
        batch_op.drop_index(batch_op.f('ix_credit_repair_path'))
        batch_op.drop_index(batch_op.f('ix_credit_repair_due_on'))
        batch_op.drop_index(batch_op.f('ix_credit_repair_credit_code'))
        batch_op.drop_index(batch_op.f('ix_credit_repair_applied_on'))

    op.drop_table('credit_repair')
