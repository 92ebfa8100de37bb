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
