"""one outbox for everything that leaves the system: inbox channel deliveries and push messages move into it

Every row of inbox_delivery, and every push_message not in-app, becomes an outbox_delivery with its state,
attempts, next attempt and last error, so what was pending is sent by the new sender (and what was `sending` when
the old one stopped still becomes `uncertain`, never re-sent); inbox_delivery and push_message's delivery columns
go. Ciphertexts (channel URLs, push addresses and bodies) are copied as stored; inbox bodies are encrypted on the way.

Revision ID: 0022
Revises: 0021
"""
import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

BATCH = 1000
PUSH_COLUMNS = ('state', 'attempts', 'next_attempt_at', 'last_error', 'sent_at')


def _push_columns() -> list[sa.Column]:
    """push_message's delivery columns as 0004 made them (an in-app message: sent when written)."""
    return [sa.Column('state', sa.String(length=16), server_default='sent', nullable=False),
            sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
            sa.Column('next_attempt_at', sa.DateTime(), nullable=True),
            sa.Column('last_error', sa.Text(), server_default='', nullable=False),
            sa.Column('sent_at', sa.DateTime(), nullable=True)]


def _create_outbox() -> None:
    op.create_table('outbox_delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('origin', sa.String(length=40), nullable=False),
    sa.Column('origin_id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=400), nullable=False),
    sa.Column('channel', sa.String(length=40), nullable=False),
    sa.Column('target', sa.Text(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('claimed_at', sa.DateTime(), nullable=True),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_delivery'))
    )
    with op.batch_alter_table('outbox_delivery', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_delivery_due', ['state', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_outbox_delivery_origin', ['origin', 'origin_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_delivery_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_delivery_scope'), ['scope'], unique=False)


def _move_inbox(conn) -> None:
    from chunfeng import crypto

    last = 0
    while True:  # few rows (one per message and channel), but a batch at a time all the same
        rows = conn.execute(sa.text(
            "SELECT d.id, d.message_id, u.path, c.url, m.title, m.body, d.state, d.attempts, d.last_error, "
            "m.created_at, d.sent_at FROM inbox_delivery d JOIN inbox_message m ON m.id = d.message_id "
            "JOIN inbox_channel c ON c.id = d.channel_id JOIN org_unit u ON u.id = m.unit_id "
            f"WHERE d.id > :last ORDER BY d.id LIMIT {BATCH}"), {"last": last}).fetchall()
        if not rows:
            return
        conn.execute(sa.text(
            "INSERT INTO outbox_delivery (origin, origin_id, scope, channel, target, title, body, state, attempts, "
            "last_error, created_at, sent_at) VALUES ('inbox.message', :message, :scope, 'url', :url, :title, :body, "
            ":state, :attempts, :error, :created, :sent)"),
            [{"message": r[1], "scope": r[2], "url": r[3], "title": r[4], "body": crypto.encrypt(r[5]) or "",
              "state": r[6], "attempts": r[7], "error": r[8], "created": r[9], "sent": r[10]} for r in rows])
        last = rows[-1][0]


def upgrade() -> None:
    _create_outbox()
    conn = op.get_bind()
    _move_inbox(conn)
    # One statement: a campaign's outbox may hold millions; the ciphertexts are copied as stored.
    conn.execute(sa.text(
        "INSERT INTO outbox_delivery (origin, origin_id, scope, channel, target, title, body, state, attempts, "
        "next_attempt_at, last_error, created_at, sent_at) "
        "SELECT 'push.message', m.id, u.path, m.channel, m.address, m.title, m.body, m.state, m.attempts, "
        "m.next_attempt_at, m.last_error, m.created_at, m.sent_at FROM push_message m "
        "JOIN push_campaign c ON c.id = m.campaign_id JOIN org_unit u ON u.id = c.unit_id "
        "WHERE m.channel <> 'inapp' ORDER BY m.id"))
    with op.batch_alter_table('inbox_delivery', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbox_delivery_message_id'))
        batch_op.drop_index(batch_op.f('ix_inbox_delivery_channel_id'))
    op.drop_table('inbox_delivery')
    with op.batch_alter_table('push_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_push_message_state'))
        for column in PUSH_COLUMNS:
            batch_op.drop_column(column)


def downgrade() -> None:
    from chunfeng import crypto

    conn = op.get_bind()
    with op.batch_alter_table('push_message', schema=None) as batch_op:
        for column in _push_columns():
            batch_op.add_column(column)
        batch_op.create_index(batch_op.f('ix_push_message_state'), ['state'], unique=False)
    conn.execute(sa.text("UPDATE push_message SET sent_at = created_at WHERE channel = 'inapp'"))
    for column in PUSH_COLUMNS:
        conn.execute(sa.text(
            f"UPDATE push_message SET {column} = (SELECT o.{column} FROM outbox_delivery o WHERE o.origin = "
            "'push.message' AND o.origin_id = push_message.id) WHERE channel <> 'inapp' AND EXISTS (SELECT 1 FROM "
            "outbox_delivery o WHERE o.origin = 'push.message' AND o.origin_id = push_message.id)"))
    op.create_table('inbox_delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['channel_id'], ['inbox_channel.id'], name=op.f('fk_inbox_delivery_channel_id_inbox_channel'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['message_id'], ['inbox_message.id'], name=op.f('fk_inbox_delivery_message_id_inbox_message'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox_delivery'))
    )
    with op.batch_alter_table('inbox_delivery', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbox_delivery_channel_id'), ['channel_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbox_delivery_message_id'), ['message_id'], unique=False)
    # The outbox holds the channel's URL, not its id: found again among the unit's channels by the URL itself.
    channels = {}
    for channel_id, unit_id, url in conn.execute(sa.text("SELECT id, unit_id, url FROM inbox_channel")):
        channels.setdefault((unit_id, crypto.decrypt(url)), channel_id)
    # The old sender knew no `uncertain`: what may have gone out (or was withdrawn) is kept from being sent, as
    # failed with its attempts used up (it gave up after 5).
    rows = conn.execute(sa.text(
        "SELECT o.origin_id, m.unit_id, o.target, CASE WHEN o.state IN ('sent', 'failed', 'pending') THEN o.state "
        "ELSE 'failed' END, CASE WHEN o.state IN ('sent', 'failed', 'pending') THEN o.attempts ELSE 5 END, "
        "o.last_error, o.sent_at FROM outbox_delivery o JOIN inbox_message m "
        "ON m.id = o.origin_id WHERE o.origin = 'inbox.message' ORDER BY o.id")).fetchall()
    moved = [{"message": r[0], "channel": channels[(r[1], crypto.decrypt(r[2]))], "state": r[3], "attempts": r[4],
              "error": r[5], "sent": r[6]} for r in rows if (r[1], crypto.decrypt(r[2])) in channels]
    if moved:
        conn.execute(sa.text("INSERT INTO inbox_delivery (message_id, channel_id, state, attempts, last_error, sent_at) "
                             "VALUES (:message, :channel, :state, :attempts, :error, :sent)"), moved)
    with op.batch_alter_table('outbox_delivery', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_delivery_scope'))
        batch_op.drop_index(batch_op.f('ix_outbox_delivery_created_at'))
        batch_op.drop_index('ix_outbox_delivery_origin')
        batch_op.drop_index('ix_outbox_delivery_due')
    op.drop_table('outbox_delivery')
