"""The survey JSON API over a real HTTP server: the officials' list, questionnaire and results within their subtree
(another unit's survey refused with 403 and a denied audit entry), and a respondent's own token answered once with
the public page's checks (a used or wrong token, a missing required answer), rate-limited in the `survey` bucket."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from chunfeng.org.models import AuditEntry
from chunfeng.settings import Settings
from chunfeng.survey import services
from chunfeng.survey.models import SurveyResponse
from tests.conftest import TEST_DATA_KEY, login, person, serving
from tests.survey.test_services import answer, link, make_survey


@pytest.fixture
def office(with_plan, county, add_users):
    add_users({"county_officer": ("110101", ["service_officer"]), "bj_viewer": ("110000", ["viewer"]),
               "gd_officer": ("440000", ["service_officer"])})
    return with_plan


def responses(db) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(SurveyResponse))


def test_officials_see_their_subtree_and_another_unit_is_refused(office, server, tmp_path):
    survey_id = make_survey(office, tmp_path)
    viewer = login(server, "bj_viewer")  # the unit above the county that runs it
    listed = viewer.get("/api/surveys")
    assert listed.status_code == 200
    body = listed.json()
    assert body["total"] == 1 and body["items"][0]["id"] == survey_id and body["items"][0]["unit"] == "110101"
    questions = viewer.get(f"/api/surveys/{survey_id}").json()["questions"]
    assert [q["code"] for q in questions] == ["Q1", "Q2", "Q3", "Q4", "Q5"]
    assert questions[1]["required"] and questions[1]["show_if"] == "Q1" and questions[3]["choices"][-1] == "10"

    other = login(server, "gd_officer")  # Guangdong: not its subtree
    assert other.get("/api/surveys").json() == {"page": 1, "pages": 1, "total": 0, "items": []}
    for path in (f"/api/surveys/{survey_id}", f"/api/surveys/{survey_id}/results"):
        refused = other.get(path)
        assert refused.status_code == 403 and refused.headers["content-type"].startswith("application/json")
        assert "无权" in refused.json()["detail"] or "权限" in refused.json()["detail"]
    with office.read() as s:
        denied = s.scalars(select(AuditEntry).where(AuditEntry.actor == "gd_officer",
                                                    AuditEntry.outcome == "denied")).all()
        assert len(denied) == 2
    assert viewer.get("/api/surveys/999999").status_code == 404
    assert httpx.get(f"{server}/api/surveys").status_code == 401  # no session: no list


def test_a_respondent_answers_through_the_api_with_the_pages_checks(office, server, tmp_path):
    survey_id = make_survey(office, tmp_path)
    token = link(office, survey_id)
    public = httpx.Client(base_url=server, timeout=30)
    opened = public.get(f"/api/s/{token}").json()
    assert opened["invited"] is False and [q["code"] for q in opened["questions"]][:2] == ["Q1", "Q2"]

    missing = public.post(f"/api/s/{token}", json={"answers": {"Q1": "是", "Q5": "希望延长服务时间"}})
    assert missing.status_code == 400 and missing.json()["problems"] == {"Q2": "此题为必答题"}
    forged = public.post(f"/api/s/{token}", json={"answers": {"Q1": "是", "Q2": 7}})
    assert forged.status_code == 400 and forged.json()["problems"]["Q2"] == "请从给出的选项中选择一项"
    assert responses(office) == 0

    for q2, q4 in [(5, 10), (4, 9), (3, 3)]:
        sent = public.post(f"/api/s/{token}", json={"answers": {"Q1": "是", "Q2": q2, "Q3": ["电子税务局"], "Q4": q4}})
        assert sent.status_code == 201 and sent.json()["response_id"] > 0
    results = login(server, "bj_viewer").get(f"/api/surveys/{survey_id}/results").json()
    assert results["responses"] == 3 and results["by_link"] == 3
    by_code = {q["code"]: q for q in results["questions"]}
    assert by_code["Q2"]["mean"]["mean"] == 4.0 and by_code["Q2"]["mean"]["low"] < 4 < by_code["Q2"]["mean"]["high"]
    assert round(by_code["Q4"]["nps"]["score"], 1) == 33.3
    assert ("电子税务局", 3, 100.0) in [(c["choice"], c["count"], c["share"]) for c in by_code["Q3"]["counts"]]
    assert results["weighting"]["applies"] is False and results["weighting"]["questions"] == []

    for wrong in ("no-such-token", "x" * 300):
        assert public.get(f"/api/s/{wrong}").status_code == 404
        refused = public.post(f"/api/s/{wrong}", json={"answers": {"Q1": "否"}})
        assert refused.status_code == 404 and "问卷链接无效" in refused.json()["detail"]
    assert responses(office) == 3


def test_an_invitation_answers_once_through_the_api(office, server, tmp_path):
    survey_id = make_survey(office, tmp_path)
    with office.write() as s:
        [(_, token)] = services.create_invitations(session=s, actor=person(s, "county_officer"), survey_id=survey_id,
                                                   labels=["甲公司"])
    public = httpx.Client(base_url=server, timeout=30)
    assert public.get(f"/api/s/{token}").json()["invited"] is True
    assert public.post(f"/api/s/{token}", json={"answers": {"Q1": "否"}}).status_code == 201
    again = public.post(f"/api/s/{token}", json={"answers": {"Q1": "是", "Q2": 5}})
    assert again.status_code == 409 and "只能提交一次" in again.json()["detail"]
    assert public.get(f"/api/s/{token}").status_code == 409
    assert responses(office) == 1


@pytest.fixture(scope="module")
def limited_server(_database, server_files):
    settings = Settings(database_url=_database.url, secret_key="test-secret-not-for-production", environment="test",
                        data_key=TEST_DATA_KEY, scan_interval_minutes=0, data_dir=str(server_files),
                        rate_limits={"survey": 2})
    with serving(_database, settings) as url:
        yield url


def test_answers_are_rate_limited_in_the_survey_bucket(office, limited_server, tmp_path):
    token = link(office, make_survey(office, tmp_path))
    with httpx.Client(base_url=limited_server, timeout=30) as public:
        codes = [public.post(f"/api/s/{token}", json={"answers": {"Q1": "否"}}).status_code for _ in range(3)]
        assert codes == [201, 201, 429]
        assert "请求过于频繁" in public.post(f"/api/s/{token}", json={"answers": {"Q1": "否"}}).json()["detail"]
        assert public.get(f"/api/s/{token}").status_code == 200  # reading the questions is not counted


def test_crosstabs_and_themes_for_officials_of_the_subtree(office, server, tmp_path):
    survey_id = make_survey(office, tmp_path)
    token = link(office, survey_id)
    for q1, q2, q4, text in [("是", 5, 10, "办税服务厅排队时间太长"), ("是", 4, 9, "办税服务厅排队时间太长了"),
                             ("是", 2, 3, "电子税务局经常卡顿"), ("否", None, 8, "")]:
        answer(office, token, Q1=q1, **({"Q2": str(q2)} if q2 else {}), Q4=str(q4), **({"Q5": text} if text else {}))
    viewer = login(server, "bj_viewer")
    table = viewer.get(f"/api/surveys/{survey_id}/crosstab", params={"row": "Q1", "col": "Q4"})
    assert table.status_code == 200, table.text
    body = table.json()
    assert body["rows"] == ["是", "否"] and body["cols"][-1] == "10" and len(body["counts"]) == 2
    assert sum(map(sum, body["counts"])) == 4 and body["counts"][1][8] == 1  # 否 × 8; the chi-square over the 4 columns answered:
    assert body["test"]["df"] == 3 and body["test"]["sparse"] is True and body["weighted_shares"] is None
    wrong = viewer.get(f"/api/surveys/{survey_id}/crosstab", params={"row": "Q1", "col": "Q3"})
    assert wrong.status_code == 400 and "交叉表" in wrong.json()["detail"]  # a multiple choice question
    unknown = viewer.get(f"/api/surveys/{survey_id}/crosstab", params={"row": "Q1", "col": "Q9"})
    assert unknown.status_code == 400 and "Q9" in unknown.json()["detail"]

    themes = viewer.get(f"/api/surveys/{survey_id}/themes")
    assert themes.status_code == 200, themes.text
    found = themes.json()
    assert found["text_answers"] == 3 and found["compared_with"] is None
    assert found["themes"] and found["themes"][0]["current"] == 2 and "排队" in found["themes"][0]["label"]
    assert all(t["previous_share"] is None and not t["rising"] for t in found["themes"])

    other = login(server, "gd_officer")
    for path in (f"/api/surveys/{survey_id}/crosstab?row=Q1&col=Q4", f"/api/surveys/{survey_id}/themes"):
        refused = other.get(path)
        assert refused.status_code == 403 and "无权" in refused.json()["detail"]
        assert viewer.get(path.replace(f"/{survey_id}/", "/999999/")).status_code == 404
        assert httpx.get(f"{server}{path}").status_code == 401
    with office.read() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.actor == "gd_officer", AuditEntry.outcome == "denied")) == 2
