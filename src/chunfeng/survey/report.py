"""The analysis of a survey (measure 3): the results weighted back to the population when the responses carry the
strata they were sampled from, a cross-tab of two questions, the themes of the free-text answers (rising against the
earlier survey) linked to the measures they concern; as a page with charts, an xlsx workbook and a PDF."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from chunfeng import documents
from chunfeng.appeals import intake
from chunfeng.charts import bar_chart
from chunfeng.db import utcnow
from chunfeng.org import audit
from chunfeng.org.access import Actor
from chunfeng.plan.models import PlanMeasure
from chunfeng.plan.services import latest_notice_id
from chunfeng.survey import analysis, crosstabs, policy, themes, weighting
from chunfeng.survey.direct_models import SurveyStratumSize, SurveyTheme
from chunfeng.survey.errors import SurveyInvalid
from chunfeng.survey.models import KINDS, SCALES, Survey, SurveyInvitation
from chunfeng.survey.sample_models import SurveySample, SurveyStratum
from chunfeng.survey.services import get_survey
from chunfeng.xlsx import write_sheets

MAX_STRATA, MAX_STRATUM = 2000, 64
SUGGESTED_FOR = 10  # the biggest themes get measures proposed by the consultation's retrieval


# --- population sizes -------------------------------------------------------------------------------------

def parse_sizes(text: str) -> dict[str, int]:
    """Lines of “stratum, population” (a comma, tab or Chinese comma between); every bad line named."""
    sizes: dict[str, int] = {}
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.replace(",", ",").replace("\t", ",").rsplit(",", 1)]
        if len(parts) != 2 or not parts[0]:
            problems.append(f"第 {number} 行:应为“层名,总体数”")
        elif len(parts[0]) > MAX_STRATUM:
            problems.append(f"第 {number} 行:层名超过 {MAX_STRATUM} 个字符")
        elif not parts[1].isdigit() or not 0 < int(parts[1]) < 2**31:
            problems.append(f"第 {number} 行:总体数“{parts[1][:20]}”应为正整数")
        elif parts[0] in sizes:
            problems.append(f"第 {number} 行:层“{parts[0]}”重复")
        else:
            sizes[parts[0]] = int(parts[1])
    if len(sizes) > MAX_STRATA:
        problems.append(f"最多 {MAX_STRATA} 个层")
    if problems:
        raise SurveyInvalid("总体数有误,未保存:" + ";".join(problems[:20]))
    return sizes


def set_population(*, session: Session, actor: Actor, survey_id: int, sizes: dict[str, int]) -> None:
    """Replace the survey's per-stratum population sizes (the sampling frame's counts); empty clears them."""
    survey = get_survey(session=session, actor=actor, survey_id=survey_id)
    if refused := policy.manage_refusal(actor, survey):
        raise refused
    before = population(session, survey.id)
    session.execute(delete(SurveyStratumSize).where(SurveyStratumSize.survey_id == survey.id))
    for stratum, n in sizes.items():
        session.add(SurveyStratumSize(survey_id=survey.id, stratum=stratum, population=n))
    audit.record(session, actor=actor, action="survey.population.set", object_type="survey", object_id=survey.id,
                 before=before or None, after=sizes or None)


def population(session: Session, survey_id: int) -> dict[str, int]:
    """Sizes typed on the analysis page; without them, the frame sizes of the survey's latest invited sample (the
    strata its invitations carry)."""
    typed = dict(session.execute(select(SurveyStratumSize.stratum, SurveyStratumSize.population)
                                 .where(SurveyStratumSize.survey_id == survey_id)
                                 .order_by(SurveyStratumSize.stratum)).all())
    if typed:
        return typed
    sample_id = session.scalar(select(SurveySample.id).where(SurveySample.survey_id == survey_id,
                                                             SurveySample.invited_at.is_not(None))
                               .order_by(SurveySample.invited_at.desc(), SurveySample.id.desc()).limit(1))
    return {label[:64]: n for label, n in session.execute(
        select(SurveyStratum.label, SurveyStratum.frame_size).where(SurveyStratum.sample_id == sample_id)
        .order_by(SurveyStratum.label))} if sample_id else {}


# --- themes linked to measures ----------------------------------------------------------------------------

def link_theme(*, session: Session, actor: Actor, survey_id: int, label: str, measures: list[int], terms: list[str],
               size: int) -> SurveyTheme:
    """Say which plan measures a theme concerns (none: unlink); kept by the theme's representative answer."""
    survey = get_survey(session=session, actor=actor, survey_id=survey_id)
    if refused := policy.manage_refusal(actor, survey):
        raise refused
    label = label.strip()[:200]
    if not label:
        raise SurveyInvalid("主题不能为空")
    known = set(session.scalars(select(PlanMeasure.no).where(PlanMeasure.notice_id == latest_notice_id())))
    measures = sorted(set(measures))
    if unknown := [m for m in measures if m not in known]:
        raise SurveyInvalid(f"没有第 {'、'.join(map(str, unknown[:10]))} 条措施")
    theme = session.scalar(select(SurveyTheme).where(SurveyTheme.survey_id == survey.id, SurveyTheme.label == label))
    before = None if theme is None else {"measures": theme.measures}
    if theme is None:
        theme = SurveyTheme(survey_id=survey.id, label=label)
        session.add(theme)
    theme.measures, theme.terms, theme.size = measures, [t[:40] for t in terms[:10]], max(0, size)
    theme.updated_by, theme.updated_at = actor.username, utcnow()
    session.flush()
    audit.record(session, actor=actor, action="survey.theme.linked", object_type="survey", object_id=survey.id,
                 before=before, after={"theme": label[:100], "measures": measures})
    return theme


# --- the analysis -----------------------------------------------------------------------------------------

@dataclass
class WeightedQuestion:
    code: str
    text: str
    kind: str
    answered: int  # weighted responses answering it
    shares: list[tuple[str, float, float]] = field(default_factory=list)  # (choice, units it stands for, %)
    estimate: weighting.Estimate | None = None
    nps: float | None = None


@dataclass
class Analysis:
    results: analysis.Results  # unweighted, every response
    weighting: weighting.Weighting
    weighted: list[WeightedQuestion]
    crosstab: crosstabs.Crosstab | None
    themes: list[themes.Theme]
    compared_with: Survey | None
    text_answers: int
    earlier: list[Survey]  # what the themes may be compared with
    rates: list[tuple[str, int, int]] = field(default_factory=list)  # (stratum, invitations, answered)

    @property
    def survey(self) -> Survey:
        return self.results.survey

    @property
    def rising(self) -> list[themes.Theme]:
        return themes.rising(self.themes)


def _weighted(survey: Survey, read: analysis.Answers, sizes: dict[str, int]) -> list[WeightedQuestion]:
    out = []
    for q in survey.items:
        if q.kind == "text":
            continue
        values, strata = analysis.expand((v, h, k) for v, h, k in read.of(q) if h in sizes)
        wq = WeightedQuestion(q.code, q.text, q.kind, len(values), weighting.shares(values, strata, sizes, q.choices))
        if q.kind in SCALES and values:
            wq.estimate = weighting.estimate([int(v) for v in values], strata, sizes)
        if q.kind == "nps" and values:
            share = dict((c, s) for c, _, s in wq.shares)
            wq.nps = sum(share[str(n)] for n in (9, 10)) - sum(share[str(n)] for n in range(7))
        out.append(wq)
    return out


def weighted_results(session: Session, survey: Survey, read: analysis.Answers | None = None
                     ) -> tuple[dict[str, int], weighting.Weighting, list[WeightedQuestion]]:
    """The population sizes, how the responses weight back to them, and the weighted figures (none unless the
    weighting applies). `read`: the survey's answers, shared with the other parts of an analysis."""
    read = read if read is not None else analysis.Answers(session, survey.id)
    sizes = population(session, survey.id)
    w = weighting.post_stratify(sizes, [h for h, k in read.strata() for _ in range(k)])
    return sizes, w, _weighted(survey, read, sizes) if w.applies else []


def _texts(session: Session, survey: Survey, question_code: str = "",
           read: analysis.Answers | None = None) -> list[tuple[int, str]]:
    read = read if read is not None else analysis.Answers(session, survey.id)
    codes = [q.code for q in survey.questions if q.kind == "text" and (not question_code or q.code == question_code)]
    found = sorted((rid, i, text) for i, code in enumerate(codes) for rid, text in read.texts(code) if text.strip())
    return [(rid, text) for rid, _, text in found]  # by response, then question, as the respondent wrote them


def earlier_surveys(session: Session, actor: Actor, survey: Survey) -> list[Survey]:
    """Surveys the themes may be compared with: this questionnaire's earlier versions, then the other surveys of
    the same unit published before it, newest first."""
    found = session.scalars(select(Survey).where(Survey.id != survey.id, Survey.state != "draft",
                                                 Survey.unit_id == survey.unit_id, Survey.id < survey.id)
                            .order_by(Survey.id.desc()).limit(50))
    return sorted((s for s in found if policy.may_view(actor, s)),
                  key=lambda s: (s.series != survey.series, -s.id))


def analyse(*, session: Session, actor: Actor, survey_id: int, row: str = "", col: str = "",
            against: int | None = None, with_suggestions: bool = True) -> Analysis:
    """The whole analysis. Rising themes compare with `against` (a survey the actor sees), by default the
    questionnaire's previous version, if any."""
    read = analysis.Answers(session, get_survey(session=session, actor=actor, survey_id=survey_id).id)
    results = analysis.results(session=session, actor=actor, survey_id=survey_id, read=read)
    survey = results.survey
    sizes, w, weighted = weighted_results(session, survey, read)
    table = None
    if row and col:
        table = crosstabs.crosstab(session=session, actor=actor, survey_id=survey.id, row_code=row, col_code=col,
                                   population=sizes if w.applies else None, read=read)
    earlier = earlier_surveys(session, actor, survey)
    compared = None
    if against is not None:
        compared = get_survey(session=session, actor=actor, survey_id=against)
    elif earlier and earlier[0].series == survey.series:
        compared = earlier[0]
    current = _texts(session, survey, read=read)
    found = themes.compare(current, _texts(session, compared) if compared else None)
    stored = {t.label: t for t in session.scalars(select(SurveyTheme).where(SurveyTheme.survey_id == survey.id))}
    for i, t in enumerate(found):
        if t.label in stored:
            t.measures, t.theme_id = list(stored[t.label].measures), stored[t.label].id
        if with_suggestions and i < SUGGESTED_FOR:
            t.suggested = _suggest(session, t.label)
    counted = session.execute(select(SurveyInvitation.stratum, func.count(), func.count(SurveyInvitation.answered_at))
                              .where(SurveyInvitation.survey_id == survey.id).group_by(SurveyInvitation.stratum)).all()
    rates = [(h or "(未分层)", int(n), int(k)) for h, n, k in sorted(counted, key=lambda x: (x[0] is None, x[0] or ""))]
    return Analysis(results, w, weighted, table, found, compared, len(current), earlier, rates)


def _suggest(session: Session, text: str) -> list[int]:
    """The closest measures by the consultation's retrieval, as appeals are linked (its index is built once)."""
    return intake.classify(session, text)[2]


def measure_choices(session: Session) -> list[tuple[int, str]]:
    """The action's measures for the picker: (number, text)."""
    return list(session.execute(select(PlanMeasure.no, PlanMeasure.text)
                                .where(PlanMeasure.notice_id == latest_notice_id()).order_by(PlanMeasure.no)).all())


# --- output -----------------------------------------------------------------------------------------------

def charts(a: Analysis) -> dict[str, str]:
    """Inline SVG: weighted shares per question, the themes, the rising themes."""
    out = {f"w-{q.code}": bar_chart([c for c, _, _ in q.shares], [round(s, 1) for _, _, s in q.shares])
           for q in a.weighted if q.shares}
    if a.themes:
        out["themes"] = bar_chart([t.label[:14] for t in a.themes[:12]], [round(t.share, 1) for t in a.themes[:12]])
    if a.rising:
        out["rising"] = bar_chart([t.label[:14] for t in a.rising[:12]], [round(t.rise, 1) for t in a.rising[:12]],
                                  maximum=max(t.rise for t in a.rising[:12]), suffix=" 个百分点")
    return out


def render_html(a: Analysis, *, inline_css: bool = False) -> str:
    return documents.render("survey/analysis_doc.html", inline_css=inline_css, a=a, charts=charts(a), KINDS=KINDS)


def render_pdf(a: Analysis) -> bytes:
    return documents.html_to_pdf(render_html(a, inline_css=True))


def _f(x: float | None, digits: int = 2) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def export_xlsx(*, session: Session, actor: Actor, a: Analysis, path: Path) -> Path:
    """The analysis as a workbook (recorded in the audit log: theme texts are respondents' words)."""
    audit.record(session, actor=actor, action="survey.analysis.exported", object_type="survey", object_id=a.survey.id,
                 after={"weighted": a.weighting.applies, "themes": len(a.themes)})
    w = a.weighting
    summary = [["问卷", f"{a.survey.title}(第 {a.survey.version} 版)"], ["答卷总数", a.results.responses],
               ["加权", "按总体分层加权(事后分层)" if w.applies else f"未加权:{w.problem or '答卷没有分层信息或没有各层总体数'}"],
               ["参与加权的答卷", w.weighted], ["没有分层的答卷(未参与加权)", w.unstratified],
               ["主题比较对象", f"{a.compared_with.title}(第 {a.compared_with.version} 版)" if a.compared_with else "无"]]
    strata = [[s.name, s.population, s.responses, _f(s.weight)] for s in w.strata]
    rates = [[h, n, k, round(100 * k / n, 1) if n else ""] for h, n, k in a.rates]
    weighted = [[q.code, q.text, c, round(units), round(share, 2)] for q in a.weighted for c, units, share in q.shares]
    scores = [[q.code, q.text, _f(q.estimate.mean), _f(q.estimate.low), _f(q.estimate.high), q.estimate.n,
               _f(q.nps, 1)] for q in a.weighted if q.estimate]
    sheets = [("概况", ["项目", "内容"], [24, 60], summary),
              ("分层与权数", ["层", "总体数", "答卷数", "权数"], [24, 12, 10, 12], strata),
              ("分层回收率", ["层", "邀请数", "已答", "回收率(%)"], [24, 10, 10, 12], rates),
              ("加权分布", ["题号", "题目", "选项", "代表总体数", "加权占比(%)"], [8, 40, 20, 14, 14], weighted),
              ("加权得分", ["题号", "题目", "加权平均", "95%下限", "95%上限", "作答人数", "加权NPS"],
               [8, 40, 10, 10, 10, 10, 10], scores)]
    if t := a.crosstab:
        head = [f"{t.row.code} \\ {t.col.code}", *t.cols, "合计"]
        body = [[r, *t.counts[i], t.row_totals[i]] for i, r in enumerate(t.rows)]
        shares = [[r, *(round(x, 1) for x in t.row_shares[i])] for i, r in enumerate(t.rows)]
        test = ([["卡方", round(t.test.statistic, 4)], ["自由度", t.test.df], ["p 值", f"{t.test.p:.4g}"]]
                if t.test else [["卡方检验", "有效行或列少于 2,无法检验"]])
        sheets += [("交叉表人数", head, None, body), ("交叉表行占比", head[:-1], None, shares),
                   ("卡方检验", ["项目", "值"], [12, 20], test)]
    sheets.append(("主题", ["代表性回答", "关键词", "本次条数", "本次占比(%)", "比较对象条数", "比较对象占比(%)", "变化(百分点)",
                            "关联措施"], [60, 30, 10, 12, 12, 14, 12, 20],
                   [[t.label, "、".join(t.terms), t.current, round(t.share, 1), t.previous,
                     _f(t.previous_share, 1), _f(t.rise, 1), "、".join(f"第{m}条" for m in t.measures)]
                    for t in a.themes]))
    return write_sheets(path, sheets)
