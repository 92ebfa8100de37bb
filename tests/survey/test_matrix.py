"""Matrix questions (several rows rated on one shared scale or shared options) on a real database: declared in the
xlsx by the column 子项, refused with the row and column when wrong, answered row by row with the missing rows
named, kept one answer key per row, and counted by the analysis row by row like a scale question — means with
intervals, weighting, a cross-tab by a row — in the results, the xlsx exports, the PDF report and the API."""

from __future__ import annotations

import math

import pytest
from openpyxl import load_workbook

from chunfeng.errors import ValidationFailed
from chunfeng.survey import analysis, answering, report, services
from chunfeng.survey.models import Survey, SurveyResponse
from chunfeng.tabular import TableLimits
from chunfeng.xlsx import write_table
from tests.conftest import person
from tests.survey.test_report import invited
from tests.survey.test_services import link

HEADERS = ["题号", "题型", "题目", "选项", "子项", "必答", "显示条件题号", "显示条件选项"]
ROWS = "办税服务厅|12366|电子税务局"
MATRIX = [
    ["Q1", "单选", "您是否在办税服务厅办过业务?", "是|否", "", "是", "", ""],
    ["Q2", "矩阵", "您对以下各项服务的满意度", "", ROWS, "是", "", ""],
    ["Q3", "矩阵", "以下渠道您用过吗?", "用过|没用过", "掌上办税|自助终端", "否", "Q1", "是"],
    ["Q4", "填空", "还有什么建议?", "", "", "否", "", ""],
]


@pytest.fixture
def office(with_plan, county, add_users):
    add_users({"county_officer": ("110101", ["service_officer"]), "bj_viewer": ("110000", ["viewer"])})
    return with_plan


def matrix_sheet(tmp_path, rows, name="矩阵.xlsx"):
    return write_table(tmp_path / name, sheet="问卷", headers=HEADERS, rows=rows)


def make_matrix_survey(db, tmp_path, rows=MATRIX) -> int:
    specs = services.parse_questionnaire(matrix_sheet(tmp_path, rows), limits=TableLimits())
    with db.write() as s:
        survey = services.import_questionnaire(session=s, actor=person(s, "county_officer"), title="服务满意度调查",
                                               questions=specs)
        services.publish(session=s, actor=person(s, "county_officer"), survey_id=survey.id)
        return survey.id


def submit(db, token, **fields):
    with db.write() as s:
        return answering.submit(session=s, token=token, raw={k.replace("_", "."): [v] for k, v in fields.items()})


def test_a_matrix_is_imported_with_its_rows_and_rated_on_the_scale_or_its_shared_options(office, tmp_path):
    survey_id = make_matrix_survey(office, tmp_path)
    with office.read() as s:
        q2, q3 = s.get(Survey, survey_id).questions[1:3]
        assert (q2.kind, q2.rows, q2.options, q2.choices) == ("matrix", ["办税服务厅", "12366", "电子税务局"], [],
                                                              ["1", "2", "3", "4", "5"])
        assert (q3.rows, q3.choices, q3.show_if) == (["掌上办税", "自助终端"], ["用过", "没用过"], "Q1")
        items = s.get(Survey, survey_id).items
        assert [(i.code, i.kind) for i in items] == [("Q1", "single"), ("Q2.1", "scale"), ("Q2.2", "scale"),
                                                     ("Q2.3", "scale"), ("Q3.1", "single"), ("Q3.2", "single"),
                                                     ("Q4", "text")]
        assert items[2].text == "您对以下各项服务的满意度 — 12366"


def test_a_wrong_matrix_is_refused_naming_the_row_and_column(office, tmp_path):
    bad = [
        ["Q1", "单选", "办过业务吗?", "是|否", "", "是", "", ""],
        ["Q2", "矩阵", "满意度", "", "办税服务厅", "是", "", ""],  # one row
        ["Q3", "矩阵", "满意度", "好|差|好", "甲|乙|甲", "否", "", ""],  # repeated option and row
        ["Q4", "单选", "哪个?", "甲|乙", "甲|乙", "否", "", ""],  # rows on a single choice
        ["Q5", "单选", "为什么?", "甲|乙", "", "否", "Q6", "1"],  # a condition on a later question
        ["Q6", "矩阵", "满意度", "", "甲|乙", "否", "", ""],
        ["Q7", "单选", "再问", "甲|乙", "", "否", "Q6", "1"],  # a matrix cannot be a condition
        ["Q6.1", "填空", "撞号", "", "", "否", "", ""],  # the answer key of Q6's first row
        ["ABCDEFGHIJKLMN", "矩阵", "满意度", "", "甲|乙", "否", "", ""],  # too long for its rows' keys
    ]
    with pytest.raises(ValidationFailed) as caught:
        services.parse_questionnaire(matrix_sheet(tmp_path, bad), limits=TableLimits())
    message = str(caught.value)
    for expected in ("第 3 行 子项:矩阵题至少要有两个不同的子项", "第 4 行 选项:矩阵题的共用选项:有重复的选项",
                     "第 4 行 子项:有重复的子项", "第 5 行 子项:只有矩阵题有子项", "第 6 行 显示条件题号:“Q6”不是前面的题",
                     "第 8 行 显示条件题号:“Q6”是矩阵题,不能作为显示条件",
                     "第 9 行 题号:“Q6.1”与矩阵题 Q6 的子项答案编号相同",
                     "第 10 行 题号:矩阵题的题号不超过 13 个字符"):
        assert expected in message, (expected, message)


def test_answers_are_kept_row_by_row_and_a_required_matrix_names_the_rows_left_out(office, tmp_path):
    survey_id = make_matrix_survey(office, tmp_path)
    token = link(office, survey_id)
    with pytest.raises(answering.AnswerInvalid) as caught:
        submit(office, token, Q1="否", Q2_1="5")
    assert caught.value.problems == {"Q2": "此题为必答题,每一项都要选择;还没有回答:12366、电子税务局"}
    with pytest.raises(answering.AnswerInvalid) as caught:
        submit(office, token, Q1="否", Q2_1="5", Q2_2="6", Q2_3="1")
    assert caught.value.problems == {"Q2": "“12366”:请从给出的选项中选择一项"}
    # Q3 is shown only to those who answered Q1 = 是: its rows are dropped for the others.
    response = submit(office, token, Q1="否", Q2_1="5", Q2_2="4", Q2_3="1", Q3_1="用过")
    assert response.answers == {"Q1": "否", "Q2.1": 5, "Q2.2": 4, "Q2.3": 1}
    response = submit(office, token, Q1="是", Q2_1="3", Q2_2="4", Q2_3="2", Q3_2="没用过")
    assert response.answers == {"Q1": "是", "Q2.1": 3, "Q2.2": 4, "Q2.3": 2, "Q3.2": "没用过"}


def test_the_analysis_counts_each_row_like_a_scale_question(office, tmp_path):
    survey_id = make_matrix_survey(office, tmp_path)
    # 大型 rates the hall 5, 4, 3; 小型 2, 2, 4, 4 (the numbers of test_weighting); the 12366 row 3 throughout.
    tokens = invited(office, survey_id, ["大型"] * 3 + ["小型"] * 4)
    for token, hall, q1 in zip(tokens, "5432244", ["是", "是", "是", "否", "否", "否", "否"], strict=True):
        submit(office, token, Q1=q1, Q2_1=hall, Q2_2="3", Q2_3="4", **({"Q3_1": "用过"} if q1 == "是" else {}))
    with office.read() as s:
        r = analysis.results(session=s, actor=person(s, "bj_viewer"), survey_id=survey_id)
    by_code = {q.question.code: q for q in r.questions}
    hall = by_code["Q2.1"]
    values = [5, 4, 3, 2, 2, 4, 4]
    mean = sum(values) / 7
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / 6)
    assert (hall.mean.n, hall.mean.mean) == (7, pytest.approx(mean))
    assert hall.mean.high == pytest.approx(mean + 2.447 * sd / math.sqrt(7))
    assert by_code["Q2.2"].mean.mean == 3 and by_code["Q2.2"].mean.low == by_code["Q2.2"].mean.high == 3
    assert [(c, k) for c, k, _ in by_code["Q3.1"].counts] == [("用过", 3), ("没用过", 0)]

    with office.write() as s:
        report.set_population(session=s, actor=person(s, "county_officer"), survey_id=survey_id,
                              sizes={"大型": 1000, "小型": 3000})
    with office.read() as s:
        a = report.analyse(session=s, actor=person(s, "bj_viewer"), survey_id=survey_id, row="Q2.1", col="Q1",
                           with_suggestions=False)
        html = report.render_html(a)
    weighted = next(q for q in a.weighted if q.code == "Q2.1")
    assert weighted.estimate.mean == pytest.approx(3.25)  # as test_report's Q2: 0.25 × 4 + 0.75 × 3
    assert a.crosstab.total == 7 and a.crosstab.counts[a.crosstab.rows.index("4")][a.crosstab.cols.index("是")] == 1
    assert "您对以下各项服务的满意度 — 电子税务局" in html

    path = tmp_path / "results.xlsx"
    with office.write() as s:
        analysis.export_xlsx(session=s, actor=person(s, "bj_viewer"), r=r, path=path)
        a = report.analyse(session=s, actor=person(s, "bj_viewer"), survey_id=survey_id, with_suggestions=False)
        report.export_xlsx(session=s, actor=person(s, "bj_viewer"), a=a, path=tmp_path / "analysis.xlsx")
        assert report.render_pdf(a)[:4] == b"%PDF"
    book = load_workbook(path)
    header = next(book["答卷"].iter_rows(values_only=True))
    assert header[2:] == ("Q1", "Q2.1", "Q2.2", "Q2.3", "Q3.1", "Q3.2", "Q4")
    assert next(book["答卷"].iter_rows(min_row=2, values_only=True))[2:6] == ("是", "5", "3", "4")
    assert any(row[0] == "Q2.1 平均分(95%置信区间)" for row in book["概况"].iter_rows(values_only=True))


def test_responses_store_plain_row_keys(office, tmp_path):
    survey_id = make_matrix_survey(office, tmp_path)
    submit(office, link(office, survey_id), Q1="否", Q2_1="1", Q2_2="2", Q2_3="3")
    with office.read() as s:
        read = analysis.Answers(s, survey_id)
        assert read.grouped("Q2.3") == [("3", None, 1)]
        assert s.query(SurveyResponse).one().answers["Q2.2"] == 2
