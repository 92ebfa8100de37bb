"""The public ask page and API, and the agents' console, over HTTP."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from chunfeng.consult.models import ConsultQuery, Handoff
from tests.conftest import csrf_from, login
from tests.consult.test_services import kb  # noqa: F401  (the fixture)


def test_public_ask_page_without_login(kb, server):  # noqa: F811
    with httpx.Client(base_url=server) as client:
        page = client.get("/ask", params={"q": "个税汇算什么时候办"})
        assert page.status_code == 200 and "次年3月1日至6月30日" in page.text and "第十一条" in page.text
        assert "有帮助" in page.text
        large = client.get("/ask", params={"q": "个税汇算什么时候办", "large": "true"}).text
        assert '<body class="large"' in large
        query_id = re.search(r'name="query_id" value="(\d+)"', page.text)[1]
        rated = client.post("/ask/feedback", data={"csrf_token": csrf_from(page.text), "query_id": query_id,
                                                   "helpful": "true"})
        assert rated.status_code == 303
        assert client.post("/ask/feedback", data={"query_id": query_id, "helpful": "false"}).status_code == 403
    with kb.read() as s:
        assert s.get(ConsultQuery, int(query_id)).feedback == "helpful"


def test_api(kb, server):  # noqa: F811
    data = httpx.get(f"{server}/api/consult", params={"q": "出口退税要多少个工作日", "region": "110000"}).json()
    assert set(data) == {"query", "query_id", "answers", "handoff", "region"}
    top = data["answers"][0]
    assert top["id"] == "measure:54" and top["source"] == "measure" and top["measure_no"] == 54
    assert set(top) >= {"id", "source", "measure_no", "title", "answer", "basis", "score", "confidence"}
    unsure = httpx.get(f"{server}/api/consult", params={"q": "火星上有税务局吗"}).json()
    assert unsure["handoff"] is True
    bad = httpx.get(f"{server}/api/consult", params={"q": "   "})
    assert bad.status_code == 400 and "请输入问题" in bad.json()["detail"]


def test_agent_answers_and_promotes(kb, server):  # noqa: F811
    httpx.get(f"{server}/api/consult", params={"q": "我家小狗的疫苗怎么打"})
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
    upload = agent.post("/consult/kb/import", data={"csrf_token": csrf_from(listing)},
                        files={"file": ("x.csv", "问题,答案\n,空问题\n".encode(), "text/csv")})
    assert upload.status_code == 400 and "第 2 行:问题为空" in upload.text
