"""credit: the public violator list paged by keyset reads one index in its order: (published_on, id) of the entries
still listed (partial, removed_on IS NULL); it replaces the index on removed_on alone, which SQLite preferred (sorting
the whole list for every page; the expiry job has the index on off_on)

Revision ID: 0031
Revises: 0030
"""
import sqlalchemy as sa
from alembic import op


revision = '0031'
down_revision = '0030'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('credit_violator', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_violator_removed_on'))
        batch_op.create_index('ix_credit_violator_public_order', ['published_on', 'id'], unique=False,
                              sqlite_where=sa.text('removed_on IS NULL'), postgresql_where=sa.text('removed_on IS NULL'))


def downgrade() -> None:
    with op.batch_alter_table('credit_violator', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_violator_public_order')
        batch_op.create_index(batch_op.f('ix_credit_violator_removed_on'), ['removed_on'], unique=False)
