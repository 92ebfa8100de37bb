"""The public ask page and API, and the agents' console, over HTTP."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from chunfeng.consult.models import ConsultQuery, Handoff
from tests.conftest import csrf_from, finished, login
from tests.consult.test_services import kb  # noqa: F401  (the fixture)


def test_public_ask_page_without_login(kb, server):  # noqa: F811
    with httpx.Client(base_url=server) as client:
        page = client.get("/ask", params={"q": "个税汇算什么时候办"})
        assert page.status_code == 200 and "次年3月1日至6月30日" in page.text and "第十一条" in page.text
        assert "有帮助" in page.text
        large = client.get("/ask", params={"q": "个税汇算什么时候办", "large": "true"}).text
        assert '<body class="large"' in large
        query_id = re.search(r'name="query_id" value="(\d+)"', page.text)[1]
        token = re.search(r'name="token" value="([^"]+)"', page.text)[1]
        rated = client.post("/ask/feedback", data={"csrf_token": csrf_from(page.text), "query_id": query_id,
                                                   "token": token, "helpful": "true"})
        assert rated.status_code == 303
        assert client.post("/ask/feedback", data={"query_id": query_id, "helpful": "false"}).status_code == 403
        again = client.post("/ask/feedback", data={"csrf_token": csrf_from(page.text), "query_id": query_id,
                                                   "token": token, "helpful": "false"})
        assert again.status_code == 409 and "已经评价过" in again.text  # one rating per answer
    with kb.read() as s:
        assert s.get(ConsultQuery, int(query_id)).feedback == "helpful"


def test_only_the_asker_rates_an_answer(kb, server):  # noqa: F811
    """Query ids are sequential: anyone could rate every answer by counting. The token the answer page gave
    the asker is what a rating needs."""
    asker = httpx.Client(base_url=server)
    page = asker.get("/ask", params={"q": "小规模纳税人增值税征收率"}).text
    query_id = re.search(r'name="query_id" value="(\d+)"', page)[1]
    with httpx.Client(base_url=server) as stranger:
        own = stranger.get("/ask", params={"q": "个税汇算什么时候办"}).text
        for token in ("", "guess", re.search(r'name="token" value="([^"]+)"', own)[1]):  # another answer's token too
            forged = stranger.post("/ask/feedback", data={"csrf_token": csrf_from(own), "query_id": query_id,
                                                          "token": token, "helpful": "false"})
            assert forged.status_code == 403 and "只有提问人" in forged.text
            handed = stranger.post("/ask/handoff", data={"csrf_token": csrf_from(own), "query_id": query_id,
                                                         "token": token})
            assert handed.status_code == 403
    with kb.read() as s:
        assert s.get(ConsultQuery, int(query_id)).feedback is None and s.scalar(select(Handoff.id)) is None
    asker.close()


def test_a_handoff_is_made_by_an_explicit_post_only(kb, server):  # noqa: F811
    with httpx.Client(base_url=server) as client:
        page = client.get("/ask", params={"q": "我家小狗的疫苗怎么打", "region": "110000"})
        assert page.status_code == 200 and "转人工" in page.text and "没有十足的把握" in page.text
        with kb.read() as s:
            assert s.scalar(select(Handoff.id)) is None  # a GET (a link, a prefetch, a crawler) changes nothing
        query_id = re.search(r'name="query_id" value="(\d+)"', page.text)[1]
        token = re.search(r'name="token" value="([^"]+)"', page.text)[1]
        assert client.post("/ask/handoff", data={"query_id": query_id, "token": token}).status_code == 403  # no CSRF
        made = client.post("/ask/handoff", data={"csrf_token": csrf_from(page.text), "query_id": query_id, "token": token})
        assert made.status_code == 303
        assert "已转给 12366 人工坐席" in client.get(made.headers["location"]).text
        twice = client.post("/ask/handoff", data={"csrf_token": csrf_from(page.text), "query_id": query_id, "token": token})
        assert twice.status_code == 409
    with kb.read() as s:
        handoff = s.scalar(select(Handoff))
        assert handoff.text == "我家小狗的疫苗怎么打" and handoff.unit.code == "110000"
    unknown = httpx.get(f"{server}/api/consult", params={"q": "个税汇算什么时候办", "region": "广东"})
    assert unknown.status_code == 400 and "地区" in unknown.json()["detail"]


def test_api(kb, server):  # noqa: F811
    data = httpx.get(f"{server}/api/consult", params={"q": "春风行动承诺出口退税要多少个工作日", "region": "110000"}).json()
    assert set(data) == {"query", "query_id", "token", "answers", "handoff", "region"}
    top = data["answers"][0]
    assert top["id"] == "measure:54" and top["source"] == "measure" and top["measure_no"] == 54
    operational = httpx.get(f"{server}/api/consult", params={"q": "出口退税要多少个工作日"}).json()
    assert all(a["source"] != "measure" for a in operational["answers"])  # not the 2022 target as the answer
    assert set(top) >= {"id", "source", "measure_no", "title", "answer", "basis", "score", "confidence"}
    unsure = httpx.get(f"{server}/api/consult", params={"q": "火星上有税务局吗"}).json()
    assert unsure["handoff"] is True
    bad = httpx.get(f"{server}/api/consult", params={"q": "   "})
    assert bad.status_code == 400 and "请输入问题" in bad.json()["detail"]


def test_agent_answers_and_promotes(kb, server):  # noqa: F811
    asked = httpx.get(f"{server}/api/consult", params={"q": "我家小狗的疫苗怎么打"}).json()
    assert httpx.post(f"{server}/api/consult/handoff", json={"query_id": asked["query_id"],
                                                              "token": asked["token"]}).status_code == 201
    agent = login(server, "agent")
    queue = agent.get("/consult/queue").text
    assert "我家小狗的疫苗怎么打" in queue
    with kb.read() as s:
        handoff_id = s.scalar(select(Handoff.id))
    agent.post(f"/consult/handoffs/{handoff_id}/answer", data={"csrf_token": csrf_from(queue), "answer": "请咨询动物防疫机构。"})
    answered = agent.get("/consult/queue", params={"state": "answered"}).text
    promoted = agent.post(f"/consult/handoffs/{handoff_id}/promote", data={"csrf_token": csrf_from(answered), "tags": "其他"})
    assert promoted.status_code == 303 and promoted.headers["location"].startswith("/consult/kb/kb-0003")
    entry_page = agent.get(promoted.headers["location"]).text
    assert "请咨询动物防疫机构" in entry_page
    assert httpx.get(f"{server}/api/consult", params={"q": "小狗疫苗怎么打"}).json()["answers"][0]["id"] == "kb-0003"
    viewer = login(server, "viewer")
    assert viewer.get("/consult/queue").status_code == 403
    assert viewer.get("/consult/kb").status_code == 403


def test_kb_editor_and_exports(kb, server):  # noqa: F811
    agent = login(server, "agent")
    page = agent.get("/consult/kb/kb-0002").text
    saved = agent.post("/consult/kb", data={"csrf_token": csrf_from(page), "key": "kb-0002", "version": "1",
                                            "question": "小规模纳税人增值税征收率是多少", "answer": "3%(新答案)",
                                            "region": "national", "status": "published"})
    assert saved.status_code == 303
    history = agent.get("/consult/kb/kb-0002").text
    assert "第 2 版" in history and "历史版本" in history
    stale = agent.post("/consult/kb", data={"csrf_token": csrf_from(page), "key": "kb-0002", "version": "1",
                                            "question": "x", "answer": "y"})
    assert stale.status_code == 400 and "请刷新" in stale.text
    for fmt in ("xlsx", "csv", "json", "md"):
        assert agent.get(f"/consult/kb/export.{fmt}").status_code == 200
    listing = agent.get("/consult/kb", params={"q": "征收率"}).text
    assert "kb-0002" in listing and "kb-0001" not in listing
    upload = finished(agent, agent.post("/consult/kb/import", data={"csrf_token": csrf_from(listing)},
                                        files={"file": ("x.csv", "问题,答案\n,空问题\n".encode(), "text/csv")}))
    assert upload.status_code == 400 and "第 2 行:问题为空" in upload.text


def test_review_queue_page_lists_links_and_confirms(kb, server):  # noqa: F811
    """kb-0002 answers the 征收率 from the repealed 增值税暂行条例; once an entry on the VAT law lists the regulations
    as repealed, the queue shows it with a link to edit; a confirmation is audited and needs the edit right."""
    agent = login(server, "agent")
    page = agent.get("/consult/kb/new")
    saved = agent.post("/consult/kb", data={
        "csrf_token": csrf_from(page.text), "question": "增值税法什么时候施行", "answer": "自2026年1月1日起施行。",
        "basis": "《中华人民共和国增值税法》", "effective_from": "2026-01-01",
        "repeals": "《中华人民共和国增值税暂行条例》\n《中华人民共和国增值税暂行条例实施细则》"})
    assert saved.status_code == 303
    queue = agent.get("/consult/review")
    assert queue.status_code == 200 and "引用了已被废止或替代的文件" in queue.text
    assert 'href="/consult/kb/kb-0002"' in queue.text and "待审核" in queue.text
    viewer = login(server, "officer")  # a service officer reads the queue but may not confirm
    assert viewer.get("/consult/review").status_code == 200
    assert viewer.post("/consult/review/kb-0001", data={"csrf_token": csrf_from(viewer.get("/consult/review").text)}
                       ).status_code == 403
    confirmed = agent.post("/consult/review/kb-0001", data={"csrf_token": csrf_from(queue.text), "page": "1"})
    assert confirmed.status_code == 303
    assert agent.post("/consult/review/kb-9999", data={"csrf_token": csrf_from(queue.text)}).status_code == 404
    with kb.read() as s:
        from chunfeng.org.models import AuditEntry
        assert s.scalar(select(AuditEntry).where(AuditEntry.action == "consult.entry.reviewed")).object_id == "kb-0001"


def test_an_ended_entry_is_shown_as_past(kb, server, system):  # noqa: F811
    from datetime import date

    from chunfeng.consult import knowledge
    with kb.write() as s:
        knowledge.save_entry(session=s, actor=system, values={
            "question": "2021年小规模纳税人月销售额15万元以下免征增值税吗", "answer": "2021年4月1日至2022年12月31日免征。",
            "basis": "财政部 税务总局公告2021年第11号", "effective_from": date(2021, 4, 1),
            "effective_until": date(2022, 12, 31)})
    with httpx.Client(base_url=server) as client:
        page = client.get("/ask", params={"q": "2021年小规模纳税人月销售额15万元以下免征增值税吗"}).text
        assert "该条内容已于 2022-12-31 到期,不是现行规定" in page
        api = client.get("/api/consult", params={"q": "2021年小规模纳税人月销售额15万元以下免征增值税吗"}).json()
        assert [a["current"] for a in api["answers"] if a["basis"].startswith("财政部 税务总局公告2021年第11号")] == [False]


def test_analytics_page_lists_the_questions_handed_off_most(kb, server):  # noqa: F811
    with httpx.Client(base_url=server) as client:
        for _ in range(2):
            assert client.get("/ask", params={"q": "火星上的天气冷不冷"}).status_code == 200
    agent = login(server, "agent")
    page = agent.get("/consult/analytics").text
    assert "转人工最多的问题" in page
    row = re.search(r"<tr><td>火星上的天气冷不冷</td><td>(\d+)</td>", page)
    assert row and row[1] == "2"
    sheet = agent.get("/consult/analytics", params={"export": "handed_off"})
    assert sheet.status_code == 200 and sheet.content[:2] == b"PK"
    agent.close()
