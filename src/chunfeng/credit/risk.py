"""Dynamic credit + risk monitoring (measure 95): a risk tier per taxpayer from indicators written in the push rule
language, with the indicators that fired and the consequence as a flag the bureau acts on.

The indicators (credit/data/risk.json) are samples for a bureau to replace. Each is a rule over the registry with
its credit overlay (credit_level, from the register) and two figures of the filings; they are checked like any push
rule and run in one pass over the store. A taxpayer's tier is the highest of those that fired, 低 when none did.
A run replaces the tiers of the actor's subtree (the whole store for the scheduled job) and is audited once, with
the counts per tier.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from functools import cache
from importlib.resources import files
from pathlib import Path

import pyarrow as pa
from sqlalchemy import case, delete, insert, or_, select
from sqlalchemy.orm import Session, joinedload

from chunfeng import workdays
from chunfeng.credit.evaluation import filing_deadline_of
from chunfeng.credit.models import RISK_TIERS, CreditRisk
from chunfeng.db import utcnow
from chunfeng.jobs import Progress, no_progress
from chunfeng.org import audit
from chunfeng.org.access import Actor, SystemActor, authorize, subtree_filter
from chunfeng.org.models import Unit
from chunfeng.paging import Page, paginate
from chunfeng.push import rules as push_rules
from chunfeng.push import store as push_store
from chunfeng.push.matching import region_prefix
from chunfeng.push.schema import RULE_REGISTRY, Field, Table

RISK_TABLE = Table("risk_view", "风险指标数据", RULE_REGISTRY.fields + (
    Field("returns_12m", "int", "近12个月申报次数"),
    Field("late_returns_12m", "int", "近12个月逾期申报次数(月、季申报)"),
), key=("credit_code",))
EXPORT_HEADERS = ["统一社会信用代码", "纳税人名称", "风险等级", "处理标识", "触发的风险指标", "主管税务机关", "计算时间"]
BATCH = 5000


@cache
def data() -> dict:
    return json.loads(files("chunfeng.credit").joinpath("data/risk.json").read_text(encoding="utf-8"))


@cache
def indicators() -> list[tuple[dict, push_rules.Rule]]:
    """Each indicator with its checked rule; a shipped indicator that does not check fails loudly here."""
    return [(i, push_rules.check(i["rule"], RISK_TABLE)) for i in data()["indicators"]]


def consequence(tier: str) -> dict:
    return data()["tiers"][tier]


def _deadlines(conn, since: date, calendar: workdays.WorkCalendar) -> pa.Table:
    """Each period of the window's returns and its deadline; a period whose deadline falls in a year the calendar
    does not cover is left out (its returns are not counted late: the deadline is not known, never guessed)."""
    periods = [p for (p,) in conn.execute("SELECT DISTINCT period FROM filings WHERE filed_on >= $since",
                                          {"since": since}).fetchall()]
    known: dict[str, date] = {}
    for period in periods:
        try:
            if (deadline := filing_deadline_of(period, calendar)) is not None:
                known[period] = deadline
        except workdays.CalendarNotCovered:
            continue
    return pa.table({"period": pa.array(list(known), pa.string()), "deadline": pa.array(list(known.values()), pa.date32())})


def flag_columns() -> str:
    """One 0/1 column per indicator (i0, i1, …, in the order of `indicators()`), over `risk_view AS r`."""
    return ", ".join(f"CASE WHEN {rule.sql('duckdb', table_alias='r')} THEN 1 ELSE 0 END AS i{n}"
                     for n, (_, rule) in enumerate(indicators()))


def create_risk_view(conn, *, calendar: workdays.WorkCalendar, today: date) -> None:
    """`risk_view` on a store connection: the registry with the year's returns and late returns before `today`."""
    since = today - timedelta(days=365)
    conn.register("deadlines", _deadlines(conn, since, calendar))
    conn.execute(f"""CREATE TEMP VIEW risk_view AS
        SELECT g.*, CAST(coalesce(f.returns, 0) AS INTEGER) AS returns_12m,
               CAST(coalesce(f.late, 0) AS INTEGER) AS late_returns_12m
        FROM registry g LEFT JOIN (
            SELECT k.credit_code, count(*) AS returns,
                   count(*) FILTER (WHERE d.deadline IS NOT NULL AND k.filed_on > d.deadline) AS late
            FROM filings k LEFT JOIN deadlines d ON d.period = k.period
            WHERE k.filed_on >= DATE '{since.isoformat()}' AND k.filed_on <= DATE '{today.isoformat()}'
            GROUP BY k.credit_code) f ON f.credit_code = g.credit_code""")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def tier_columns() -> str:
    """Over the flags i0, i1, … of `flag_columns`: `tier` (the highest of the indicators that fired, else 低) and
    `fired` (their names, in the order of `indicators()`), so a taxpayer's tier is decided inside the engine."""
    checked = indicators()
    whens = [f"WHEN {' OR '.join(f'i{k} = 1' for k, (i, _) in enumerate(checked) if i['tier'] == tier)} THEN '{tier}'"
             for tier in reversed(RISK_TIERS[1:]) if any(i["tier"] == tier for i, _ in checked)]
    tier = f"CASE {' '.join(whens)} ELSE '{RISK_TIERS[0]}' END" if whens else f"'{RISK_TIERS[0]}'"
    names = ", ".join(f"CASE WHEN i{k} = 1 THEN {_literal(i['name'])} END" for k, (i, _) in enumerate(checked))
    return f"{tier} AS tier, list_filter([{names}], lambda x: x IS NOT NULL) AS fired"


def compute(*, session: Session, actor: Actor, store: Path, today: date, progress: Progress = no_progress) -> dict:
    """Recompute the tiers of the actor's subtree from the store; returns the counts per tier.

    Each taxpayer's tier is decided in DuckDB, where the registry is; only the 中 and 高 tiers, with the
    indicators that fired, are written to the application database — the lists officials page through. A 低
    taxpayer is one with no row (every taxpayer of the subtree was evaluated: its count is in the audit entry).
    Writing every taxpayer's 低 row was what made a national run take minutes (1 M rows to SQLite: 46–51 s)."""
    authorize(actor, "credit.risk")
    prefix = region_prefix(actor.unit_code if isinstance(actor, SystemActor) else actor.unit.code)
    units = [(region_prefix(u.code), u.id) for u in session.scalars(select(Unit))]
    units = sorted(((p, i) for p, i in units if p), key=lambda pair: -len(pair[0]))
    inside = set(session.scalars(select(Unit.id).where(subtree_filter(actor))))
    progress(0, 0, "正在计算风险指标")
    with push_store.connect_store(store) as conn:
        create_risk_view(conn, calendar=workdays.configured_calendar(session), today=today)
        # A region's unit is the deepest whose code prefixes it; a region whose unit another run owns (or that no
        # bureau covers) is left out. Decided once per region (a few thousand), then joined on equality.
        owners: dict[str, int] = {}
        for (region,) in conn.execute("SELECT DISTINCT region FROM registry WHERE starts_with(region, $prefix)",
                                      {"prefix": prefix}).fetchall():
            unit_id = next((i for p, i in units if region.startswith(p)), None)
            if unit_id in inside:
                owners[region] = unit_id
        conn.register("owners", pa.table({"region": pa.array(list(owners), pa.string()),
                                          "unit_id": pa.array(list(owners.values()), pa.int64())}))
        conn.execute(f"""CREATE TEMP TABLE tiered AS
            SELECT f.credit_code, f.name, o.unit_id, {tier_columns()}
            FROM (SELECT r.credit_code, r.name, r.region, {flag_columns()} FROM risk_view AS r) AS f
            JOIN owners AS o ON o.region = f.region""")
        counts = dict.fromkeys(RISK_TIERS, 0) | dict(conn.execute("SELECT tier, count(*) FROM tiered GROUP BY tier").fetchall())
        listed = conn.execute(f"SELECT credit_code, name, unit_id, tier, fired FROM tiered WHERE tier <> '{RISK_TIERS[0]}' "
                              "ORDER BY credit_code").fetchall()
    # Replace the subtree's tiers: the rows of units inside it, then the new ones.
    session.execute(delete(CreditRisk).where(CreditRisk.unit_id.in_(select(Unit.id).where(subtree_filter(actor)))))
    now = utcnow()
    for start in range(0, len(listed), BATCH):
        session.execute(insert(CreditRisk.__table__), [  # Core, not the ORM's bulk path: a third of the time
            {"credit_code": code, "name": name, "unit_id": unit_id, "tier": tier, "indicators": list(fired),
             "computed_at": now} for code, name, unit_id, tier, fired in listed[start:start + BATCH]])
        progress(min(start + BATCH, len(listed)), len(listed), "正在写入中、高风险纳税人")
    audit.record(session, actor=actor, action="credit.risk.computed", object_type="credit_risk",
                 object_id=prefix or "national", after={"counts": counts, "day": today.isoformat()})
    return counts


def _query(actor: Actor, tier: str, q: str):
    query = (select(CreditRisk).join(CreditRisk.unit).options(joinedload(CreditRisk.unit)).where(subtree_filter(actor)))
    if tier:
        query = query.where(CreditRisk.tier == tier)
    if q := q.strip():
        query = query.where(or_(CreditRisk.name.contains(q, autoescape=True),
                                CreditRisk.credit_code.startswith(q.upper(), autoescape=True)))
    # 高 first: by the tiers' order, not their characters' (高 > 低 > 中 in code points)
    rank = case({t: n for n, t in enumerate(reversed(RISK_TIERS))}, value=CreditRisk.tier, else_=len(RISK_TIERS))
    return query.order_by(rank, CreditRisk.credit_code)


def list_risks(*, session: Session, actor: Actor, tier: str = "", q: str = "", page: int = 1,
               per_page: int = 50) -> Page[CreditRisk]:
    """The tiers of the actor's subtree, filtered by tier or name/code."""
    authorize(actor, "credit.view")
    return paginate(session, _query(actor, tier if tier in RISK_TIERS else "", q), page, per_page)


def export_rows(*, session: Session, actor: Actor, tier: str = "", q: str = ""):
    authorize(actor, "credit.view")
    for r in session.scalars(_query(actor, tier if tier in RISK_TIERS else "", q)).yield_per(1000):
        yield [r.credit_code, r.name, r.tier, consequence(r.tier)["flag"], "、".join(r.indicators) or "无",
               r.unit.name, r.computed_at.strftime("%Y-%m-%d %H:%M")]
