"""Stratified samples of the taxpayer registry for a survey: the frame (the taxpayers of the survey unit's region)
split into strata by province, size, industry section and VAT type; a quota per stratum, in proportion to its
frame or as given; a preview of the counts before anything is drawn; and the draw itself, reproducible by its seed.

The draw ranks each stratum's taxpayers by md5(seed:credit code) and takes the first `quota`: a simple random
sample without replacement within each stratum, computed by DuckDB over millions of rows, and the same on every
machine and DuckDB version for the same frame and seed (md5 is fixed; DuckDB's own hash() is not promised to be).
The frame size of each stratum is kept with the sample (`survey_stratum.frame_size`) for weighting the answers.
"""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass

from sqlalchemy.orm import Session

from chunfeng.org import audit
from chunfeng.org.access import Actor
from chunfeng.push import matching
from chunfeng.survey.errors import SurveyInvalid
from chunfeng.survey.models import STATES, Survey
from chunfeng.survey.policy import manage_refusal
from chunfeng.survey.sample_models import ALLOCATIONS, DIMENSIONS, SurveySample, SurveySampleMember, SurveyStratum
from chunfeng.survey.services import get_survey

# What each dimension reads from the registry.
_SQL = {"province": "substr(r.region, 1, 2)", "size": "r.size", "industry": "substr(r.industry, 1, 1)",
        "type": "r.vat_type"}
MAX_SAMPLE = 1_000_000
SEED_MAX = 2 ** 31 - 1


def new_seed() -> int:
    return secrets.randbelow(SEED_MAX) + 1


def _value_label(dimension: str, value: str) -> str:
    if dimension == "province":
        return matching.PROVINCE_NAMES.get(value, value)
    if dimension == "industry":
        return f"{value} {matching.INDUSTRY_SECTIONS.get(value, '')}".strip()
    return value


def stratum_label(dimensions: list[str], key: str) -> str:
    if not dimensions:
        return "全部"
    return " · ".join(_value_label(d, v) for d, v in zip(dimensions, key.split("|"), strict=True))


@dataclass
class StratumPlan:
    key: str
    label: str
    frame_size: int
    quota: int


@dataclass
class SamplePlan:
    """What a draw would take: every stratum of the frame with its size and quota."""

    dimensions: list[str]
    allocation: str
    requested: int
    seed: int
    strata: list[StratumPlan]

    @property
    def frame_total(self) -> int:
        return sum(s.frame_size for s in self.strata)

    @property
    def total(self) -> int:
        return sum(s.quota for s in self.strata)


def _frame(region: str) -> tuple[str, dict]:
    if not region:
        return "", {}
    return f"WHERE substr(r.region, 1, {len(region)}) = $region", {"region": region}


def _key_sql(dimensions: list[str]) -> str:
    return " || '|' || ".join(_SQL[d] for d in dimensions) if dimensions else "''"


def frame_counts(conn, *, region: str, dimensions: list[str]) -> list[tuple[str, int]]:
    """(stratum key, taxpayers) of the region's registry, in key order."""
    where, params = _frame(region)
    rows = matching.DuckDBEngine(conn).rows(
        f"SELECT {_key_sql(dimensions)} AS k, count(*) FROM registry r {where} GROUP BY k ORDER BY k", params)
    return [(k, n) for k, n in rows]


def proportional(counts: list[tuple[str, int]], size: int) -> dict[str, int]:
    """Quotas summing to `size` (at most the frame), each in proportion to its stratum: the floors first, then
    one more to the strata with the largest remainders (ties to the larger stratum, then by key)."""
    total = sum(n for _, n in counts)
    size = min(size, total)
    if not total:
        return {k: 0 for k, _ in counts}
    exact = {k: size * n / total for k, n in counts}
    quotas = {k: int(x) for k, x in exact.items()}
    frame = dict(counts)
    order = sorted(counts, key=lambda kn: (-(exact[kn[0]] - quotas[kn[0]]), -kn[1], kn[0]))
    for k, _ in order[:size - sum(quotas.values())]:
        quotas[k] += 1
    return {k: min(q, frame[k]) for k, q in quotas.items()}


def _check_dimensions(dimensions: list[str]) -> list[str]:
    dimensions = list(dict.fromkeys(d for d in dimensions if d))
    if unknown := [d for d in dimensions if d not in DIMENSIONS]:
        raise SurveyInvalid(f"分层维度“{'、'.join(unknown)[:40]}”不可用(可用:{'、'.join(DIMENSIONS.values())})")
    return [d for d in DIMENSIONS if d in dimensions]  # one order, so the same choice gives the same keys


def check_design(allocation: str, seed: int | None) -> None:
    if allocation not in ALLOCATIONS:
        raise SurveyInvalid("配额方式应为“按比例分配”或“指定配额”")
    if seed is not None and not 1 <= seed <= SEED_MAX:
        raise SurveyInvalid(f"随机种子应为 1 到 {SEED_MAX} 之间的整数")


def allocate(counts: list[tuple[str, int]], *, dimensions: list[str], allocation: str, size: int,
             quotas: dict[str, int] | None, seed: int | None, label=None) -> SamplePlan:
    """The plan over a frame's strata (key, size): quotas in proportion to `size`, or as given — refused (naming
    the stratum) when a given quota is not in the frame or exceeds its stratum. Every frame (the registry's, a
    list's) is allocated here; `label` names a stratum by its key."""
    label = label or (lambda k: stratum_label(dimensions, k))
    if allocation == "proportional":
        if not 1 <= size <= MAX_SAMPLE:
            raise SurveyInvalid(f"样本量应在 1 到 {MAX_SAMPLE:,} 之间")
        given = proportional(counts, size)
    else:
        quotas = quotas or {}
        frame = dict(counts)
        problems = [f"“{label(k) if k in frame else k[:40]}”不是抽样框中的层" for k in quotas if k not in frame]
        problems += [f"“{label(k)}”配额 {q} 应在 0 到该层总数 {frame[k]} 之间" for k, q in quotas.items()
                     if k in frame and not 0 <= q <= frame[k]]
        if problems:
            raise SurveyInvalid("配额有误:" + ";".join(problems[:10]))
        given = {k: quotas.get(k, 0) for k, _ in counts}
        if not 1 <= sum(given.values()) <= MAX_SAMPLE:
            raise SurveyInvalid(f"各层配额合计应在 1 到 {MAX_SAMPLE:,} 之间")
    return SamplePlan(dimensions, allocation, size if allocation == "proportional" else sum(given.values()),
                      seed or new_seed(), [StratumPlan(k, label(k), n, given[k]) for k, n in counts])


def plan(conn, *, region: str, dimensions: list[str], allocation: str, size: int = 0,
         quotas: dict[str, int] | None = None, seed: int | None = None) -> SamplePlan:
    """The strata and quotas a draw of the region's registry would use."""
    dimensions = _check_dimensions(dimensions)
    check_design(allocation, seed)
    counts = frame_counts(conn, region=region, dimensions=dimensions)
    if not counts:
        raise SurveyInvalid("抽样框为空:本单位辖区在纳税人数据中没有纳税人")
    return allocate(counts, dimensions=dimensions, allocation=allocation, size=size, quotas=quotas, seed=seed)


def sampleable(session: Session, actor: Actor, survey_id: int) -> Survey:
    survey = get_survey(session=session, actor=actor, survey_id=survey_id)
    if refused := manage_refusal(actor, survey):
        raise refused
    if survey.state == "closed":
        raise SurveyInvalid(f"问卷第 {survey.version} 版{STATES['closed']},不能再抽样")
    return survey


def preview(*, session: Session, conn, actor: Actor, survey_id: int, dimensions: list[str], allocation: str,
            size: int = 0, quotas: dict[str, int] | None = None, seed: int | None = None) -> SamplePlan:
    """The counts per stratum a draw would take, before anything is drawn (nothing is written)."""
    survey = sampleable(session, actor, survey_id)
    return plan(conn, region=matching.region_prefix(survey.unit.code), dimensions=dimensions, allocation=allocation,
                size=size, quotas=quotas, seed=seed)


def members(conn, *, region: str, p: SamplePlan) -> list[tuple[str, str]]:
    """(credit code, stratum key) of the taxpayers the plan draws: in each stratum the first `quota` by
    md5(seed:credit code)."""
    wanted = [(s.key, s.quota) for s in p.strata if s.quota]
    if not wanted:
        return []
    where, params = _frame(region)
    values = ", ".join(f"($k{i}, $q{i})" for i in range(len(wanted)))
    for i, (key, quota) in enumerate(wanted):
        params.update({f"k{i}": key, f"q{i}": quota})
    params["seed"] = f"{p.seed}:"
    return [(code, key) for code, key in matching.DuckDBEngine(conn).rows(f"""
        WITH q(k, quota) AS (VALUES {values}),
        f AS (SELECT r.credit_code, {_key_sql(p.dimensions)} AS k FROM registry r {where}),
        ranked AS (SELECT f.credit_code, f.k, row_number() OVER (PARTITION BY f.k ORDER BY md5($seed || f.credit_code),
                          f.credit_code) AS n FROM f)
        SELECT ranked.credit_code, ranked.k FROM ranked JOIN q ON q.k = ranked.k WHERE ranked.n <= q.quota
        ORDER BY ranked.k, ranked.n""", params)]


def draw(*, session: Session, conn, actor: Actor, survey_id: int, dimensions: list[str], allocation: str,
         size: int = 0, quotas: dict[str, int] | None = None, seed: int | None = None) -> SurveySample:
    """Draw the sample and record it with its seed, strata (frame sizes, quotas) and members."""
    survey = sampleable(session, actor, survey_id)
    region = matching.region_prefix(survey.unit.code)
    p = plan(conn, region=region, dimensions=dimensions, allocation=allocation, size=size, quotas=quotas, seed=seed)
    return record(session, actor, survey, p, members(conn, region=region, p=p))


def record(session: Session, actor: Actor, survey: Survey, p: SamplePlan, drawn: list[tuple[str, str]],
           **source) -> SurveySample:
    """Write a drawn sample — its seed, strata (frame sizes, quotas), members (code, stratum key) — and audit it;
    `source`: the sample's other columns (a list's name and digest)."""
    sample = SurveySample(survey_id=survey.id, dimensions=p.dimensions, allocation=p.allocation,
                          requested=p.requested, seed=p.seed, frame_total=p.frame_total, drawn=len(drawn),
                          created_by=actor.username, **source)
    session.add(sample)
    session.flush()
    by_key, per_stratum = {}, Counter(key for _, key in drawn)
    for s in p.strata:
        by_key[s.key] = stratum = SurveyStratum(sample_id=sample.id, key=s.key, label=s.label[:300],
                                                frame_size=s.frame_size, quota=s.quota, drawn=per_stratum[s.key])
        session.add(stratum)
    session.flush()
    rows = [{"sample_id": sample.id, "stratum_id": by_key[key].id, "credit_code": code, "token": "",
             "opted_out": False, "reminders": 0} for code, key in drawn]
    for i in range(0, len(rows), 5000):
        session.execute(SurveySampleMember.__table__.insert(), rows[i:i + 5000])
    audit.record(session, actor=actor, action="survey.sample.drawn", object_type="survey", object_id=survey.id,
                 after={"sample": sample.id, "dimensions": p.dimensions, "allocation": p.allocation, "seed": p.seed,
                        "frame": p.frame_total, "drawn": len(drawn), "strata": len(p.strata), **source})
    return sample
