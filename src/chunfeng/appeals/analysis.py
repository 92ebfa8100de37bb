"""The periodic analysis of demands and complaints (measure 98: 服务投诉和舆情分析机制) for one unit's subtree
and one period: volumes, time-limit compliance, satisfaction, recurring issues (similar texts clustered),
rising topics and the plan measures concerned; as data, an xlsx workbook, an HTML page or a PDF.

Every count is a grouped query in SQL (portable to SQLite and PostgreSQL, ordered for determinism), except
what needs the texts: the recurring issues, and the measures (a JSON list per item), which are counted from
the same one pass over the period's rows.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Date, case, func, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from chunfeng import documents
from chunfeng.appeals.clustering import HAN, Vectors, leaders, vectorize
from chunfeng.appeals.errors import AppealInvalid
from chunfeng.appeals.models import CHANNELS, KINDS, Appeal
from chunfeng.appeals.services import LIMIT_NAMES, LIMITS
from chunfeng.charts import bar_chart
from chunfeng.consult.tokenize import STOPWORDS, shared_tokenizer
from chunfeng.org.access import Actor, authorize
from chunfeng.org.models import Unit
from chunfeng.org.services import find_unit
from chunfeng.plan.models import PlanMeasure
from chunfeng.plan.services import latest_notice_id
from chunfeng.xlsx import write_sheets

NO_TOPIC = "未标注主题"


# --- what the report holds ----------------------------------------------------------------------------------

@dataclass
class Filters:
    start: date
    end: date  # inclusive
    unit_code: str  # the unit whose subtree is analysed

    def previous(self) -> Filters:
        """The period of equal length just before this one."""
        span = (self.end - self.start).days + 1
        return Filters(self.start - timedelta(days=span), self.start - timedelta(days=1), self.unit_code)


@dataclass
class UnitVolume:
    code: str
    name: str
    count: int
    own: bool = False  # the filtered unit's own items, not a child's subtree


@dataclass
class Compliance:
    """One time limit (accept, reply or close) in the period: of `assessed` items, `met` kept it."""

    limit: str
    assessed: int
    met: int

    @property
    def name(self) -> str:
        return LIMIT_NAMES[self.limit]

    @property
    def missed(self) -> int:
        return self.assessed - self.met

    @property
    def rate(self) -> float | None:
        return self.met / self.assessed if self.assessed else None


@dataclass
class Satisfaction:
    distribution: dict[int, int]  # rating 1–5: how many

    @property
    def count(self) -> int:
        return sum(self.distribution.values())

    @property
    def mean(self) -> float | None:
        return sum(r * n for r, n in self.distribution.items()) / self.count if self.count else None

    @property
    def satisfied_share(self) -> float | None:
        """The share of ratings of 4 or 5."""
        return (self.distribution[4] + self.distribution[5]) / self.count if self.count else None


@dataclass
class Cluster:
    """A recurring issue: items whose texts are alike."""

    size: int
    representative: str  # the member text closest to the cluster's centre
    terms: list[str]
    kinds: dict[str, int]
    measures: dict[int, int]
    item_ids: list[int]  # the earliest items, at most ten


@dataclass
class TopicRise:
    topic: str
    count: int
    previous: int

    @property
    def rise(self) -> int:
        return self.count - self.previous


@dataclass
class MeasureVolume:
    no: int
    text: str
    count: int


@dataclass
class Report:
    filters: Filters
    unit_name: str
    total: int
    by_kind: dict[str, int]
    by_topic: dict[str, int]
    by_unit: list[UnitVolume]
    by_channel: dict[str, int]
    compliance: list[Compliance]
    satisfaction: Satisfaction
    recurring: list[Cluster]  # the largest clusters of two or more items, largest first
    clusters_found: int  # all clusters of two or more items, listed or not
    clustered_items: int  # the items in those
    rising: list[TopicRise]
    measures: list[MeasureVolume]
    threshold: float = 0.5


# --- the report ---------------------------------------------------------------------------------------------

class _day(FunctionElement):
    """The calendar day of a timestamp, comparable with a Date column on both engines."""

    type = Date()
    inherit_cache = True


@compiles(_day)
def _day_default(element, compiler, **kw):
    return f"CAST({compiler.process(element.clauses, **kw)} AS DATE)"


@compiles(_day, "sqlite")
def _day_sqlite(element, compiler, **kw):
    # SQLite stores dates as 'YYYY-MM-DD' text; CAST(… AS DATE) would give a number there.
    return f"date({compiler.process(element.clauses, **kw)})"


def _received_in(f: Filters) -> list:
    return [Appeal.received_at >= datetime.combine(f.start, time.min),
            Appeal.received_at < datetime.combine(f.end + timedelta(days=1), time.min)]


def _counts(session: Session, column, where: list) -> dict[Any, int]:
    """Items per value of `column`, most first, ties by value."""
    n = func.count()
    rows = session.execute(select(column, n).select_from(Appeal).join(Unit, Appeal.unit_id == Unit.id)
                           .where(*where).group_by(column).order_by(n.desc(), column))
    return {value: count for value, count in rows}


def _by_unit(session: Session, unit: Unit, where: list) -> list[UnitVolume]:
    """The unit's own items, then each direct child with its whole subtree; counted per unit in SQL and
    rolled up by path here (a few thousand rows at most, one per unit holding items)."""
    children = list(session.scalars(select(Unit).where(Unit.parent_id == unit.id).order_by(Unit.sort, Unit.code)))
    volumes = {c.code: UnitVolume(c.code, c.name, 0) for c in children}
    own = UnitVolume(unit.code, unit.name, 0, own=True)
    for path, count in session.execute(select(Unit.path, func.count()).select_from(Appeal)
                                       .join(Unit, Appeal.unit_id == Unit.id).where(*where)
                                       .group_by(Unit.path).order_by(Unit.path)):
        if path == unit.path:
            own.count += count
        else:
            volumes[path[len(unit.path):].split("/", 1)[0]].count += count
    return [own, *sorted(volumes.values(), key=lambda v: -v.count)]


def _compliance(session: Session, limit: str, f: Filters, today: date, subtree) -> Compliance:
    done = {"accept": Appeal.accepted_at, "reply": Appeal.replied_at, "close": Appeal.closed_at}[limit]
    due = getattr(Appeal, f"due_{limit}")
    # A reopened item's earlier reply and closing no longer count: its reply and close limits start anew.
    still = {"accept": None, "reply": Appeal.state.in_(["replied", "closed"]), "close": Appeal.state == "closed"}[limit]
    kept = done.is_not(None) & (_day(done) <= due)
    if still is not None:
        kept = kept & still
    met = kept & (_day(done) >= f.start) & (_day(done) <= f.end)
    last_passed = min(f.end, today - timedelta(days=1))
    missed = ~kept & (due >= f.start) & (due <= last_passed)
    assessed, met_n = session.execute(
        select(func.count(), func.coalesce(func.sum(case((met, 1), else_=0)), 0)).select_from(Appeal)
        .join(Unit, Appeal.unit_id == Unit.id).where(subtree, or_(met, missed))).one()
    return Compliance(limit, int(assessed), int(met_n))


def report(*, session: Session, actor: Actor, filters: Filters, cluster_threshold: float = 0.5, limit: int = 50,
           today: date | None = None) -> Report:
    """The analysis of the items of `filters.unit_code`'s subtree (by the unit now holding each item).

    Volumes, recurring issues, measures and rising topics concern the items *received* in the period
    (rising: against the period of equal length just before). Satisfaction concerns the ratings *given* in
    the period (a rating closes the item, so its closed_at is when it was given).

    Time-limit compliance, for each limit (accept, reply, close), counts each item once, in the period the
    limit was settled:
      - met in the period: the step was done on a day D within the period, and D <= the item's due date
        for that step (D is the day of accepted_at, replied_at or closed_at; a reopened item's earlier
        reply and closing do not count, as reopening sets new reply and close limits);
      - missed in the period: the due date lies within the period and has passed (it is before `today`,
        by default the current date), and the step was not done by that day (not done at all, or done later).
    `assessed` is met + missed; an item done early in one period and due in the next counts as met in the
    first; an item done late counts as missed once, in the period its due date fell in.

    Recurring issues: texts (whitespace removed, identical ones taken once) as TF-IDF vectors of their
    Chinese character pairs, grouped by `cluster()` at cosine >= `cluster_threshold`; clusters of two or
    more items, largest first, the first `limit` of them with their representative text, top terms, kinds
    and measures.
    """
    if filters.start > filters.end:
        raise AppealInvalid("起始日期不能晚于结束日期")
    unit = find_unit(session=session, code=filters.unit_code)
    authorize(actor, "appeals.analysis", unit)
    today = today or date.today()
    subtree = Unit.path.startswith(unit.path, autoescape=True)
    where = [subtree, *_received_in(filters)]

    by_kind = _counts(session, Appeal.kind, where)
    by_topic = _counts(session, Appeal.topic, where)
    by_channel = _counts(session, Appeal.channel, where)
    by_unit = _by_unit(session, unit, where)
    compliance = [_compliance(session, lim, filters, today, subtree) for lim in LIMITS]
    ratings = dict(session.execute(
        select(Appeal.rating, func.count()).select_from(Appeal).join(Unit, Appeal.unit_id == Unit.id)
        .where(subtree, Appeal.rating.is_not(None), Appeal.closed_at >= datetime.combine(filters.start, time.min),
               Appeal.closed_at < datetime.combine(filters.end + timedelta(days=1), time.min))
        .group_by(Appeal.rating).order_by(Appeal.rating)).all())
    satisfaction = Satisfaction({r: int(ratings.get(r, 0)) for r in range(1, 6)})
    previous = _counts(session, Appeal.topic, [subtree, *_received_in(filters.previous())])
    rising = sorted((TopicRise(t, n, previous.get(t, 0)) for t, n in by_topic.items() if t and n > previous.get(t, 0)),
                    key=lambda r: (-r.rise, -r.count, r.topic))

    rows = session.execute(select(Appeal.id, Appeal.kind, Appeal.text, Appeal.measures).select_from(Appeal)
                           .join(Unit, Appeal.unit_id == Unit.id).where(*where)
                           .order_by(Appeal.received_at, Appeal.id)).all()
    per_measure = Counter(no for row in rows for no in dict.fromkeys(row.measures or []))
    texts = dict(session.execute(select(PlanMeasure.no, PlanMeasure.text).where(
        PlanMeasure.notice_id == latest_notice_id(), PlanMeasure.no.in_(list(per_measure)))).all()) if per_measure else {}
    measures = [MeasureVolume(no, texts.get(no, ""), n) for no, n in sorted(per_measure.items(), key=lambda x: (-x[1], x[0]))]
    recurring, found, clustered = _recurring(rows, cluster_threshold, limit)

    return Report(filters=filters, unit_name=unit.name, total=sum(by_kind.values()), by_kind=by_kind, by_topic=by_topic,
                  by_unit=by_unit, by_channel=by_channel, compliance=compliance, satisfaction=satisfaction,
                  recurring=recurring, clusters_found=found, clustered_items=clustered, rising=rising,
                  measures=measures, threshold=cluster_threshold)


# --- recurring issues (clustering in appeals/clustering.py) --------------------------------------------------

_AMOUNT = re.compile(r"[0-9〇零一二两三四五六七八九十百千万几多半]+[个次天年月日号周元]?")  # 两个, 十几天: varies, says nothing


def _recurring(rows, threshold: float, limit: int) -> tuple[list[Cluster], int, int]:
    """The clusters of two or more items, largest first (ties: the earlier), the first `limit` described;
    with how many such clusters there are and how many items they hold."""
    slots: dict[str, int] = {}
    texts: list[str] = []
    slot = np.empty(len(rows), dtype=np.int64)
    for i, row in enumerate(rows):
        key = "".join(row.text.split())
        k = slots.get(key)
        if k is None:
            k = slots[key] = len(texts)
            texts.append(row.text)
        slot[i] = k
    if not texts:
        return [], 0, 0
    vectors = vectorize(texts)
    lead = leaders(vectors.matrix, threshold)
    item_lead = lead[slot]
    weights = np.bincount(slot, minlength=len(texts))
    sizes = np.bincount(item_lead, minlength=len(texts))
    big = np.flatnonzero(sizes >= 2)
    listed = big[np.lexsort((big, -sizes[big]))][:limit]
    by_lead, item_by_lead = np.argsort(lead, kind="stable"), np.argsort(item_lead, kind="stable")
    lead_sorted, item_lead_sorted = lead[by_lead], item_lead[item_by_lead]
    clusters = []
    for head in listed:
        members = by_lead[np.searchsorted(lead_sorted, head):np.searchsorted(lead_sorted, head, side="right")]
        items = item_by_lead[np.searchsorted(item_lead_sorted, head):np.searchsorted(item_lead_sorted, head, side="right")]
        block = vectors.matrix.take(members)
        closeness = block.dot(block.tdot(weights[members].astype(float)))  # to the centre, each text weighted by its items
        sample = members[np.lexsort((members, -weights[members]))][:20]
        kinds = Counter(rows[i].kind for i in items)
        measures = Counter(no for i in items for no in dict.fromkeys(rows[i].measures or []))
        clusters.append(Cluster(
            size=int(sizes[head]), representative=texts[members[int(np.argmax(closeness))]],
            terms=_top_terms([texts[m] for m in sample], weights[sample].tolist(), vectors),
            kinds=dict(sorted(kinds.items(), key=lambda x: (-x[1], x[0]))),
            measures=dict(sorted(measures.items(), key=lambda x: (-x[1], x[0]))),
            item_ids=[rows[i].id for i in items[:10]]))
    return clusters, int(big.size), int(sizes[big].sum())


def _top_terms(texts: list[str], weights: list[int], vectors: Vectors, k: int = 6) -> list[str]:
    """The words that mark a cluster: the words of its commonest texts, by how many items use them times
    how rare they are overall; a word inside a longer one as frequent is left out."""
    tokenizer = shared_tokenizer()
    counts: Counter[str] = Counter()
    for text, weight in zip(texts, weights, strict=True):
        for word in _words(tokenizer, text):
            if len(word) >= 2 and not _AMOUNT.fullmatch(word):
                counts[word] += weight
    whole = [w for w in counts if not any(w != o and w in o and counts[o] >= counts[w] for o in counts)]
    return sorted(whole, key=lambda w: (-counts[w] * vectors.idf_of(w), w))[:k]


def _words(tokenizer, text: str) -> set[str]:
    """The consultation tokenizer's words of a text, without the character pairs it adds and without the
    parts its search mode adds of a longer word (算清 and 清缴 of 汇算清缴): a part is dropped where every
    occurrence of it lies inside a longer word of the text, as written or as a synonym it folds."""
    lowered = text.lower()
    chars = HAN.findall(lowered)
    pairs = Counter(p for a, b in zip(chars, chars[1:], strict=False) if (p := a + b) not in STOPWORDS)
    words = set(Counter(tokenizer.tokens(text)) - pairs)
    longer = {w for w in words if len(w) > 2 and w in lowered}
    longer |= {w for w in tokenizer.synonyms if len(w) > 2 and w in lowered}
    spans = [(m.start(), m.start() + len(w)) for w in longer for m in re.finditer(re.escape(w), lowered)]

    def inside(word: str) -> bool:
        found = [m.start() for m in re.finditer(re.escape(word), lowered)]
        return bool(found) and all(any(a <= i and i + len(word) <= b and b - a > len(word) for a, b in spans)
                                   for i in found)

    return {w for w in words if not inside(w)}


# --- output -------------------------------------------------------------------------------------------------

def topic_name(topic: str) -> str:
    return topic or NO_TOPIC


def charts(r: Report) -> dict[str, str]:
    """Inline SVG bar charts of the report's parts."""

    def bars(pairs: list[tuple[str, float]], **kw) -> str:
        values = [v for _, v in pairs]
        return bar_chart([p for p, _ in pairs], values, maximum=max(values, default=0) or 1, suffix=" 件", **kw)

    units = [(u.name + ("(本级)" if u.own else ""), u.count) for u in r.by_unit if u.count][:20]
    return {
        "kinds": bars([(KINDS.get(k, k), n) for k, n in r.by_kind.items()]),
        "channels": bars([(CHANNELS.get(k, k), n) for k, n in r.by_channel.items()]),
        "topics": bars([(topic_name(t), n) for t, n in r.by_topic.items()][:15]),
        "units": bars(sorted(units, key=lambda x: -x[1])),
        "compliance": bar_chart([c.name for c in r.compliance],
                                [round(100 * c.rate, 1) if c.rate is not None else 0 for c in r.compliance]),
        "satisfaction": bars([(f"{k} 分", n) for k, n in sorted(r.satisfaction.distribution.items(), reverse=True)]),
    }


def render_html(r: Report, *, inline_css: bool = False) -> str:
    """The analysis as one page; with `inline_css` a self-contained file (for saving and for the PDF),
    otherwise linking /static/briefing.css, as the site's CSP allows no inline style."""
    return documents.render("appeals/analysis_doc.html", inline_css=inline_css, r=r, charts=charts(r), KINDS=KINDS,
                            CHANNELS=CHANNELS, topic_name=topic_name)


def render_pdf(r: Report) -> bytes:
    return documents.html_to_pdf(render_html(r, inline_css=True))


def _percent(share: float | None) -> float | str:
    return "" if share is None else round(100 * share, 1)


def export_xlsx(r: Report, path: Path | str) -> Path:
    """One sheet per part of the report."""
    f = r.filters
    s = r.satisfaction
    sheets: list[tuple[str, list[str], list[int], list[list]]] = [
        ("概况", ["项目", "内容"], [24, 60], [
            ["单位", f"{r.unit_name}({f.unit_code})及下级"], ["期间", f"{f.start} 至 {f.end}"],
            ["事项总数", r.total], ["重复出现的问题(2 件以上的相似事项组)", r.clusters_found],
            ["其中事项数", r.clustered_items], ["相似度阈值", r.threshold]]),
        ("分类型", ["类型", "件数"], [16, 10], [[KINDS.get(k, k), n] for k, n in r.by_kind.items()]),
        ("分主题", ["主题", "件数"], [30, 10], [[topic_name(t), n] for t, n in r.by_topic.items()]),
        ("分单位", ["单位代码", "单位", "件数"], [12, 36, 10],
         [[u.code, u.name + ("(本级)" if u.own else "(含下级)"), u.count] for u in r.by_unit]),
        ("分渠道", ["渠道", "件数"], [22, 10], [[CHANNELS.get(k, k), n] for k, n in r.by_channel.items()]),
        ("时限达标", ["时限", "应考核件数", "按时件数", "超时件数", "按时率(%)"], [10, 14, 12, 12, 12],
         [[c.name, c.assessed, c.met, c.missed, _percent(c.rate)] for c in r.compliance]),
        ("满意度", ["评价", "件数"], [22, 12],
         [[f"{k} 分", s.distribution[k]] for k in range(5, 0, -1)]
         + [["评价总数", s.count], ["平均分", "" if s.mean is None else round(s.mean, 2)],
            ["满意率(4–5 分,%)", _percent(s.satisfied_share)]]),
        ("重复问题", ["序号", "件数", "代表性内容", "关键词", "类型", "涉及措施", "事项编号(前 10 件)"],
         [6, 8, 60, 30, 24, 20, 30],
         [[i, c.size, c.representative, "、".join(c.terms), "、".join(f"{KINDS.get(k, k)} {n}" for k, n in c.kinds.items()),
           "、".join(f"第{m}条 {n}" for m, n in c.measures.items()), "、".join(map(str, c.item_ids))]
          for i, c in enumerate(r.recurring, start=1)]),
        ("上升主题", ["主题", "本期", "上期", "增加"], [30, 10, 10, 10],
         [[t.topic, t.count, t.previous, t.rise] for t in r.rising]),
        ("涉及措施", ["措施序号", "措施内容", "件数"], [10, 80, 10], [[m.no, m.text, m.count] for m in r.measures]),
    ]
    return write_sheets(path, sheets)
