"""push messages' bodies and inbox channel URLs under SM4

A message body greets the contact by name and a channel URL often holds a token or a password; both were
plain text beside the SM4 columns (and so in every backup). No schema change: both columns stay Text.

Revision ID: 0016
Revises: 0015
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

COLUMNS = (("push_message", "body"), ("inbox_channel", "url"))
BATCH = 1000


def _convert(*, encrypting: bool) -> None:
    from chunfeng import crypto

    convert = crypto.encrypt if encrypting else crypto.decrypt
    conn = op.get_bind()
    for table, column in COLUMNS:
        last = 0
        while True:  # in id order, a batch at a time: the demo's outbox alone holds some 13,000 rows
            rows = conn.execute(sa.text(f"SELECT id, {column} FROM {table} WHERE id > :last ORDER BY id LIMIT {BATCH}"),
                                {"last": last}).fetchall()
            if not rows:
                break
            changed = [{"id": row_id, "value": convert(value)} for row_id, value in rows if value]
            if changed:
                conn.execute(sa.text(f"UPDATE {table} SET {column} = :value WHERE id = :id"), changed)
            last = rows[-1][0]


def upgrade() -> None:
    _convert(encrypting=True)


def downgrade() -> None:
    _convert(encrypting=False)
