"""survey: matrix questions (the rows a matrix question rates on its shared options)

Revision ID: 0032
Revises: 0031
"""
import sqlalchemy as sa
from alembic import op


revision = '0032'
down_revision = '0031'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('survey_question', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rows', sa.JSON(), nullable=True))
    op.execute('UPDATE survey_question SET "rows" = \'[]\'')
    with op.batch_alter_table('survey_question', schema=None) as batch_op:
        batch_op.alter_column('rows', existing_type=sa.JSON(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('survey_question', schema=None) as batch_op:
        batch_op.drop_column('rows')
