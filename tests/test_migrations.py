"""Migrations on a real database file: 0010 encrypts what 0009 left in clear, keeps old audit digests valid,
and goes back; the newest schema is the one the models describe. (SQLite: each test makes its own file.)"""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, select, text

from chunfeng.db import Base, Database
from chunfeng.org import audit
from chunfeng.org.models import User
from chunfeng.push.models import PushMessage
from tests.test_outbox import receiver  # noqa: F401  (the loopback webhook)

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def _rows_at_0009(url: str) -> None:
    with create_engine(url).begin() as conn:
        conn.execute(text("INSERT INTO org_unit (id, code, name, level, path, sort, builtin, synthetic) "
                          "VALUES (1, '000000', '国家税务总局', 'national', '/000000/', 0, 1, 0)"))
        conn.execute(text("INSERT INTO org_user (id, username, display_name, unit_id, roles, password_hash, active, "
                          "created_at, failed_logins, must_change_password, totp_secret) VALUES (1, 'root', 'root', 1, "
                          "'admin', 'x', 1, '2026-01-01', 0, 0, :secret)"), {"secret": SECRET})
        conn.execute(text("INSERT INTO push_campaign (id, name, kind, unit_id, policies, audience, channels, year, month, "
                          "reminder_day, last_days, state, created_by, created_at) VALUES (1, 'c', 'policy', 1, '[]', '', "
                          "'[]', 2022, 7, 10, 2, 'active', 'root', '2026-01-01')"))
        conn.execute(text("INSERT INTO push_message (id, campaign_id, stage, policy_id, credit_code, taxpayer_name, role, "
                          "person, channel, address, title, body, link, state, attempts, last_error, created_at) VALUES "
                          "(1, 1, 'first', 'P', '91110000000000000X', 'T', '法定代表人', '李四', 'sms', '13900001111', "
                          "'t', 'b', '', 'pending', 0, '', '2026-01-01')"))
        # An audit entry as written before 0010: ten fields in its digest.
        fields = ["1", "2026-01-01T00:00:00.000000Z", "root", "000000", "test.old", "", "", "null", "null", audit.GENESIS]
        conn.execute(text("INSERT INTO org_audit (id, seq, at, actor, actor_unit, action, object_type, object_id, before, "
                          "after, prev_digest, digest) VALUES (1, 1, :at, 'root', '000000', 'test.old', '', '', 'null', "
                          "'null', :prev, :digest)"), {"at": fields[1], "prev": audit.GENESIS, "digest": audit.sm3("\x1f".join(fields))})


def test_0010_encrypts_at_rest_keeps_the_chain_and_goes_back(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    db = Database(url)
    config = db.alembic_config()
    command.upgrade(config, "0009")
    _rows_at_0009(url)
    command.upgrade(config, "head")
    with db.read() as s:
        raw = s.execute(text("SELECT u.totp_secret, m.person, m.address FROM org_user u, push_message m")).one()
        assert all(v.startswith("sm4gcm:") for v in raw) and SECRET not in raw[0] and "13900001111" not in raw[2]
        assert s.scalar(select(User.totp_secret)) == SECRET
        assert s.execute(select(PushMessage.person, PushMessage.address)).one() == ("李四", "13900001111")
        assert audit.verify(s).ok
    with db.write() as s:
        audit.record(s, actor=s.scalar(select(User)), action="test.new", source="10.0.0.1")
    with db.read() as s:
        assert audit.verify(s).ok and audit.verify(s).checked == 2
    command.downgrade(config, "0009")
    with db.read() as s:
        assert s.execute(text("SELECT u.totp_secret, m.address FROM org_user u, push_message m")).one() == (SECRET, "13900001111")


def test_the_newest_schema_is_what_the_models_describe(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'n.db'}")
    command.upgrade(db.alembic_config(), "head")
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata)
    assert diff == []


def test_0016_encrypts_message_bodies_and_channel_urls_and_goes_back(tmp_path):
    from chunfeng.inbox.models import Channel

    url = f"sqlite:///{tmp_path / 'b.db'}"
    db = Database(url)
    config = db.alembic_config()
    command.upgrade(config, "0009")
    _rows_at_0009(url)
    command.upgrade(config, "0010")
    body, hook = "李四您好:贵单位可享受小微企业所得税优惠。", "dingtalk://secret-token-1234"
    with create_engine(url).begin() as conn:
        conn.execute(text("UPDATE push_message SET body = :body"), {"body": body})
        conn.execute(text("INSERT INTO inbox_channel (id, unit_id, url, label) VALUES (1, 1, :url, '值班群')"), {"url": hook})
    command.upgrade(config, "0016")
    with db.read() as s:
        raw = s.execute(text("SELECT m.body, c.url FROM push_message m, inbox_channel c")).one()
        assert all(v.startswith("sm4gcm:") for v in raw) and "李四" not in raw[0] and "secret" not in raw[1]
        assert (s.scalar(select(PushMessage.body)), s.scalar(select(Channel.url))) == (body, hook)
    command.downgrade(config, "0010")
    with db.read() as s:
        assert tuple(s.execute(text("SELECT m.body, c.url FROM push_message m, inbox_channel c")).one()) == (body, hook)


def test_0022_moves_pending_deliveries_into_the_outbox_which_sends_them_once_and_goes_back(tmp_path, receiver):  # noqa: F811
    """An upgrade from 0020 with a unit's notice and a taxpayer's SMS still pending, and an SMS left `sending` by a
    sender that stopped: the new sender sends the pending ones, never the one that may have gone out."""
    from chunfeng import crypto, outbox
    from chunfeng.settings import get_settings

    url = f"sqlite:///{tmp_path / 'o.db'}"
    db = Database(url)
    config = db.alembic_config()
    command.upgrade(config, "0009")
    _rows_at_0009(url)  # push message 1: an SMS, pending
    command.upgrade(config, "0020")
    with create_engine(url).begin() as conn:
        conn.execute(text("UPDATE org_unit SET path = '/000000/'"))
        conn.execute(text("INSERT INTO push_message (id, campaign_id, stage, policy_id, credit_code, taxpayer_name, role, "
                          "person, channel, address, title, body, link, state, attempts, next_attempt_at, last_error, "
                          "created_at) SELECT id + k, campaign_id, stage || k, policy_id, credit_code, taxpayer_name, role, "
                          "person, c, address, title, body, link, s, attempts, '2026-01-01 00:10:00', last_error, "
                          "created_at FROM push_message, (SELECT 1 AS k, 'sms' AS c, 'sending' AS s UNION ALL "
                          "SELECT 2, 'inapp', 'sent') WHERE id = 1"))
        conn.execute(text("INSERT INTO inbox_message (id, unit_id, kind, title, body, link, sender, created_at) "
                          "VALUES (1, 1, 'notice', '督办单', '请于五日内答复', '', 'root', '2026-01-01')"))
        conn.execute(text("INSERT INTO inbox_channel (id, unit_id, url, label) VALUES (1, 1, :url, '值班群')"),
                     {"url": crypto.encrypt(receiver.url)})
        conn.execute(text("INSERT INTO inbox_delivery (id, message_id, channel_id, state, attempts, last_error) "
                          "VALUES (1, 1, 1, 'pending', 0, '')"))
    command.upgrade(config, "head")
    with db.read() as s:
        moved = {(d.origin, d.origin_id): (d.state, d.channel, d.target, d.body) for d in s.scalars(select(outbox.Delivery))}
        raw_body = s.scalar(text("SELECT body FROM outbox_delivery WHERE origin = 'inbox.message'"))
    assert moved == {("inbox.message", 1): ("pending", "url", receiver.url, "请于五日内答复"),
                     ("push.message", 1): ("pending", "sms", "13900001111", "b"),
                     ("push.message", 2): ("sending", "sms", "13900001111", "b")}
    assert raw_body.startswith("sm4gcm:")
    settings = get_settings().model_copy(update={"push_channels": {"sms": receiver.url + "?to={address}"}})
    run = outbox.deliver_due(db, settings=settings)
    assert (run.sent, run.failed, run.uncertain) == (2, 0, 1)  # the stale `sending` one: past its lease
    assert sorted(receiver.titles) == ["t", "督办单"]
    assert outbox.deliver_due(db, settings=settings).sent == 0
    command.downgrade(config, "0020")
    with db.read() as s:
        assert s.execute(text("SELECT state, attempts FROM inbox_delivery")).all() == [("sent", 1)]
        assert dict(s.execute(text("SELECT id, state FROM push_message")).all()) == {1: "sent", 2: "uncertain", 3: "sent"}
