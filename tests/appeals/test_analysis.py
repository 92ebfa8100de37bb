"""The periodic analysis of demands and complaints on a real database: volumes, time-limit compliance on
both sides of each limit, satisfaction, recurring issues, rising topics, measures, subtree and refusal,
and the xlsx, HTML and PDF outputs."""

from __future__ import annotations

import itertools
import random
import secrets
from datetime import date, datetime, time

import numpy as np
import openpyxl
import pytest
from sqlalchemy import select

from chunfeng.appeals import analysis, clustering, intake, services
from chunfeng.appeals.analysis import Filters
from chunfeng.appeals.errors import AppealInvalid
from chunfeng.appeals.models import Appeal
from chunfeng.org.errors import Forbidden
from chunfeng.org.models import Unit, User

SEPTEMBER = Filters(date(2022, 9, 1), date(2022, 9, 30), "110000")
LATER = date(2023, 6, 1)  # a report run well after September: every limit of the period has passed


@pytest.fixture
def office(with_plan, county, add_users):
    """北京 110000 ── 110100 ── 110101, people at each level, and one who may not analyse."""
    add_users({"handler": ("110000", ["service_officer"]), "nat_office": ("000000", ["action_office"]),
               "bj_office": ("110000", ["action_office"]), "county_officer": ("110101", ["service_officer"]),
               "viewer": ("110000", ["viewer"]), "agent": ("110000", ["agent"])})
    return with_plan


def user(db, name):
    with db.read() as s:
        return s.scalar(select(User).where(User.username == name))


def submit(db, day: date, *, kind="complaint", region="110101", topic="", text="办税服务厅排队时间太长", channel="web",
           actor=None) -> tuple[int, str]:
    sub = intake.Submission(kind=kind, text=text, channel=channel, region=region, topic=topic, phone="13812345678")
    with db.write() as s:
        appeal, token = intake.submit(session=s, submission=sub, today=day, actor=actor)
        return appeal.id, token


def act(db, appeal_id: int, *steps: tuple[str, datetime]) -> None:
    with db.write() as s:
        for action, at in steps:
            services.act(session=s, actor=user(db, "handler"), appeal_id=appeal_id, action=action,
                         note="已处理" if action == "reply" else "", now=at)


def insert(db, day: date, *, unit="110101", kind="complaint", channel="web", topic="", text="一般事项",
           measures=()) -> int:
    """An item written directly, for volume: no classification, routing or audit."""
    with db.write() as s:
        unit_id = s.scalar(select(Unit.id).where(Unit.code == unit))
        appeal = Appeal(kind=kind, channel=channel, title=text[:40], text=text, topic=topic,
                        token_digest=secrets.token_hex(32), measures=list(measures), auto_measures=list(measures),
                        unit_id=unit_id, auto_unit_id=unit_id, received_at=datetime.combine(day, time(9)),
                        due_accept=day, due_reply=day, due_close=day)
        s.add(appeal)
        s.flush()
        return appeal.id


def run(db, name="bj_office", filters=SEPTEMBER, **kw):
    with db.read() as s:
        return analysis.report(session=s, actor=user(db, name), filters=filters, **kw)


def test_volumes_by_kind_topic_unit_and_channel(office):
    handler = user(office, "handler")
    submit(office, date(2022, 9, 5), topic="办税服务厅")
    submit(office, date(2022, 9, 6), topic="办税服务厅")
    submit(office, date(2022, 9, 7), kind="demand", region="110105", topic="出口退税", text="希望出口退税再快一些")
    submit(office, date(2022, 9, 8), kind="suggestion", region="110000", channel="api", text="建议延长周末服务时间")
    submit(office, date(2022, 9, 30), kind="opinion", region="110101", channel="hotline", topic="办税服务厅",
           text="网上有人反映办税服务厅排队", actor=handler)
    submit(office, date(2022, 9, 9), region="120105", topic="办税服务厅")  # 天津: outside 北京's subtree
    submit(office, date(2022, 8, 31))  # before the period
    submit(office, date(2022, 10, 1))  # after it
    r = run(office)
    assert r.total == 5 and r.unit_name.endswith("北京市税务局")
    assert r.by_kind == {"complaint": 2, "demand": 1, "opinion": 1, "suggestion": 1}
    assert list(r.by_kind) == ["complaint", "demand", "opinion", "suggestion"]  # most first, ties by name
    assert r.by_topic == {"办税服务厅": 3, "": 1, "出口退税": 1}
    assert r.by_channel == {"web": 3, "api": 1, "hotline": 1}
    # The unit's own items, then each child with its whole subtree (110100 holds 110101's).
    assert [(u.code, u.count, u.own) for u in r.by_unit] == [("110000", 1, True), ("110100", 4, False)]

    national = run(office, "nat_office", Filters(SEPTEMBER.start, SEPTEMBER.end, "000000"))
    assert national.total == 6
    counts = {u.code: u.count for u in national.by_unit}
    assert counts["000000"] == 0 and counts["110000"] == 5 and counts["120000"] == 1
    assert sum(counts.values()) == 6 and len(counts) == 1 + 18 + 36  # itself, its departments, the provinces
    assert [u.code for u in national.by_unit[:3]] == ["000000", "110000", "120000"]


def test_a_unit_sees_only_its_subtree_and_a_role_without_analysis_is_refused(office):
    submit(office, date(2022, 9, 5), region="110101")
    submit(office, date(2022, 9, 6), region="110105")  # 110100, above the county
    county = run(office, "county_officer", Filters(SEPTEMBER.start, SEPTEMBER.end, "110101"))
    assert county.total == 1 and [(u.code, u.count) for u in county.by_unit] == [("110101", 1)]
    assert run(office, "handler").total == 2
    with pytest.raises(Forbidden, match="管辖范围"):
        run(office, "county_officer")  # 北京 is above the county officer
    for name in ("viewer", "agent"):
        with pytest.raises(Forbidden, match="无权查看诉求分析"):
            run(office, name)


def test_time_limits_are_counted_on_both_sides_of_each_limit(office):
    # Thursday 29 September 2022: accept by Friday the 30th, reply by 11 October (see test_services).
    on_the_day, _ = submit(office, date(2022, 9, 29))
    late, _ = submit(office, date(2022, 9, 29))
    never, _ = submit(office, date(2022, 9, 29))
    last_minute, _ = submit(office, date(2022, 9, 28))  # accept by the 29th
    early, _ = submit(office, date(2022, 9, 30))  # accept by Saturday 8 October, a make-up working day
    not_yet_due, _ = submit(office, date(2022, 9, 30))
    with office.read() as s:
        assert s.get(Appeal, on_the_day).due_accept == date(2022, 9, 30)
        assert s.get(Appeal, on_the_day).due_reply == date(2022, 10, 11)
        assert s.get(Appeal, last_minute).due_accept == date(2022, 9, 29)
        assert s.get(Appeal, early).due_accept == date(2022, 10, 8)
    act(office, on_the_day, ("accept", datetime(2022, 9, 30, 10)), ("start", datetime(2022, 10, 9, 9)),
        ("reply", datetime(2022, 10, 11, 17, 59)))
    act(office, late, ("accept", datetime(2022, 10, 8, 9)), ("start", datetime(2022, 10, 8, 10)),
        ("reply", datetime(2022, 10, 12, 9)))
    act(office, last_minute, ("accept", datetime(2022, 9, 29, 23, 59, 59)))
    act(office, early, ("accept", datetime(2022, 9, 30, 11)))
    assert not_yet_due and never

    r = run(office, today=LATER)
    accept = r.compliance[0]
    assert [c.limit for c in r.compliance] == ["accept", "reply", "close"]
    # Met: on the due day, in the last second of it, and early (its limit falls in October); missed: a day
    # late and never; the item due on 8 October is not assessed in September.
    assert (accept.assessed, accept.met, accept.missed) == (5, 3, 2) and accept.rate == pytest.approx(0.6)
    # Before the limit of the 30th has passed, the two items due that day are not yet assessed.
    assert (run(office, today=date(2022, 9, 30)).compliance[0].assessed, accept.met) == (3, 3)

    october = run(office, filters=Filters(date(2022, 10, 1), date(2022, 10, 31), "110000"), today=LATER)
    accept, reply, close = october.compliance
    assert (accept.assessed, accept.met) == (1, 0)  # the one never accepted by the 8th; `late` was counted in September
    # Reply by the 11th: on_the_day met; late replied on the 12th; never, last_minute, early and
    # not_yet_due were never replied and their reply limits passed in October.
    assert (reply.assessed, reply.met) == (6, 1)
    assert close.met == 0 and close.assessed == 6  # close limits: 18 October and later, none kept


def test_a_reopened_item_is_judged_on_its_new_limits(office):
    appeal_id, token = submit(office, date(2022, 9, 29))
    act(office, appeal_id, ("accept", datetime(2022, 9, 30, 9)), ("start", datetime(2022, 9, 30, 10)),
        ("reply", datetime(2022, 9, 30, 11)))
    with office.write() as s:
        services.rate(session=s, token=token, rating=1, now=datetime(2022, 9, 30, 12))
        services.reopen(session=s, token=token, reason="还是没有解决", today=date(2022, 10, 10))
    october = run(office, filters=Filters(date(2022, 10, 1), date(2022, 10, 31), "110000"), today=LATER)
    reply, close = october.compliance[1:]
    assert (reply.assessed, reply.met, close.assessed, close.met) == (1, 0, 1, 0)
    september = run(office, today=LATER)
    assert september.compliance[0].met == 1 and september.compliance[1].met == 0
    assert september.satisfaction.count == 0  # reopening withdraws the rating


def test_satisfaction_counts_the_ratings_given_in_the_period(office):
    for rating, at in ((5, datetime(2022, 9, 20, 8)), (4, datetime(2022, 9, 21, 8)), (4, datetime(2022, 9, 22, 8)),
                       (2, datetime(2022, 9, 30, 23, 59)), (3, datetime(2022, 10, 1, 0, 1))):  # the last, in October
        appeal_id, token = submit(office, date(2022, 9, 1))
        act(office, appeal_id, ("accept", datetime(2022, 9, 2)), ("start", datetime(2022, 9, 2)),
            ("reply", datetime(2022, 9, 5)))
        with office.write() as s:
            services.rate(session=s, token=token, rating=rating, now=at)
    s = run(office).satisfaction
    assert s.distribution == {1: 0, 2: 1, 3: 0, 4: 2, 5: 1}
    assert s.count == 4 and s.mean == pytest.approx(3.75) and s.satisfied_share == pytest.approx(0.75)
    empty = run(office, filters=Filters(date(2022, 11, 1), date(2022, 11, 30), "110000")).satisfaction
    assert empty.count == 0 and empty.mean is None and empty.satisfied_share is None


QUEUE = ["办税服务厅排队时间太长,等了两个小时", "办税服务厅排队时间太长了,等了三个小时", "办税服务厅排队时间太长",
         "办税服务厅排队的时间太长,等了两个多小时"]
LOGIN = ["电子税务局登录不上去,一直提示验证码错误", "电子税务局登录不上,总是提示验证码错误"]
OTHERS = ["出口退税办理太慢了,申报以后等了十几个工作日还没有到账", "办税服务厅工作人员态度很差,问问题不耐烦",
          "12366热线总是打不通,希望增加坐席", "个人所得税汇算清缴的退税一直没有到账"]


def test_near_duplicate_texts_form_one_cluster_and_unrelated_ones_none(office):
    days = itertools.cycle(range(1, 29))
    for text in QUEUE + LOGIN + OTHERS:
        submit(office, date(2022, 9, next(days)), text=text, kind="demand" if "等了三个" in text else "complaint")
    submit(office, date(2022, 9, 29), text=QUEUE[0])  # an identical text counts as one more item
    with office.read() as s:
        item_measures = {a.text: a.measures for a in s.scalars(select(Appeal))}
    r = run(office)
    assert [c.size for c in r.recurring] == [5, 2] and (r.clusters_found, r.clustered_items) == (2, 7)
    queue, login = r.recurring
    assert queue.representative in QUEUE and login.representative in LOGIN
    assert "排队" in queue.terms and "验证码" in login.terms
    assert queue.kinds == {"complaint": 4, "demand": 1}
    expected = {}
    for text in QUEUE + [QUEUE[0]]:
        for no in item_measures[text]:
            expected[no] = expected.get(no, 0) + 1
    assert queue.measures == expected and len(queue.item_ids) == 5
    # A stricter threshold keeps only the closest variants together.
    assert [c.size for c in run(office, cluster_threshold=0.95).recurring] == [2]


def test_leader_clustering_is_exact_without_comparing_all_pairs():
    """`leaders` (pairs found by prefix blocking, in batches) gives what comparing every pair gives."""
    rng = random.Random(98)
    parts = ["办税服务厅", "排队", "时间太长", "电子税务局", "登录", "验证码", "发票", "退税", "太慢", "态度差", "窗口",
             "热线", "打不通", "个税", "汇算", "社保费", "缴费", "系统卡顿", "app", "闪退"]
    texts = ["".join(rng.choice(parts) for _ in range(rng.randint(1, 6))) for _ in range(600)] + ["", "123"]
    matrix = clustering.vectorize(texts).matrix
    dense = matrix.toarray()
    similarity = dense @ dense.T
    for threshold in (0.3, 0.5, 0.8):
        expected, heads = np.arange(len(texts)), []
        for i in range(len(texts)):
            best = max(heads, key=lambda h: (similarity[i, h], -h), default=None)
            if best is not None and similarity[i, best] >= threshold - 1e-9:
                expected[i] = best
            else:
                heads.append(i)
        for batch in (1, 37, 5000):
            assert (clustering.leaders(matrix, threshold, batch=batch) == expected).all(), (threshold, batch)
    assert clustering.cluster(["排队 太久", "排队太久", "电子税务局"]).tolist() == [0, 0, 2]
    assert clustering.cluster([]).tolist() == []


def test_rising_topics_and_measures_concerned(office):
    for topic, previous, now in (("办税服务厅", 1, 3), ("出口退税", 2, 1), ("电子发票", 2, 2), ("社保缴费", 0, 1)):
        for i in range(previous):
            insert(office, date(2022, 8, 10 + i), topic=topic)
        for i in range(now):
            insert(office, date(2022, 9, 10 + i), topic=topic)
    insert(office, date(2022, 9, 20), measures=[54, 53])
    insert(office, date(2022, 9, 21), measures=[54])
    insert(office, date(2022, 7, 21), measures=[98])  # two periods back
    r = run(office)
    assert [(t.topic, t.count, t.previous, t.rise) for t in r.rising] == [("办税服务厅", 3, 1, 2), ("社保缴费", 1, 0, 1)]
    assert [(m.no, m.count) for m in r.measures] == [(54, 2), (53, 1)]
    assert r.measures[0].text.startswith("进一步精简出口退税涉税资料报送") and "电子发票" in r.measures[1].text
    with pytest.raises(AppealInvalid, match="起始日期"):
        run(office, filters=Filters(date(2022, 9, 30), date(2022, 9, 1), "110000"))


def test_xlsx_html_and_pdf(office, tmp_path):
    for text in QUEUE:
        submit(office, date(2022, 9, 5), text=text, topic="办税服务厅")
    r = run(office)
    path = analysis.export_xlsx(r, tmp_path / "analysis.xlsx")
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["概况", "分类型", "分主题", "分单位", "分渠道", "时限达标", "满意度", "重复问题", "上升主题",
                               "涉及措施"]
    assert [c.value for c in book["分类型"][2]] == ["投诉", 4]
    assert book["重复问题"]["B2"].value == 4 and book["重复问题"]["C2"].value in QUEUE
    assert book["满意度"]["A2"].value == "5 分"
    html = analysis.render_html(r)
    assert "服务投诉和舆情分析报告" in html and "<svg" in html and "/static/briefing.css" in html
    assert "<style>" in analysis.render_html(r, inline_css=True)
    assert analysis.render_pdf(r).startswith(b"%PDF")


def test_public_text_that_looks_like_a_formula_stays_text_in_the_xlsx(office, tmp_path):
    """Issue 11: =HYPERLINK(…) typed into the public form became a live link in the officials' workbook."""
    for text in QUEUE:  # every variant of the recurring issue, so whichever represents it starts with "="
        submit(office, date(2022, 9, 5), text=f'=HYPERLINK("http://x","{text}")', topic="办税服务厅")
    for text in ("@SUM(1)", "+1", "-1+1"):
        submit(office, date(2022, 9, 6), text=text + OTHERS[0])
    r = run(office)
    book = openpyxl.load_workbook(analysis.export_xlsx(r, tmp_path / "analysis.xlsx"))
    cells = [cell for ws in book for row in ws.iter_rows() for cell in row if cell.value is not None]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    assert book["重复问题"]["C2"].value.startswith("=HYPERLINK(")  # the text as written, as text
    assert book["重复问题"]["B2"].value == 4  # numbers stay numbers
