"""Apprise delivery of unit inbox messages through the outbox, to a real HTTP webhook on loopback: sent once,
failures retried with back-off, never before commit."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from chunfeng.channels import ChannelRules
from chunfeng.inbox import services as inbox
from chunfeng.org.errors import Forbidden, ValidationFailed
from chunfeng.org.services import find_unit
from chunfeng.outbox import Delivery
from chunfeng.settings import Settings
from tests.conftest import Webhook, person


@pytest.fixture
def hook(monkeypatch):
    h = Webhook()
    monkeypatch.setenv("CHUNFENG_CHANNEL_HOSTS_ALLOWED", '["127.0.0.1"]')  # the receiver is on loopback (commands)
    h.rules = ChannelRules(hosts_allowed=("127.0.0.1",))  # the same, as an entry point passes it down
    h.settings = Settings(channel_hosts_allowed=["127.0.0.1"])
    yield h
    h.close()


def test_delivery_sends_once_and_retries_failures(bureau, system, hook):
    with bureau.write() as s:
        inbox.add_channel(session=s, actor=system, unit_code="110101", url=hook.url,
                          label="县局值班群", channel_rules=hook.rules)
        county = find_unit(session=s, code="110101")
        inbox.post(s, unit=county, kind="reminder", title="催办:第 54 条措施", body="请本周报送")
    hook.failing = True
    now = datetime.utcnow()
    run = inbox.deliver_pending(bureau, settings=hook.settings, now=now)
    assert (run.sent, run.failed) == (0, 1) and hook.received == []
    hook.failing = False
    assert inbox.deliver_pending(bureau, settings=hook.settings, now=now).sent == 0  # waits its back-off
    run = inbox.deliver_pending(bureau, settings=hook.settings, now=now + timedelta(minutes=6))
    assert (run.sent, run.failed) == (1, 0)
    assert [(m["title"], m["message"]) for m in hook.received] == [("催办:第 54 条措施", "请本周报送")]
    assert inbox.deliver_pending(bureau, settings=hook.settings, now=now + timedelta(days=1)).sent == 0  # never twice
    with bureau.read() as s:
        delivery = s.scalars(select(Delivery)).one()
        assert (delivery.state, delivery.attempts) == ("sent", 2)


def test_nothing_is_sent_for_a_rolled_back_transaction(bureau, system, hook):
    with bureau.write() as s:
        inbox.add_channel(session=s, actor=system, unit_code="110101", url=hook.url, channel_rules=hook.rules)
    with pytest.raises(RuntimeError):
        with bureau.write() as s:
            inbox.post(s, unit=find_unit(session=s, code="110101"), kind="reminder", title="不应发出")
            raise RuntimeError("the operation failed after posting")
    assert inbox.deliver_pending(bureau, settings=hook.settings).sent == 0 and hook.received == []


def test_gives_up_after_the_attempts(bureau, system, hook):
    with bureau.write() as s:
        inbox.add_channel(session=s, actor=system, unit_code="110101", url=hook.url, channel_rules=hook.rules)
        inbox.post(s, unit=find_unit(session=s, code="110101"), kind="reminder", title="x")
    hook.failing = True
    settings = hook.settings
    for day in range(settings.push_max_attempts + 2):  # a day apart: past every back-off
        inbox.deliver_pending(bureau, settings=settings, now=datetime.utcnow() + timedelta(days=day))
    with bureau.read() as s:
        delivery = s.scalars(select(Delivery)).one()
        assert (delivery.state, delivery.attempts) == ("failed", settings.push_max_attempts)


def test_channel_refusals(bureau):
    with pytest.raises(ValidationFailed, match="无法识别"):
        with bureau.write() as s:
            inbox.add_channel(session=s, actor=person(s, "nat_admin"), unit_code="110101", url="nonsense")
    with pytest.raises(Forbidden):
        with bureau.write() as s:
            inbox.add_channel(session=s, actor=person(s, "bj_office"), unit_code="110101", url="json://127.0.0.1/x")


def test_cli_and_page(bureau, hook, server):
    import os
    import subprocess
    import sys

    from tests.conftest import csrf_from, login

    env = {**os.environ, "CHUNFENG_DATABASE_URL": bureau.url}
    added = subprocess.run([sys.executable, "-m", "chunfeng", "inbox", "add-channel", "110101", hook.url, "--label", "值班群"],
                           env=env, capture_output=True, text=True)
    assert added.returncode == 0, added.stderr
    bad = subprocess.run([sys.executable, "-m", "chunfeng", "inbox", "add-channel", "110101", "nonsense"], env=env,
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "无法识别" in bad.stderr
    with bureau.write() as s:
        inbox.post(s, unit=find_unit(session=s, code="110101"), kind="reminder", title="请报送")
    sent = subprocess.run([sys.executable, "-m", "chunfeng", "inbox", "deliver"], env=env, capture_output=True, text=True)
    assert "已发送 1 条" in sent.stdout and [m["title"] for m in hook.received] == ["请报送"]
    admin = login(server, "nat_admin")
    page = admin.get("/org/units/110102").text
    assert "外部通知通道" in page
    # The test server allows no inner host (its settings, not this process's environment): a fixed endpoint.
    response = admin.post("/inbox/channels", data={"csrf_token": csrf_from(page), "unit": "110102",
                                                   "url": "dingtalk://0123456789abcdef"})
    assert response.status_code == 303
    office = login(server, "bj_office")
    refused = office.post("/inbox/channels", data={"csrf_token": csrf_from(office.get("/inbox").text), "unit": "110102",
                                                   "url": hook.url})
    assert refused.status_code == 403
