"""credit: the public violator list paged by keyset needs an index on its order (published_on, id); it replaces
the index on published_on alone, which it covers

Revision ID: 0031
Revises: 0030
"""
from alembic import op


revision = '0031'
down_revision = '0030'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('credit_violator', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_violator_published_on'))
        batch_op.create_index('ix_credit_violator_public_order', ['published_on', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('credit_violator', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_violator_public_order')
        batch_op.create_index(batch_op.f('ix_credit_violator_published_on'), ['published_on'], unique=False)
