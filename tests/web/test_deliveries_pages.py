"""The delivery log over HTTP: what each official sees of it (subtree, origins), filters, pages, the xlsx
export with masked addresses, and the refusals."""

from __future__ import annotations

import io
import threading
import time
from collections import Counter

from openpyxl import load_workbook
from sqlalchemy import func, select

from chunfeng import outbox
from chunfeng.channels import ChannelRules
from chunfeng.inbox import services as inbox
from chunfeng.org.models import AuditEntry
from chunfeng.org.services import find_unit
from chunfeng.settings import Settings
from tests.conftest import TEST_DATA_KEY, csrf_from, login, serving
from tests.test_outbox import receiver  # noqa: F401  (the loopback webhook)
from tests.web.test_ledger_pages import make_chain

PHONE, TOKEN = "13900001111", "secret-token-5678"

LOOPBACK = ChannelRules(hosts_allowed=("127.0.0.1",))  # the receiver is on loopback


def _log(db, add_users):
    add_users({"bj_officer": ("110000", ["service_officer"]), "gd_officer": ("440000", ["service_officer"])})
    with db.write() as s:
        county, beijing, guangdong = (find_unit(session=s, code=c).path for c in ("110101", "110000", "440000"))
        outbox.enqueue(s, origin="inbox.message", origin_id=1, scope=county, channel=outbox.URL,
                       target=f"dingtalk://{TOKEN}", title="督办:第 54 条措施")
        for i in range(55):
            row = outbox.enqueue(s, origin="push.message", origin_id=100 + i, scope=beijing, channel="sms",
                                 target=PHONE, title=f"政策提醒 {i}", body="李四您好")
        row.state, row.last_error = "uncertain", outbox.UNCERTAIN
        outbox.enqueue(s, origin="push.message", origin_id=999, scope=guangdong, channel="email",
                       target="lisi@example.cn", title="广东的提醒")


def test_the_administrator_sees_the_log_of_the_subtree_with_filters_pages_and_masked_addresses(bureau, add_users, server):
    _log(bureau, add_users)
    admin = login(server, "nat_admin")
    page = admin.get("/deliveries").text
    assert "发送记录" in page and "第 1 / 2 页,共 57 条" in page
    assert "139****1111" in page and PHONE not in page and TOKEN not in page
    assert "广东的提醒" in page and "l***@example.cn" in page
    uncertain = admin.get("/deliveries?state=uncertain").text
    assert "共 1 条" in uncertain and "结果不明" in uncertain and "政策提醒 54" in uncertain
    inbox = admin.get("/deliveries?origin=inbox.message").text
    assert "共 1 条" in inbox and "督办:第 54 条措施" in inbox and "dingtalk://…5678" in inbox
    assert "共 1 条" in admin.get("/deliveries?channel=email").text
    second = admin.get("/deliveries?page=2").text
    assert "第 2 / 2 页" in second and "政策提醒 0" in second  # newest first
    export = admin.get("/deliveries/export.xlsx?origin=push.message")
    assert export.status_code == 200
    rows = list(load_workbook(io.BytesIO(export.content)).active.iter_rows(values_only=True))
    assert len(rows) == 1 + 56 and rows[0][4] == "收件地址(已遮蔽)"
    assert {r[4] for r in rows[1:]} == {"139****1111", "l***@example.cn"}
    assert not [r for r in rows if any(PHONE in str(v) or "lisi@" in str(v) for v in r)]


def test_a_service_officer_sees_the_pushes_of_their_subtree_only(bureau, add_users, server):
    _log(bureau, add_users)
    officer = login(server, "bj_officer")
    page = officer.get("/deliveries").text
    assert "共 55 条" in page and "广东的提醒" not in page and "第 54 条措施" not in page
    refused = officer.get("/deliveries?origin=inbox.message")
    assert refused.status_code == 403 and "只能查看政策推送" in refused.text
    with bureau.read() as s:
        denied = s.scalars(select(AuditEntry).where(AuditEntry.action == "access.denied",
                                                    AuditEntry.actor == "bj_officer")).one()
        assert denied.outcome == "denied" and "/deliveries" in denied.object_id
    export = officer.get("/deliveries/export.xlsx")
    assert len(list(load_workbook(io.BytesIO(export.content)).active.iter_rows())) == 1 + 55
    assert "共 1 条" in login(server, "gd_officer").get("/deliveries").text


def test_refusals(bureau, add_users, server):
    _log(bureau, add_users)
    admin = login(server, "nat_admin")
    bad = admin.get("/deliveries?state=lost")
    assert bad.status_code == 400 and "未知状态" in bad.text
    assert admin.get("/deliveries?channel=" + "x" * 300).status_code == 400
    for name in ("viewer", "bj_office", "county_reporter"):
        response = login(server, name).get("/deliveries")
        assert response.status_code == 403, name


def test_notices_issued_on_the_page_while_the_schedule_runs_reach_the_channel_once(bureau, system, receiver):  # noqa: F811
    """Issue 13: the page's delivery after a notice (a background task) and the scheduled run each sent what
    was pending. Here the schedule runs over and over while an office issues a notice and two reminders."""
    *_, county = make_chain(bureau)
    with bureau.write() as s:
        inbox.add_channel(session=s, actor=system, unit_code="110101", url=receiver.url, label="县局值班群",
                          channel_rules=LOOPBACK)
    settings = Settings(database_url=bureau.url, secret_key="x" * 32, environment="test", data_key=TEST_DATA_KEY,
                        scan_interval_minutes=0, rate_limits={}, totp_required_roles=[],
                        channel_hosts_allowed=["127.0.0.1"])
    receiver.delay = 0.2  # a slow webhook: the page's nudge is still sending when the schedule comes round
    done = threading.Event()

    def schedule():
        while not done.is_set():
            inbox.deliver_pending(bureau, settings=settings)

    runner = threading.Thread(target=schedule)
    runner.start()
    try:
        with serving(bureau, settings) as url:
            office = login(url, "city_office")
            token = csrf_from(office.get(f"/ledger/assignments/{county}").text)
            sent = office.post(f"/ledger/assignments/{county}/notices", data={
                "csrf_token": token, "subject": "进度滞后", "text": "请说明原因", "respond_by": "2099-01-01"})
            assert sent.status_code == 303
            for text in ("请周一前报送", "请周五前报送"):
                assert office.post(f"/ledger/assignments/{county}/remind",
                                   data={"csrf_token": token, "text": text}).status_code == 303
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with bureau.read() as s:
                    if not s.scalar(select(func.count()).select_from(outbox.Delivery).where(
                            outbox.Delivery.state != "sent")):
                        break
                time.sleep(0.1)
            time.sleep(0.5)  # a repeat, if any, would arrive now
    finally:
        done.set()
        runner.join(timeout=30)
    with bureau.read() as s:
        titles = list(s.scalars(select(outbox.Delivery.title)))
    assert len(titles) == 3 and Counter(receiver.titles) == Counter(titles)
