"""The route matrix's other axis: the same role at another unit. A 北京 agent (agent: answers hand-offs, edits
the knowledge base, enters items, reads analytics) against 广东's and 深圳's objects is refused with 403 and
changes nothing; the national agent, above every unit, is allowed. Over a real HTTP server."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from chunfeng.appeals.models import Appeal
from chunfeng.consult import knowledge, services
from chunfeng.consult.models import ConsultQuery, Handoff
from chunfeng.org.models import AuditEntry, Unit
from tests.conftest import csrf_from, finished, login, person
from tests.consult.test_services import kb  # noqa: F401  (the fixture)

GD_QUESTION = "广东这边的小狗疫苗去哪里打"
SZ_QUESTION = "深圳这边的小猫疫苗去哪里打"


@pytest.fixture
def units(kb, add_users):  # noqa: F811
    """A 广东 and a 深圳 hand-off, a 广东 draft and a published 广东 entry, and the people at each unit."""
    add_users({"gd_agent": ("440000", ["agent"])})
    ids = {}
    with kb.write() as s:
        for key, question, region in (("gd", GD_QUESTION, "440000"), ("sz", SZ_QUESTION, "440300")):
            answer = services.ask(session=s, query=question, region=region, today=date(2024, 5, 1))
            ids[key] = services.request_handoff(session=s, query_id=answer.query_id, token=answer.token).id
        gd = person(s, "gd_agent")
        ids["draft"] = knowledge.save_entry(session=s, actor=gd, values={
            "question": "广东省内跨市迁移的草稿问题", "answer": "草稿答案,尚未审定", "region": "440000", "status": "draft"}).key
        ids["published"] = knowledge.save_entry(session=s, actor=gd, values={
            "question": "广东省电子税务局怎么登录", "answer": "用个人所得税 App 扫码登录。", "region": "440000"}).key
    return ids


def cross_unit_calls(ids: dict) -> list[tuple[str, str, dict]]:
    """Every way the attack reached another unit's objects: (method, path, form)."""
    return [
        ("POST", f"/consult/handoffs/{ids['gd']}/answer", {"answer": "北京替广东答复"}),
        ("POST", f"/consult/handoffs/{ids['gd']}/promote", {"tags": "其他"}),
        ("POST", f"/consult/handoffs/{ids['sz']}/answer", {"answer": "北京替深圳答复"}),
        ("POST", f"/consult/handoffs/{ids['gd']}/demand", {"phone": "13900001111"}),
        ("GET", f"/consult/kb/{ids['draft']}", {}),
        ("GET", "/consult/analytics?region=440000", {}),
        ("GET", "/consult/analytics?region=440300", {}),
        ("POST", "/appeals/enter", {"kind": "opinion", "text": "舆情:广东某厅排长队", "region": "440000"}),
        ("POST", "/appeals/enter", {"kind": "opinion", "text": "舆情:深圳某厅排长队", "region": "440300"}),
    ]


def send(client, method: str, path: str, form: dict, token: str):
    return client.get(path) if method == "GET" else client.post(path, data={**form, "csrf_token": token})


def test_beijing_agent_is_refused_every_cross_unit_object(kb, units, server):  # noqa: F811
    bj = login(server, "bj_agent")
    token = csrf_from(bj.get("/sessions").text)
    for method, path, form in cross_unit_calls(units):
        response = send(bj, method, path, form, token)
        assert response.status_code == 403, (method, path, response.status_code)
        assert "管辖范围" in response.text, (method, path)
    with kb.read() as s:
        assert s.scalar(select(func.count()).select_from(Handoff).where(Handoff.state != "waiting")) == 0
        assert s.scalar(select(func.count()).select_from(Appeal)) == 0
        denied = s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.actor == "bj_agent", AuditEntry.outcome == "denied"))
        assert denied == len(cross_unit_calls(units))
    # What the agent's own pages show: no other unit's hand-off, draft or raw question.
    queue = bj.get("/consult/queue").text
    assert GD_QUESTION not in queue and SZ_QUESTION not in queue
    assert "草稿问题" not in bj.get("/consult/kb", params={"status": "draft"}).text
    for fmt in ("json", "csv", "md"):
        exported = bj.get(f"/consult/kb/export.{fmt}")
        assert exported.status_code == 200 and "草稿问题" not in exported.text and "电子税务局怎么登录" in exported.text
    analytics = bj.get("/consult/analytics").text
    assert GD_QUESTION not in analytics and SZ_QUESTION not in analytics
    # A published entry is a public answer: readable by every agent (editing stays with its unit).
    published = bj.get(f"/consult/kb/{units['published']}")
    assert published.status_code == 200 and "电子税务局怎么登录" in published.text
    bj.close()


def test_national_agent_may_act_on_every_unit(kb, units, server):  # noqa: F811
    national = login(server, "agent")
    token = csrf_from(national.get("/sessions").text)
    queue = national.get("/consult/queue").text
    assert GD_QUESTION in queue and SZ_QUESTION in queue
    assert "草稿问题" in national.get(f"/consult/kb/{units['draft']}").text
    assert "草稿问题" in national.get("/consult/kb/export.json").text
    assert GD_QUESTION in national.get("/consult/analytics", params={"region": "440000"}).text
    for method, path, form in cross_unit_calls(units):
        response = send(national, method, path, form, token)
        assert response.status_code in (200, 303), (method, path, response.status_code, response.text[:300])
    with kb.read() as s:
        assert {a.region for a in s.scalars(select(Appeal))} == {"440000", "440300"}
    national.close()


def test_the_units_own_agent_answers_and_an_answer_is_not_overwritten(kb, units, server):  # noqa: F811
    gd = login(server, "gd_agent")
    queue = gd.get("/consult/queue").text
    assert GD_QUESTION in queue and SZ_QUESTION not in queue  # 深圳 is a separately planned city, not 广东's
    token = csrf_from(queue)
    first = gd.post(f"/consult/handoffs/{units['gd']}/answer", data={"csrf_token": token, "answer": "请到当地动物防疫机构。"})
    assert first.status_code == 303
    national = login(server, "agent")
    again = national.post(f"/consult/handoffs/{units['gd']}/answer",
                          data={"csrf_token": csrf_from(national.get("/sessions").text), "answer": "覆盖原答复"})
    assert again.status_code == 409 and "已由 gd_agent 答复" in again.text
    with kb.read() as s:
        handoff = s.get(Handoff, units["gd"])
        assert (handoff.state, handoff.agent, handoff.answer) == ("answered", "gd_agent", "请到当地动物防疫机构。")
    gd.close()
    national.close()


def test_official_intake_goes_to_the_officials_own_subtree(kb, units, server):  # noqa: F811
    bj = login(server, "bj_agent")
    token = csrf_from(bj.get("/appeals/enter").text)
    for region in ("110000", ""):  # no region: the official's own unit, not the national queue
        made = bj.post("/appeals/enter", data={"csrf_token": token, "kind": "opinion", "text": "舆情:北京某厅排长队",
                                               "region": region})
        assert made.status_code == 303, made.text[:300]
    with kb.read() as s:
        assert {s.get(Unit, a.unit_id).code for a in s.scalars(select(Appeal))} == {"110000"}
    bj.close()


def test_analytics_of_a_province_count_only_its_questions(kb, units):  # noqa: F811
    from chunfeng.consult import analytics

    with kb.write() as s:
        services.ask(session=s, query="北京这边的小狗疫苗去哪里打", region="110000", today=date(2024, 5, 1))
    today = date.today()
    with kb.read() as s:
        bj = analytics.report(session=s, actor=person(s, "bj_agent"), filters=analytics.Filters(today, today))
        everyone = analytics.report(session=s, actor=person(s, "agent"), filters=analytics.Filters(today, today))
        assert bj.by_region == {"110000": 1}
        assert everyone.total == s.scalar(select(func.count()).select_from(ConsultQuery)) == 3
    assert GD_QUESTION in [q for g in everyone.gaps for q in g.questions]
    assert [q for g in bj.gaps for q in g.questions] == ["北京这边的小狗疫苗去哪里打"]
    assert {h.question for h in bj.handed_off} <= {"北京这边的小狗疫苗去哪里打"}  # the most handed-off list is scoped too


def test_hotline_records_of_another_province_are_refused_whole(kb, units, server):  # noqa: F811
    csv = "类型,内容,地区代码,电话\n诉求,北京来电:发票开不出来,110000,13900001111\n投诉,广东来电:窗口排队太久,440000,13900002222\n"
    bj = login(server, "bj_agent")
    token = csrf_from(bj.get("/appeals/enter").text)
    refused = finished(bj, bj.post("/appeals/import", data={"csrf_token": token},
                                   files={"file": ("hotline.csv", csv.encode("utf-8"), "text/csv")}))
    assert refused.status_code == 403 and "管辖范围" in refused.text
    with kb.read() as s:
        assert s.scalar(select(func.count()).select_from(Appeal)) == 0  # all or nothing: 北京's row is not kept either
    bj.close()
