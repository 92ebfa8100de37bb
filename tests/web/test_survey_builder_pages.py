"""Building a questionnaire over HTTP without a spreadsheet: a draft, questions of every kind added (a wrong one
refused beside its fields with what was typed kept), changed, moved (a move that breaks a condition refused with the
reason) and deleted; the preview at a phone's and a desk's width; a matrix answered on the public page (missing rows
named) and counted row by row in the results and the API; only a draft changes; refusals outside the subtree."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import func, select

from chunfeng.org.models import AuditEntry
from chunfeng.survey.models import Survey, SurveyQuestion, SurveyResponse
from tests.conftest import csrf_from, login
from tests.web.test_form_errors_pages import form_of
from tests.web.test_review_queue_pages import field_error

QUESTIONS = [
    {"code": "Q1", "kind": "single", "text": "您是否在办税服务厅办过业务?", "options": "是\n否", "required": "是"},
    {"code": "Q2", "kind": "matrix", "text": "您对以下各项服务的满意度", "rows": "办税服务厅\n12366\n电子税务局",
     "required": "是", "show_if": "Q1", "show_values": "是"},
    {"code": "Q3", "kind": "text", "text": "还有什么建议?"},
]


@pytest.fixture
def office(with_plan, county, add_users):
    add_users({"county_officer": ("110101", ["service_officer"]), "bj_viewer": ("110000", ["viewer"]),
               "gd_officer": ("440000", ["service_officer"])})
    return with_plan


def build(officer: httpx.Client) -> int:
    token = csrf_from(officer.get("/survey").text)
    made = officer.post("/survey/drafts", data={"csrf_token": token, "title": "服务满意度调查", "intro": "约两分钟"})
    assert made.status_code == 303, made.text[:400]
    survey_id = int(re.search(r"/survey/(\d+)/build", made.headers["location"])[1])
    for values in QUESTIONS:
        added = officer.post(f"/survey/{survey_id}/questions", data={"csrf_token": token, **values})
        assert added.status_code == 303, added.text[:600]
    return survey_id


def test_an_official_builds_edits_and_previews_a_questionnaire_on_the_page(office, server):
    officer = login(server, "county_officer")
    token = csrf_from(officer.get("/survey").text)
    untitled = officer.post("/survey/drafts", data={"csrf_token": token, "title": " ", "intro": "说明留着"})
    assert untitled.status_code == 400 and "不能为空" in field_error(untitled.text, "title")
    assert "说明留着</textarea>" in untitled.text

    survey_id = build(officer)
    page = officer.get(f"/survey/{survey_id}/build")
    assert page.status_code == 200 and "办税服务厅、12366、电子税务局" in page.text and "Q1 选 是" in page.text

    wrong = officer.post(f"/survey/{survey_id}/questions", data={
        "csrf_token": token, "code": "Q1", "kind": "matrix", "text": "再评一次", "rows": "只有一项", "required": "是"})
    assert wrong.status_code == 400
    assert field_error(wrong.text, "code") == "“Q1”与前面的题重复"
    assert field_error(wrong.text, "rows").startswith("矩阵题至少要有两个不同的子项")
    form = form_of(wrong.text, f"/survey/{survey_id}/questions")
    assert "再评一次</textarea>" in form and "只有一项</textarea>" in form and 'value="matrix" selected' in form

    with office.read() as s:
        q1, q2, q3 = (q.id for q in s.get(Survey, survey_id).questions)
    editing = officer.get(f"/survey/{survey_id}/build?edit={q2}")
    assert "修改题 Q2" in editing.text and "办税服务厅\n12366\n电子税务局</textarea>" in editing.text
    changed = officer.post(f"/survey/{survey_id}/questions/{q2}", data={
        "csrf_token": token, **QUESTIONS[1], "rows": "办税服务厅\n12366热线\n电子税务局\n掌上办税"})
    assert changed.status_code == 303
    blocked = officer.post(f"/survey/{survey_id}/questions/{q1}/move", data={"csrf_token": token, "direction": "down"})
    assert blocked.status_code == 400 and "没有移动或删除:第 1 题(Q2)的显示条件题号:“Q1”不是前面的题" in blocked.text
    assert officer.post(f"/survey/{survey_id}/questions/{q3}/move",
                        data={"csrf_token": token, "direction": "up"}).status_code == 303
    assert officer.post(f"/survey/{survey_id}/questions/{q3}/delete", data={"csrf_token": token}).status_code == 303
    with office.read() as s:
        survey = s.get(Survey, survey_id)
        assert [(q.code, q.position) for q in survey.questions] == [("Q1", 1), ("Q2", 2)]
        assert survey.questions[1].rows[-1] == "掌上办税"
        assert s.scalar(select(func.count()).where(AuditEntry.action.like("survey.question.%"))) == 6

    for width, px in (("phone", 390), ("desktop", 1280)):
        preview = officer.get(f"/survey/{survey_id}/preview?width={width}")
        assert preview.status_code == 200 and f'data-width="{px}"' in preview.text
        assert '<table class="matrix">' in preview.text and 'name="Q2.4"' in preview.text
        # a form that posts nowhere, its one button disabled: nothing typed in a preview is sent
        assert '<form class="stack" aria-label="问卷预览">' in preview.text and "预览中不能提交" in preview.text
    assert 'href="/survey/%d/preview"' % survey_id in page.text  # reachable from the builder


def test_a_built_matrix_is_answered_on_the_public_page_and_counted_by_row(office, server):
    officer = login(server, "county_officer")
    survey_id = build(officer)
    token = csrf_from(officer.get(f"/survey/{survey_id}").text)
    assert officer.post(f"/survey/{survey_id}/publish", data={"csrf_token": token}).status_code == 303
    link = re.search(r'id="public-link">[^<]*/s/([\w-]+)<', officer.get(f"/survey/{survey_id}").text)[1]

    public = httpx.Client(base_url=server, follow_redirects=False, timeout=30)
    form = public.get(f"/s/{link}")
    assert '<table class="matrix">' in form.text and 'name="Q2.3"' in form.text
    csrf = csrf_from(form.text)
    missing = public.post(f"/s/{link}", data={"csrf_token": csrf, "Q1": "是", "Q2.1": "5"})
    assert missing.status_code == 400 and "还没有回答:12366、电子税务局" in missing.text
    assert 'name="Q2.1" value="5" checked' in missing.text
    for hall in ("5", "4"):
        sent = public.post(f"/s/{link}", data={"csrf_token": csrf, "Q1": "是", "Q2.1": hall, "Q2.2": "3", "Q2.3": "4"})
        assert sent.status_code == 303
    skipped = public.post(f"/s/{link}", data={"csrf_token": csrf, "Q1": "否", "Q2.1": "1"})  # Q2 is not shown
    assert skipped.status_code == 303
    with office.read() as s:
        answers = [a for a, in s.execute(select(SurveyResponse.answers).order_by(SurveyResponse.id))]
    assert answers[0] == {"Q1": "是", "Q2.1": 5, "Q2.2": 3, "Q2.3": 4} and answers[2] == {"Q1": "否"}

    viewer = login(server, "bj_viewer")
    results = viewer.get(f"/survey/{survey_id}/results")
    assert results.status_code == 200 and "您对以下各项服务的满意度 — 办税服务厅" in results.text
    assert "平均分 <strong>4.50</strong>" in results.text
    analysis = viewer.get(f"/survey/{survey_id}/analysis?row=Q2.1&col=Q1")
    assert analysis.status_code == 200 and "卡方检验" in analysis.text
    api = viewer.get(f"/api/surveys/{survey_id}/results").json()
    row = next(q for q in api["questions"] if q["code"] == "Q2.1")
    assert (row["kind"], row["mean"]["n"], row["mean"]["mean"]) == ("scale", 2, 4.5)
    opened = public.get(f"/api/s/{link}").json()
    assert opened["questions"][1]["rows"][2] == {"label": "电子税务局", "code": "Q2.3"}
    by_api = public.post(f"/api/s/{link}", json={"answers": {"Q1": "是", "Q2.1": 2, "Q2.2": 2}})
    assert by_api.status_code == 400 and by_api.json()["problems"] == {"Q2": "此题为必答题,每一项都要选择;还没有回答:电子税务局"}


def test_only_a_draft_changes_and_others_are_refused(office, server):
    officer = login(server, "county_officer")
    survey_id = build(officer)
    with office.read() as s:
        q1 = s.scalar(select(SurveyQuestion.id).where(SurveyQuestion.code == "Q1"))
    gd = login(server, "gd_officer")
    gd_token = csrf_from(gd.get("/survey").text)
    for response in (gd.get(f"/survey/{survey_id}/build"), gd.get(f"/survey/{survey_id}/preview"),
                     gd.post(f"/survey/{survey_id}/questions", data={"csrf_token": gd_token, **QUESTIONS[2], "code": "X"}),
                     gd.post(f"/survey/{survey_id}/questions/{q1}/delete", data={"csrf_token": gd_token})):
        assert response.status_code == 403 and "管辖范围" in response.text
    viewer = login(server, "bj_viewer")
    token = csrf_from(viewer.get("/survey").text)
    assert viewer.post("/survey/drafts", data={"csrf_token": token, "title": "不该建立"}).status_code == 403
    assert viewer.get(f"/survey/{survey_id}/preview").status_code == 200  # the unit above sees its subtree's drafts
    with office.read() as s:
        assert s.scalar(select(func.count()).where(AuditEntry.outcome == "denied")) >= 4
        assert s.scalar(select(func.count()).select_from(SurveyQuestion)) == 3

    token = csrf_from(officer.get("/survey").text)
    officer.post(f"/survey/{survey_id}/publish", data={"csrf_token": token})
    frozen = officer.post(f"/survey/{survey_id}/questions/{q1}/delete", data={"csrf_token": token})
    assert frozen.status_code == 400 and "已发布,题目不能再改" in frozen.text
    page = officer.get(f"/survey/{survey_id}/build")
    assert "修改为新版本" in page.text and "添加一道题" not in page.text
    made = officer.post(f"/survey/{survey_id}/next-version", data={"csrf_token": token})
    assert made.status_code == 303
    draft_id = int(re.search(r"/survey/(\d+)/build", made.headers["location"])[1])
    with office.read() as s:
        assert [q.code for q in s.get(Survey, draft_id).questions] == ["Q1", "Q2", "Q3"]
        assert s.get(Survey, draft_id).version == 2
