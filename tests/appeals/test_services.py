"""Demands and complaints on a real database: intake, classification, routing, every state change, time
limits on the working-day calendar, reminders, escalation, rating, reopening, masking, bad input."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import pytest
from sqlalchemy import func, select, text

from chunfeng import crypto
from chunfeng.appeals import intake, services
from chunfeng.appeals.errors import AppealInvalid, AppealNotFound
from chunfeng.appeals.models import Appeal, AppealEvent, AppealMeasure
from chunfeng.appeals.services import DEFAULT_RULES
from chunfeng.db import NulInText
from chunfeng.inbox.models import InboxMessage
from chunfeng.org.errors import Forbidden
from chunfeng.org.models import AuditEntry, Unit, User

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
DAY = date(2022, 9, 29)  # a Thursday before National Day


@pytest.fixture
def office(with_plan, county, add_users):
    add_users({"handler": ("110000", ["service_officer"]), "county_handler": ("110101", ["service_officer"]),
               "gd_handler": ("440000", ["service_officer"]), "viewer": ("110000", ["viewer"]),
               "agent": ("000000", ["agent"])})
    return with_plan


def user(db, name):
    with db.read() as s:
        return s.scalar(select(User).where(User.username == name))


def complaint(db, **changes):
    values = dict(kind="complaint", text="出口退税办理太慢了,申报以后等了十几个工作日还没有到账", title="出口退税慢",
                  region="110101", submitter="张三", phone="13812345678", email="zhang@example.com", topic="出口退税")
    values.update(changes)
    with db.write() as s:
        appeal, token = intake.submit(session=s, submission=intake.Submission(**values), today=DAY)
        return appeal.id, token


def test_intake_classifies_routes_and_sets_limits_in_working_days(office):
    appeal_id, token = complaint(office)
    with office.read() as s:
        a = s.get(Appeal, appeal_id)
        assert s.get(Unit, a.unit_id).code == "110101" and a.auto_unit_id == a.unit_id
        assert 54 in a.measures and a.category_no is not None and a.item_no is not None
        # Accept within 1, reply within 5, close within 10 working days of Thursday 29 September 2022:
        # 30 Sep, then National Day; Saturday 8 and Sunday 9 October are make-up working days.
        assert (a.due_accept, a.due_reply, a.due_close) == (date(2022, 9, 30), date(2022, 10, 11), date(2022, 10, 18))
        assert a.state == "received" and a.token_digest != token and len(token) >= 20
        assert services.by_token(s, token).id == appeal_id
    # A region with no bureau of its own goes to the nearest one above; no region, to the national office.
    city, _ = complaint(office, region="110105")
    other, _ = complaint(office, region="120105")
    nowhere, _ = complaint(office, region="")
    with office.read() as s:
        assert s.get(Unit, s.get(Appeal, city).unit_id).code == "110100"
        assert s.get(Unit, s.get(Appeal, other).unit_id).code == "120000"
        assert s.get(Unit, s.get(Appeal, nowhere).unit_id).level == "national"


@pytest.mark.parametrize("changes, words", [
    ({"phone": "", "email": ""}, "电话或电子邮箱"),
    ({"phone": "12345"}, "电话“12345”"),
    ({"email": "zhang@"}, "电子邮箱"),
    ({"kind": "praise"}, "类型“praise”"),
    ({"text": "  "}, "请填写内容"),
    ({"text": "长" * 5001}, "5000"),
    ({"region": "北京"}, "6 位"),
    ({"channel": "hotline"}, "只有工作人员"),
])
def test_bad_input_is_refused_and_nothing_is_stored(office, changes, words):
    with pytest.raises(AppealInvalid, match=words):
        complaint(office, **changes)
    with office.read() as s:
        assert s.scalar(select(func.count()).select_from(Appeal)) == 0


def test_attachments_are_checked_by_content_and_size(office, tmp_path):
    sub = intake.Submission(kind="demand", text="希望增加办税服务厅的周末服务", phone="13812345678")
    with pytest.raises(AppealInvalid, match="不是允许的类型"), office.write() as s:
        intake.submit(session=s, submission=sub, attachments=[("a.pdf", b"MZ\x90\x00not a pdf")], files=tmp_path)
    with pytest.raises(AppealInvalid, match="超过 5 MB"), office.write() as s:
        intake.submit(session=s, submission=sub, attachments=[("big.pdf", PDF + b"0" * 5 * 1048576)], files=tmp_path)
    with office.write() as s:
        appeal, _ = intake.submit(session=s, submission=sub, attachments=[("证明.pdf", PDF)], files=tmp_path)
        assert [f.name for f in tmp_path.rglob("*") if f.is_file()] != []
        assert appeal.id


def test_every_state_change_in_order_and_refusals(office):
    appeal_id, token = complaint(office)
    with office.read() as s:  # received: its event and one link per measure, written as plain statements (issue 16)
        a = s.get(Appeal, appeal_id)
        assert a.measures and sorted(s.scalars(select(AppealMeasure.measure_no).where(
            AppealMeasure.appeal_id == appeal_id))) == sorted(a.measures)
        [event] = s.scalars(select(AppealEvent).where(AppealEvent.appeal_id == appeal_id))
        assert (event.action, event.actor) == ("received", "提交人") and event.note.startswith("分派至") and event.at
    handler = user(office, "handler")
    with office.write() as s:
        with pytest.raises(AppealInvalid, match="不能答复"):
            services.act(session=s, actor=handler, appeal_id=appeal_id, action="reply", note="已处理")
        services.act(session=s, actor=handler, appeal_id=appeal_id, action="accept")
        with pytest.raises(AppealInvalid, match="答复后才能评价"):
            services.rate(session=s, token=token, rating=5)
        services.act(session=s, actor=handler, appeal_id=appeal_id, action="start")
        with pytest.raises(AppealInvalid, match="请填写答复内容"):
            services.act(session=s, actor=handler, appeal_id=appeal_id, action="reply", note=" ")
        services.act(session=s, actor=handler, appeal_id=appeal_id, action="reply", note="已督促加快审核,款项已到账。")
        with pytest.raises(AppealInvalid, match="1 到 5"):
            services.rate(session=s, token=token, rating=6)
        services.rate(session=s, token=token, rating=4, comment="满意")
    with office.read() as s:
        a = s.get(Appeal, appeal_id)
        assert (a.state, a.rating) == ("closed", 4) and a.accepted_at and a.replied_at and a.closed_at
        actions = list(s.scalars(select(AppealEvent.action).where(AppealEvent.appeal_id == appeal_id).order_by(AppealEvent.id)))
        assert actions == ["received", "accept", "start", "reply", "rate"]
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action.like("appeals.%"))) == 5
    for name in ("viewer", "gd_handler", "agent"):
        with pytest.raises(Forbidden), office.write() as s:
            services.act(session=s, actor=user(office, name), appeal_id=appeal_id, action="close")
    with pytest.raises(AppealNotFound), office.read() as s:
        services.by_token(s, "not-a-token")


def test_reopen_once_restarts_the_limits(office):
    appeal_id, token = complaint(office)
    handler = user(office, "handler")
    with office.write() as s:
        for action, note in (("accept", ""), ("start", ""), ("reply", "已处理")):
            services.act(session=s, actor=handler, appeal_id=appeal_id, action=action, note=note)
        services.rate(session=s, token=token, rating=1)
        with pytest.raises(AppealInvalid, match="原因"):
            services.reopen(session=s, token=token, reason="")
        services.reopen(session=s, token=token, reason="钱还是没到", today=date(2022, 10, 10))
        a = s.get(Appeal, appeal_id)
        assert (a.state, a.rating, a.reopened) == ("reopened", None, 1)
        assert (a.due_reply, a.due_close) == (date(2022, 10, 17), date(2022, 10, 24))
        services.act(session=s, actor=handler, appeal_id=appeal_id, action="start")
        services.act(session=s, actor=handler, appeal_id=appeal_id, action="reply", note="已到账")
        with pytest.raises(AppealInvalid, match="只能申请重新办理一次"):
            services.reopen(session=s, token=token, reason="还是不满意")


def test_reminder_before_a_limit_and_escalation_after_it(office):
    appeal_id, _ = complaint(office)  # due_accept 30 Sep
    with office.write() as s:
        assert services.scan(session=s, today=date(2022, 9, 29)).reminded == 1
        assert services.scan(session=s, today=date(2022, 9, 29)).reminded == 0  # once
    with office.write() as s:
        # Saturday 1 October is a holiday; on the 8th (a make-up working day) the accept limit has passed.
        result = services.scan(session=s, today=date(2022, 10, 8))
        assert result.escalated == 1
        a = s.get(Appeal, appeal_id)
        assert s.get(Unit, a.unit_id).code == "110100" and a.auto_unit_id != a.unit_id
        assert services.scan(session=s, today=date(2022, 10, 9)).escalated == 0
    with office.read() as s:
        titles = list(s.scalars(select(InboxMessage.title).order_by(InboxMessage.id)))
        assert titles[0].startswith("临期提醒") and titles[1].startswith("超期升级")
    # Accepted in time, the reply limit runs: nothing to escalate until it passes.
    second, _ = complaint(office)
    with office.write() as s:
        services.act(session=s, actor=user(office, "handler"), appeal_id=second, action="accept")
        assert services.scan(session=s, today=date(2022, 10, 10)).escalated == 0
        assert services.scan(session=s, today=date(2022, 10, 12)).escalated == 1


def test_contacts_are_masked_unless_the_role_needs_them_and_each_view_is_audited(office):
    appeal_id, _ = complaint(office)
    with office.write() as s:
        masked = services.contact(session=s, actor=user(office, "viewer"), appeal_id=appeal_id)
        assert masked == {"submitter": "张**", "phone": "138****5678", "email": "z***@example.com", "masked": "1"}
        with pytest.raises(Forbidden):  # asking for it in full is refused, not quietly answered masked
            services.contact(session=s, actor=user(office, "viewer"), appeal_id=appeal_id, masked=False)
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "appeals.contact.viewed")) == 0
        full = services.contact(session=s, actor=user(office, "handler"), appeal_id=appeal_id, masked=False)
        assert full["phone"] == "13812345678" and not full["masked"]
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "appeals.contact.viewed"))
        assert entry.actor == "handler" and entry.object_id == str(appeal_id)
        with pytest.raises(Forbidden):
            services.contact(session=s, actor=user(office, "gd_handler"), appeal_id=appeal_id, masked=False)


def test_override_keeps_what_the_machine_proposed(office):
    appeal_id, _ = complaint(office)
    with office.write() as s:
        services.override(session=s, actor=user(office, "handler"), appeal_id=appeal_id, unit_code="110100",
                          measures=[53, 54])
        a = s.get(Appeal, appeal_id)
        assert s.get(Unit, a.unit_id).code == "110100" and s.get(Unit, a.auto_unit_id).code == "110101"
        assert a.measures == [53, 54] and 54 in a.auto_measures and a.overridden_by == "handler"
        with pytest.raises(AppealInvalid, match="没有这些措施:999"):
            services.override(session=s, actor=user(office, "handler"), appeal_id=appeal_id, measures=[999])
        with pytest.raises(Forbidden):
            services.override(session=s, actor=user(office, "handler"), appeal_id=appeal_id, unit_code="440000")


def test_hotline_import_is_all_or_nothing(office, tmp_path):
    good = tmp_path / "hotline.csv"
    good.write_text("类型,内容,地区代码,来电人,电话,来电日期\n投诉,办税服务厅排队两个小时,110101,李四,13900001111,2022-09-29\n"
                    "诉求,希望延长周末服务时间,440300,王五,13900002222,2022-09-30\n", encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("类型,内容,地区代码,来电人,电话,来电日期\n投诉,办税服务厅排队两个小时,110101,李四,13900001111,2022-09-29\n"
                   "表扬,服务很好,110101,赵六,,2022-09-31\n", encoding="utf-8")
    with pytest.raises(AppealInvalid) as caught, office.write() as s:
        intake.import_hotline(session=s, actor=user(office, "agent"), path=bad)
    assert "第 3 行:来电日期“2022-09-31”无效" in str(caught.value)
    with office.read() as s:
        assert s.scalar(select(func.count()).select_from(Appeal)) == 0
    with office.write() as s:
        made = intake.import_hotline(session=s, actor=user(office, "agent"), path=good)
        assert [a.channel for a in made] == ["hotline", "hotline"] and made[0].received_at.date() == date(2022, 9, 29)
    with pytest.raises(Forbidden), office.write() as s:
        intake.import_hotline(session=s, actor=user(office, "viewer"), path=good)


def test_a_hotline_import_writes_in_bulk_what_one_by_one_intake_would(office, tmp_path):
    """The bulk import: each item as `submit` makes it (classification, unit, limits, encrypted contacts, its
    "received" event, its measure links), and one audit entry for the import naming every item."""
    lines = ["类型,内容,地区代码,来电人,电话,来电日期"]
    texts = ["出口退税办理太慢了 申报以后等了十几个工作日还没有到账", "办税服务厅排队两个小时", "电子税务局登录不上去",
             "希望延长周末服务时间", "火星上有税务局吗"]
    for n in range(60):
        lines.append(f"投诉,{texts[n % 5]}{'' if n < 5 else n},{['110101', '440000', '110000'][n % 3]},李四,"
                     f"1390000{n:04d},2022-09-29")
    path = tmp_path / "hotline.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    progress = []
    with office.read() as s:
        plan = intake.check_hotline(session=s, actor=user(office, "agent"), path=path,
                                    progress=lambda *a: progress.append(a))
        expected = [intake.classify(s, f" {t}") for t in (r.split(",")[1] for r in lines[1:])]
    with office.write() as s:
        made = intake.import_hotline(session=s, actor=user(office, "agent"), path=path, plan=plan,
                                     progress=lambda *a: progress.append(a))
    assert progress[-1] == (60, 60, "正在写入")
    with office.read() as s:
        stored = list(s.scalars(select(Appeal).order_by(Appeal.id)))
        assert [a.id for a in made] == [a.id for a in stored] and len(stored) == 60
        assert [(a.category_no, a.item_no, a.measures) for a in stored] == expected
        assert stored[0].phone == "13900000000" and s.scalar(select(Appeal.phone_digest).limit(1))
        assert [services.find_by_phone(session=s, actor=user(office, "handler"), phone="13900000003")[0].id] == \
            [stored[3].id]
        assert [s.get(Unit, a.unit_id).code for a in stored[:3]] == ["110101", "440000", "110000"]
        assert stored[0].due_reply == date(2022, 10, 11)
        assert s.scalar(select(func.count()).select_from(AppealEvent)) == 60
        assert 54 in stored[0].measures and stored[0].id in [a.id for a in services.linked_to_measure(
            session=s, actor=user(office, "agent"), measure_no=54, limit=100)[1]]
        entries = list(s.scalars(select(AuditEntry).where(AuditEntry.action.in_(["appeals.imported", "appeals.received"]))))
        assert [e.action for e in entries] == ["appeals.imported"]
        assert f'"ids":["{stored[0].id}-{stored[-1].id}"]' in entries[0].after and '"count":60' in entries[0].after


def test_a_hotline_import_stores_the_contacts_encrypted(office, tmp_path):
    """COPY (PostgreSQL) passes by SQLAlchemy's type processing: the contacts must still be stored as SM4 ciphertext,
    which reading them back alone would not show (a value without the prefix reads back as it is)."""
    path = tmp_path / "hotline.csv"
    path.write_text("类型,内容,地区代码,来电人,电话,电子邮箱\n投诉,办税服务厅排队两个小时,110101,李四,13900000001,"
                    "li@example.com\n", encoding="utf-8")
    with office.write() as s:
        intake.import_hotline(session=s, actor=user(office, "agent"), path=path)
    with office.read() as s:
        stored = s.execute(text("SELECT submitter, phone, email FROM appeal")).one()  # as stored: no type decrypts
        assert all(value.startswith(crypto.PREFIX) for value in stored) and "13900000001" not in "".join(stored)
        assert [crypto.decrypt(value) for value in stored] == ["李四", "13900000001", "li@example.com"]


def test_a_hotline_file_holding_a_nul_past_its_first_bytes_is_refused_and_nothing_written(office, tmp_path):
    """The bulk import writes with COPY on PostgreSQL, past the statement hook that refuses NUL: it must still be
    the clear refusal, on both engines, not PostgreSQL's DataError (a 500)."""
    lines = ["类型,内容,地区代码,电话"] + [f"投诉,办税服务厅排队两个小时{n},110101,1390000{n:04d}" for n in range(120)]
    path = tmp_path / "hotline.csv"
    path.write_text("\n".join(lines) + "\n投诉,排队\x00两个小时,110101,13900009999\n", encoding="utf-8")
    assert path.read_bytes().index(b"\x00") > 4096  # past the sniffing that refuses a binary file
    with pytest.raises(NulInText), office.write() as s:
        intake.import_hotline(session=s, actor=user(office, "agent"), path=path)
    with office.read() as s:
        assert s.scalar(select(func.count()).select_from(Appeal)) == 0


def test_a_topic_one_unit_handles_is_routed_there(office):
    rules = replace(DEFAULT_RULES, topic_routes={"出口退税": "110100"})  # as CHUNFENG_APPEAL_TOPIC_ROUTES sets it
    ids = []
    for region, topic in (("120105", "出口退税"), ("120105", "发票")):
        submission = intake.Submission(kind="complaint", text="出口退税办理太慢了", region=region, topic=topic,
                                       phone="13812345678")
        with office.write() as s:
            ids.append(intake.submit(session=s, submission=submission, today=DAY, rules=rules)[0].id)
    with office.read() as s:
        assert [s.get(Unit, s.get(Appeal, i).unit_id).code for i in ids] == ["110100", "120000"]


def test_contacts_of_long_closed_items_are_erased(office):
    old, token = complaint(office)
    recent, token2 = complaint(office)
    handler = user(office, "handler")
    with office.write() as s:
        for appeal_id, tok, closed in ((old, token, datetime(2022, 10, 1)), (recent, token2, datetime(2025, 1, 1))):
            for action, note in (("accept", ""), ("start", ""), ("reply", "已处理")):
                services.act(session=s, actor=handler, appeal_id=appeal_id, action=action, note=note)
            services.rate(session=s, token=tok, rating=5, now=closed)
    with office.write() as s:
        assert services.erase_expired_contacts(session=s, today=date(2025, 11, 1), days=1095) == 1
        assert services.erase_expired_contacts(session=s, today=date(2025, 11, 1), days=1095) == 0
    with office.read() as s:
        gone, kept = s.get(Appeal, old), s.get(Appeal, recent)
        assert (gone.submitter, gone.phone, gone.email) == ("", "", "") and gone.text
        assert kept.phone == "13812345678"
        assert s.scalar(select(AuditEntry).where(AuditEntry.action == "appeals.contacts.erased")).after


def test_a_large_file_classified_on_two_processes_is_classified_as_on_one(office):
    """`chunfeng appeals import` classifies on every core (forked workers); each text must get what one process
    gives it, in the file's order. 4,200 distinct texts: past the size from which the work is shared."""
    stems = ["出口退税办理太慢了", "办税服务厅排队两个小时", "电子税务局登录不上去", "希望延长周末服务时间", "发票领用太麻烦",
             "个税汇算退税多久到账", "火星上有税务局吗"]
    texts = [f"{stems[n % len(stems)]} 第{n}次" for n in range(4200)]
    with office.read() as s:
        alone = intake.classify_many(s, texts, workers=1)
        heard = []
        shared = intake.classify_many(s, texts, workers=2, progress=lambda done, total: heard.append(done))
    assert shared == alone and heard[-1] == 4200 and len(heard) > 2
    assert any(measures for _, _, measures in alone)  # classified, not all empty
