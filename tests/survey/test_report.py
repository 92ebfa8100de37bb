"""The survey analysis on a real database: responses carrying their sample's stratum weighted back to the
population sizes, unweighted (and said) otherwise; a cross-tab; themes of free text rising against the previous
version; a theme linked to measures and handed to the ledger by the findings step; xlsx and PDF."""

from __future__ import annotations

import math

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from chunfeng.errors import Forbidden
from chunfeng.org.models import AuditEntry
from chunfeng.survey import report, services
from chunfeng.survey.direct_models import SurveyTheme
from chunfeng.survey.errors import SurveyInvalid
from chunfeng.survey.models import SurveyInvitation
from chunfeng.tabular import TableLimits
from tests.conftest import person
from tests.survey.test_services import GOOD, answer, link, make_survey, sheet


@pytest.fixture
def office(with_plan, county, add_users):
    add_users({"county_officer": ("110101", ["service_officer"]), "bj_viewer": ("110000", ["viewer"])})
    return with_plan

SLOW = "电子税务局高峰期登录很慢经常卡顿"
QUEUE = "办税服务厅排队时间太长希望增加窗口"


def invited(db, survey_id, strata: list[str]) -> list[str]:
    with db.write() as s:
        made = services.create_invitations(session=s, actor=person(s, "county_officer"), survey_id=survey_id,
                                           labels=[f"企业{i}" for i in range(len(strata))])
        s.flush()
        for (_, token), stratum in zip(made, strata, strict=True):
            s.scalar(select(SurveyInvitation).where(SurveyInvitation.token_digest == services._digest(token))).stratum = stratum
        return [token for _, token in made]


def test_weighted_results_crosstab_and_rising_themes(office, tmp_path):
    first = make_survey(office, tmp_path)
    for text in (QUEUE, QUEUE + "。", SLOW):
        answer(office, link(office, first), Q1="否", Q5=text)
    specs = services.parse_questionnaire(sheet(tmp_path, GOOD, "v2.xlsx"), limits=TableLimits())
    with office.write() as s:
        second = services.import_questionnaire(session=s, actor=person(s, "county_officer"), title="纳税人需求调查",
                                               questions=specs, edit_of=first).id
        services.publish(session=s, actor=person(s, "county_officer"), survey_id=second)
    # 大型: Q2 = 5, 4, 3; 小型: Q2 = 2, 2, 4, 4 — the numbers of test_weighting; and one open-link answer.
    tokens = invited(office, second, ["大型"] * 3 + ["小型"] * 4)
    for token, q2, q4 in zip(tokens, ["5", "4", "3", "2", "2", "4", "4"], ["10", "9", "9", "3", "6", "8", "10"], strict=True):
        answer(office, token, Q1="是", Q2=q2, Q4=q4, Q5=SLOW if q2 in "234" else QUEUE)
    answer(office, link(office, second), Q1="是", Q2="1", Q5="其他")

    with office.read() as s:
        a = report.analyse(session=s, actor=person(s, "bj_viewer"), survey_id=second, with_suggestions=False)
    assert not a.weighting.applies and a.weighted == []  # no population sizes yet: unweighted, and the page says why

    with pytest.raises(SurveyInvalid, match="第 2 行"):
        report.parse_sizes("大型,1000\n小型,三千")
    with pytest.raises(Forbidden), office.write() as s:  # a viewer may not change the frame
        report.set_population(session=s, actor=person(s, "bj_viewer"), survey_id=second, sizes={"大型": 1})
    with office.write() as s:
        report.set_population(session=s, actor=person(s, "county_officer"), survey_id=second,
                              sizes=report.parse_sizes("大型,1000\n小型,3000"))
    with office.read() as s:
        a = report.analyse(session=s, actor=person(s, "bj_viewer"), survey_id=second, row="Q2", col="Q4",
                           with_suggestions=False)
        html = report.render_html(a)
    w = a.weighting
    assert (w.applies, w.weighted, w.unstratified) == (True, 7, 1)
    q2 = next(q for q in a.weighted if q.code == "Q2")
    assert q2.estimate.mean == pytest.approx(3.25)
    half = 2.571 * math.sqrt(0.25 ** 2 * (1 - 3 / 1000) / 3 + 0.75 ** 2 * (1 - 4 / 3000) * (4 / 3) / 4)
    assert q2.estimate.high == pytest.approx(3.25 + half)
    q4 = next(q for q in a.weighted if q.code == "Q4")
    # Promoters: 大型 3 of 3, 小型 1 of 4; detractors: 小型 2 of 4 → 25 % + 18.75 % − 37.5 %.
    assert q4.nps == pytest.approx(100 * (0.25 + 0.75 / 4) - 100 * 0.75 / 2)
    t = a.crosstab
    assert t.total == 7 and t.counts[t.rows.index("4")][t.cols.index("10")] == 1 and t.test.df > 0
    assert a.compared_with.id == first
    assert a.rates == [("大型", 3, 3), ("小型", 4, 4)]  # response rate by stratum, from the invitations
    top = {th.label: th for th in a.themes}
    slow = next(th for label, th in top.items() if "登录很慢" in label)
    # This version: 6 of 8 texts are about the slow login (1 of 3 before); the queue 1 of 8 (2 of 3 before).
    assert (slow.current, slow.previous) == (6, 1) and slow.rise == pytest.approx(100 * 6 / 8 - 100 / 3)
    assert [th.label for th in a.rising] == [slow.label]
    assert "按总体分层加权" in html and "卡方检验" in html and "1 份答卷没有分层信息" in html

    with pytest.raises(SurveyInvalid, match="没有第 999 条措施"), office.write() as s:
        report.link_theme(session=s, actor=person(s, "county_officer"), survey_id=second, label=slow.label,
                          measures=[999], terms=slow.terms, size=6)
    with office.write() as s:
        report.link_theme(session=s, actor=person(s, "county_officer"), survey_id=second, label=slow.label,
                          measures=[5, 28], terms=slow.terms, size=6)
    with office.read() as s:
        a = report.analyse(session=s, actor=person(s, "county_officer"), survey_id=second, with_suggestions=False)
        assert next(th for th in a.themes if th.label == slow.label).measures == [5, 28]
        assert s.scalar(select(func.count()).where(AuditEntry.action == "survey.theme.linked")) == 1
        assert s.scalar(select(SurveyTheme.measures)) == [5, 28]

    path = tmp_path / "a.xlsx"
    with office.write() as s:
        a = report.analyse(session=s, actor=person(s, "bj_viewer"), survey_id=second, row="Q2", col="Q4",
                           with_suggestions=False)
        report.export_xlsx(session=s, actor=person(s, "bj_viewer"), a=a, path=path)
    book = load_workbook(path)
    assert [r[:3] for r in book["分层与权数"].iter_rows(min_row=2, values_only=True)] == [("大型", 1000, 3), ("小型", 3000, 4)]
    assert any(r[0] == "p 值" for r in book["卡方检验"].iter_rows(values_only=True))
    assert report.render_pdf(a)[:4] == b"%PDF"


def test_a_crosstab_refuses_text_and_multiple_choice_questions(office, tmp_path):
    survey_id = make_survey(office, tmp_path)
    with office.read() as s:
        for row, col, message in (("Q3", "Q2", "多选"), ("Q5", "Q2", "填空"), ("Q2", "Q2", "两道不同"), ("Q9", "Q2", "不是")):
            with pytest.raises(SurveyInvalid, match=message):
                report.analyse(session=s, actor=person(s, "bj_viewer"), survey_id=survey_id, row=row, col=col,
                               with_suggestions=False)

