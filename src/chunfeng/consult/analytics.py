"""What people ask (咨询数据分析): top questions, rising questions against the previous period, the questions handed
off most often (what agents should write next), and low-confidence questions grouped by similarity into a list of
knowledge-base gaps."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from chunfeng.consult import policy
from chunfeng.consult.models import ConsultQuery, KbEntry
from chunfeng.consult.tokenize import shared_tokenizer
from chunfeng.org.access import Actor, authorize
from chunfeng.org.errors import Forbidden


@dataclass
class Filters:
    start: date
    end: date  # inclusive
    region: str = ""
    channel: str = ""
    tag: str = ""

    def previous(self) -> Filters:
        span = (self.end - self.start).days + 1
        return Filters(self.start - timedelta(days=span), self.start - timedelta(days=1), self.region, self.channel, self.tag)


@dataclass
class TopRow:
    ref: str
    title: str
    count: int
    previous: int = 0
    helpful: int = 0
    not_helpful: int = 0

    @property
    def rise(self) -> int:
        return self.count - self.previous


@dataclass
class Gap:
    example: str
    count: int
    questions: list[str] = field(default_factory=list)


@dataclass
class HandedOff:
    question: str
    count: int
    candidate: str = ""  # the entry the machine would have given, but was not sure of ("" when it found none)


@dataclass
class Report:
    filters: Filters
    total: int
    handoffs: int
    by_channel: dict[str, int]
    by_region: dict[str, int]
    top: list[TopRow]
    rising: list[TopRow]
    gaps: list[Gap]
    handed_off: list[HandedOff] = field(default_factory=list)


def _queries(session: Session, f: Filters, regions: set[str]) -> list[ConsultQuery]:
    where = [ConsultQuery.at >= datetime.combine(f.start, time.min), ConsultQuery.at < datetime.combine(f.end + timedelta(days=1), time.min),
             ConsultQuery.region.in_(regions)]
    if f.region:
        where.append(ConsultQuery.region == f.region)
    if f.channel:
        where.append(ConsultQuery.channel == f.channel)
    rows = list(session.scalars(select(ConsultQuery).where(*where)))
    if f.tag:
        rows = [q for q in rows if f.tag in q.top_tags.split(",")]
    return rows


def cluster(texts: list[str], threshold: float = 0.4) -> list[Gap]:
    """Greedy grouping by word overlap (Jaccard of the retrieval tokens): similar questions land together."""
    tokenizer = shared_tokenizer()
    groups: list[tuple[set[str], Gap]] = []
    for text in texts:
        words = set(tokenizer.tokens(text)) or {text}
        for seed, gap in groups:
            if len(words & seed) / len(words | seed) >= threshold:
                gap.count += 1
                if len(gap.questions) < 5 and text not in gap.questions:
                    gap.questions.append(text)
                break
        else:
            groups.append((words, Gap(text, 1, [text])))
    return sorted((g for _, g in groups), key=lambda g: -g.count)


def report(*, session: Session, actor: Actor, filters: Filters, limit: int = 20) -> Report:
    authorize(actor, "consult.analytics")
    # The questions asked for regions whose bureau is in the actor's subtree, as for hand-offs.
    regions = policy.regions_within(session, actor, policy.asked_regions(session))
    if filters.region and not policy.regions_within(session, actor, {filters.region}):
        raise Forbidden("无权查看该地区的咨询数据:它不在您所在单位的管辖范围内")
    now = _queries(session, filters, regions)
    before = _queries(session, filters.previous(), regions)
    titles = dict(session.execute(select(KbEntry.key, KbEntry.question)
                                  .where(policy.entries_within(session, actor))).all())
    counts = Counter(q.top_ref or f"text:{q.text}" for q in now)
    previous = Counter(q.top_ref or f"text:{q.text}" for q in before)
    feedback: dict[str, Counter] = defaultdict(Counter)
    for q in now:
        if q.feedback:
            feedback[q.top_ref or f"text:{q.text}"][q.feedback] += 1

    def row(ref: str) -> TopRow:
        title = ref[5:] if ref.startswith("text:") else titles.get(ref, ref)
        return TopRow(ref, title, counts[ref], previous.get(ref, 0), feedback[ref]["helpful"], feedback[ref]["not_helpful"])

    top = [row(ref) for ref, _ in counts.most_common(limit)]
    rising = sorted((row(ref) for ref in counts if counts[ref] > previous.get(ref, 0)),
                    key=lambda r: (-r.rise, -r.count))[:limit]
    weak = [q.text for q in now if q.handoff or q.feedback == "not_helpful"]
    return Report(filters, len(now), sum(q.handoff for q in now), dict(Counter(q.channel for q in now)),
                  dict(Counter(q.region for q in now)), top, rising, cluster(weak)[:limit],
                  most_handed_off([q for q in now if q.handoff], titles, limit))


def most_handed_off(queries: list[ConsultQuery], titles: dict[str, str], limit: int) -> list[HandedOff]:
    """The questions handed off most often, word for word (case and spaces aside), with the entry the machine
    would have given: an agent sees what to write next, and whether an entry exists but is not found for it."""
    counts: Counter[str] = Counter()
    wording: dict[str, str] = {}
    candidate: dict[str, str] = {}
    for q in queries:
        key = "".join(q.text.lower().split())  # spaces carry no meaning between Chinese words
        counts[key] += 1
        wording.setdefault(key, q.text)
        candidate.setdefault(key, titles.get(q.top_ref, q.top_ref) if q.top_ref else "")
    return [HandedOff(wording[key], n, candidate[key]) for key, n in counts.most_common(limit)]
