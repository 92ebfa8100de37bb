"""hand-offs belong to the bureau of their region; consult answers carry the asker's token digest

Revision ID: 0017
Revises: 0016
"""
import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('consult_query', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token_digest', sa.String(length=64), nullable=True))
    with op.batch_alter_table('consult_handoff', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unit_id', sa.Integer(), nullable=True))
    # Existing hand-offs go to the bureau of their region as consult.policy decides for new ones: the unit with
    # that code, else its city's or province's, else the national administration.
    op.execute("""
        UPDATE consult_handoff SET unit_id = COALESCE(
            (SELECT id FROM org_unit WHERE code = consult_handoff.region),
            (SELECT id FROM org_unit WHERE code = SUBSTR(consult_handoff.region, 1, 4) || '00'),
            (SELECT id FROM org_unit WHERE code = SUBSTR(consult_handoff.region, 1, 2) || '0000'),
            (SELECT id FROM org_unit WHERE level = 'national'))
        WHERE LENGTH(consult_handoff.region) = 6""")
    op.execute("UPDATE consult_handoff SET unit_id = (SELECT id FROM org_unit WHERE level = 'national') "
               "WHERE unit_id IS NULL")
    with op.batch_alter_table('consult_handoff', schema=None) as batch_op:
        batch_op.alter_column('unit_id', existing_type=sa.Integer(), nullable=False)
        batch_op.create_index(batch_op.f('ix_consult_handoff_unit_id'), ['unit_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_consult_handoff_unit_id_org_unit'), 'org_unit', ['unit_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('consult_handoff', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_consult_handoff_unit_id_org_unit'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_consult_handoff_unit_id'))
        batch_op.drop_column('unit_id')
    with op.batch_alter_table('consult_query', schema=None) as batch_op:
        batch_op.drop_column('token_digest')
