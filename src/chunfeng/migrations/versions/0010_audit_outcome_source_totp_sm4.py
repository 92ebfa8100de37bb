"""audit entries' outcome and source address; TOTP secrets and push messages' recipients under SM4

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Entries written before keep both empty, and their digests stay as computed (see audit._digest_of).
    with op.batch_alter_table('org_audit', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outcome', sa.String(length=16), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('source', sa.String(length=64), nullable=False, server_default=''))
    with op.batch_alter_table('org_user', schema=None) as batch_op:
        batch_op.alter_column('totp_secret', type_=sa.Text(), existing_nullable=True)
    with op.batch_alter_table('push_message', schema=None) as batch_op:
        batch_op.alter_column('person', type_=sa.Text(), existing_nullable=False)
        batch_op.alter_column('address', type_=sa.Text(), existing_nullable=False)
    _convert(encrypting=True)


def _convert(*, encrypting: bool) -> None:
    from chunfeng import crypto

    convert = crypto.encrypt if encrypting else crypto.decrypt
    conn = op.get_bind()
    for table, columns in (("org_user", ("totp_secret",)), ("push_message", ("person", "address"))):
        select = f"SELECT id, {', '.join(columns)} FROM {table}"
        for row_id, *values in conn.execute(sa.text(select)).fetchall():
            if any(values):
                sets = ", ".join(f"{c} = :{c}" for c in columns)
                conn.execute(sa.text(f"UPDATE {table} SET {sets} WHERE id = :id"),
                             {"id": row_id, **{c: convert(v) for c, v in zip(columns, values, strict=True)}})


def downgrade() -> None:
    _convert(encrypting=False)
    with op.batch_alter_table('push_message', schema=None) as batch_op:
        batch_op.alter_column('person', type_=sa.String(length=64), existing_nullable=False)
        batch_op.alter_column('address', type_=sa.String(length=200), existing_nullable=False)
    with op.batch_alter_table('org_user', schema=None) as batch_op:
        batch_op.alter_column('totp_secret', type_=sa.String(length=64), existing_nullable=True)
    with op.batch_alter_table('org_audit', schema=None) as batch_op:
        batch_op.drop_column('source')
        batch_op.drop_column('outcome')
