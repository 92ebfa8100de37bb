"""What came back: response counts, each question's distribution, mean scores with a 95 % confidence interval,
the Net Promoter Score; as figures, charts and an xlsx workbook."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from chunfeng.charts import bar_chart
from chunfeng.org import audit
from chunfeng.org.access import Actor
from chunfeng.survey.models import KINDS, SCALES, MatrixRow, Survey, SurveyInvitation, SurveyQuestion, SurveyResponse
from chunfeng.survey.services import get_survey
from chunfeng.xlsx import write_sheets

# Student's t, two-sided 95 % (0.975 quantile), for 1–30 degrees of freedom; beyond, the Cornish–Fisher series
# about the normal quantile is within 0.001 of the exact value.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
_Z975 = 1.959964


def t975(df: int) -> float:
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


@dataclass
class Mean:
    n: int
    mean: float
    low: float | None  # the 95 % interval; None for a single answer
    high: float | None


def mean_ci(values: list[float]) -> Mean | None:
    """The mean with its 95 % confidence interval (t distribution, sample standard deviation)."""
    n = len(values)
    if n == 0:
        return None
    mean = sum(values) / n
    if n == 1:
        return Mean(1, mean, None, None)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t975(n - 1) * sd / math.sqrt(n)
    return Mean(n, mean, mean - half, mean + half)


@dataclass
class Nps:
    promoters: int  # 9–10
    passives: int  # 7–8
    detractors: int  # 0–6
    score: float  # % promoters − % detractors, from −100 to 100


def nps(values: list[int]) -> Nps | None:
    if not values:
        return None
    promoters = sum(1 for v in values if v >= 9)
    detractors = sum(1 for v in values if v <= 6)
    return Nps(promoters, len(values) - promoters - detractors, detractors,
               100 * (promoters - detractors) / len(values))


@dataclass
class QuestionResult:
    question: SurveyQuestion | MatrixRow
    answered: int
    counts: list[tuple[str, int, float]] = field(default_factory=list)  # (choice, respondents, % of those answering)
    mean: Mean | None = None
    nps: Nps | None = None
    texts: list[str] = field(default_factory=list)  # the latest free-text answers


@dataclass
class Results:
    survey: Survey
    responses: int
    by_invitation: int
    by_link: int
    invited: int
    questions: list[QuestionResult]

    @property
    def response_rate(self) -> float | None:
        """Of the invitations made, the share answered."""
        return 100 * self.by_invitation / self.invited if self.invited else None


TEXTS_SHOWN = 20


class Answers:
    """A survey's answers question by question, counted in the database: rows of (answer, stratum, responses)
    rather than every response's answers decoded in Python, which at 200,000 responses was most of an analysis's
    time (bench/survey_scale.py). An analysis shares one of these between its parts, each question read once."""

    def __init__(self, session: Session, survey_id: int):
        self.session, self.survey_id = session, survey_id
        self._grouped: dict[tuple[str, ...], list[tuple]] = {}
        self._texts: dict[str, list[tuple[int, str]]] = {}

    def _answer(self, code: str):
        return SurveyResponse.answers[code].as_string()  # SQLite: json_extract; PostgreSQL: ->>

    def grouped(self, *codes: str) -> list[tuple]:
        """(answer to each of `codes`, stratum, responses) over the responses answering all of them; an answer as
        text (a multiple choice's is its JSON list: see `of`)."""
        if codes not in self._grouped:
            inner = (select(*(self._answer(code).label(f"a{i}") for i, code in enumerate(codes)), SurveyResponse.stratum)
                     .where(SurveyResponse.survey_id == self.survey_id).subquery())
            # Unanswered left out after grouping (HAVING): a WHERE would extract each answer a second time.
            rows = self.session.execute(select(*inner.c, func.count()).group_by(*inner.c)
                                        .having(and_(*(c.is_not(None) for c in list(inner.c)[:-1])))).all()
            self._grouped[codes] = [(*(str(v) for v in row[:-2]), row[-2], int(row[-1])) for row in rows]
        return self._grouped[codes]

    def of(self, q: SurveyQuestion) -> list[tuple[object, str | None, int]]:
        """(answer, stratum, responses) for one question: a multiple choice's answer is its list of options."""
        rows = self.grouped(q.code)
        return [(json.loads(v), h, k) for v, h, k in rows] if q.kind == "multi" else rows

    def strata(self) -> list[tuple[str | None, int]]:
        """(stratum, responses) over every response."""
        return [(h, int(k)) for h, k in self.session.execute(
            select(SurveyResponse.stratum, func.count()).where(SurveyResponse.survey_id == self.survey_id)
            .group_by(SurveyResponse.stratum))]

    def texts(self, code: str) -> list[tuple[int, str]]:
        """(response id, answer) of the responses answering `code`, oldest first."""
        if code not in self._texts:
            query = (select(SurveyResponse.id, self._answer(code)).where(SurveyResponse.survey_id == self.survey_id)
                     .order_by(SurveyResponse.id))
            self._texts[code] = [(rid, str(v)) for rid, v in self.session.execute(query) if v is not None]
        return self._texts[code]


def expand(rows) -> tuple[list, list]:
    """Grouped (answer, stratum, responses) rows as one answer and one stratum per response."""
    values: list = []
    strata: list = []
    for v, h, k in rows:
        values += [v] * k
        strata += [h] * k
    return values, strata


def results(*, session: Session, actor: Actor, survey_id: int, read: Answers | None = None) -> Results:
    """The figures over every response (`read`: the survey's answers, shared with the other parts of an analysis)."""
    survey = get_survey(session=session, actor=actor, survey_id=survey_id)
    read = read if read is not None else Answers(session, survey.id)
    total, by_invitation = session.execute(
        select(func.count(), func.count(SurveyResponse.invitation_id)).where(SurveyResponse.survey_id == survey.id)).one()
    invited = session.scalar(select(func.count()).where(SurveyInvitation.survey_id == survey.id)) or 0
    out = []
    for q in survey.items:  # a matrix counted row by row, each row as a question of its own
        if q.kind == "text":
            texts = read.texts(q.code)
            out.append(QuestionResult(q, len(texts), texts=[text for _, text in texts[:-TEXTS_SHOWN - 1:-1]]))
            continue
        rows = read.of(q)
        answered = sum(k for _, _, k in rows)
        r = QuestionResult(q, answered)
        tally = {c: 0 for c in q.choices}
        for v, _, k in rows:
            for choice in (v if isinstance(v, list) else [v]):
                if str(choice) in tally:
                    tally[str(choice)] += k
        r.counts = [(c, k, 100 * k / answered if answered else 0.0) for c, k in tally.items()]
        if q.kind in SCALES:
            numbers = [int(v) for v in expand(rows)[0]]
            r.mean = mean_ci(numbers)
            r.nps = nps(numbers) if q.kind == "nps" else None
        out.append(r)
    return Results(survey, total, by_invitation, total - by_invitation, invited, out)


def charts(r: Results) -> dict[str, str]:
    """One bar chart per choice question: the share of those answering who chose each option."""
    return {q.question.code: bar_chart([c for c, _, _ in q.counts], [round(s, 1) for _, _, s in q.counts])
            for q in r.questions if q.counts}


def _answer_cell(value) -> str:
    return "、".join(map(str, value)) if isinstance(value, list) else str(value)


def export_xlsx(*, session: Session, actor: Actor, r: Results, path: Path) -> Path:
    """Three sheets: the figures, each question's distribution, and every response (one column per question);
    the export is recorded in the audit log, as free-text answers may say who wrote them."""
    audit.record(session, actor=actor, action="survey.results.exported", object_type="survey", object_id=r.survey.id,
                 after={"responses": r.responses})
    def fmt(x: float | None) -> str:
        return "" if x is None else f"{x:.2f}"

    summary = [("问卷", f"{r.survey.title}(第 {r.survey.version} 版)"), ("答卷总数", r.responses),
               ("通过邀请", r.by_invitation), ("通过公开链接", r.by_link), ("已生成邀请", r.invited),
               ("邀请回收率(%)", fmt(r.response_rate))]
    for q in r.questions:
        if q.mean:
            summary.append((f"{q.question.code} 平均分(95%置信区间)",
                            f"{q.mean.mean:.2f}({fmt(q.mean.low)}–{fmt(q.mean.high)},n={q.mean.n})"))
        if q.nps:
            summary.append((f"{q.question.code} 净推荐值 NPS", f"{q.nps.score:.1f}"))
    distribution = [(q.question.code, q.question.text, KINDS[q.question.kind], c, k, round(s, 1))
                    for q in r.questions for c, k, s in q.counts]
    codes = [q.question.code for q in r.questions]
    answers = session.execute(select(SurveyResponse.submitted_at, SurveyResponse.invitation_id, SurveyResponse.answers)
                              .where(SurveyResponse.survey_id == r.survey.id).order_by(SurveyResponse.id)
                              .execution_options(yield_per=1000))
    responses = ([f"{at:%Y-%m-%d %H:%M}", "邀请" if inv else "公开链接",
                  *(_answer_cell(a[c]) if c in a else "" for c in codes)] for at, inv, a in answers)
    return write_sheets(path, [
        ("概况", ["指标", "值"], [30, 40], summary),
        ("题目分布", ["题号", "题目", "题型", "选项", "人数", "占比(%)"], [8, 40, 12, 24, 8, 10], distribution),
        ("答卷", ["提交时间(UTC)", "方式", *codes], None, responses),
    ])
