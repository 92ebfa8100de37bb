"""Who a policy is for: the eligible set and the eligible-but-not-claimed set, on DuckDB, PostgreSQL or Spark.

Queries are written once in DuckDB's dialect around the rule's compiled predicate and translated by SQLGlot
for the engine at hand, so the same rule text gives the same counts everywhere (tested on all three).
Every value that is not part of the rule (a region, a policy id, a period, a role) travels as a named bound
parameter (`$name`), never inside the SQL text: a unit code is data, not SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

import duckdb
from sqlglot import exp, parse_one

from chunfeng.bounds import DAY_MAX, DAY_MIN
from chunfeng.org.builtin import PROVINCES
from chunfeng.push import rules
from chunfeng.push.errors import EngineFailed, PushInvalid

PROVINCE_NAMES = {code[:2]: name for code, name in PROVINCES if code.endswith("0000")}
INDUSTRY_SECTIONS = {
    "A": "农、林、牧、渔业", "B": "采矿业", "C": "制造业", "D": "电力、热力、燃气及水生产和供应业", "E": "建筑业",
    "F": "批发和零售业", "G": "交通运输、仓储和邮政业", "H": "住宿和餐饮业", "I": "信息传输、软件和信息技术服务业",
    "J": "金融业", "K": "房地产业", "L": "租赁和商务服务业", "M": "科学研究和技术服务业",
    "N": "水利、环境和公共设施管理业", "O": "居民服务、修理和其他服务业", "P": "教育", "Q": "卫生和社会工作",
    "R": "文化、体育和娱乐业", "S": "公共管理、社会保障和社会组织", "T": "国际组织",
}


class Engine(Protocol):
    dialect: str

    def rows(self, sql: str, params: Any = None) -> list[tuple]: ...


class DuckDBEngine:
    dialect = "duckdb"

    def __init__(self, conn):
        self.conn = conn

    def rows(self, sql: str, params: Any = None) -> list[tuple]:
        try:
            return self.conn.execute(sql, params or {}).fetchall()
        except duckdb.Error as exc:  # a stored rule that fails on today's data: a clear refusal, not a crash
            raise EngineFailed(str(exc).splitlines()[0][:300]) from exc


def region_prefix(unit_code: str) -> str:
    """The administrative-code prefix a unit's taxpayers share: 110000 → 11, 440300 → 4403, the nation → ''."""
    if unit_code.startswith("0000"):
        return ""
    code = unit_code
    while code.endswith("00") and len(code) > 2:
        code = code[:-2]
    return code


def period_for(kind: str, year: int, month: int) -> str:
    """The tax period a return filed in (year, month) is for: the month, quarter or year just ended."""
    prev_year, prev_month = (year - 1, 12) if month == 1 else (year, month - 1)
    if kind == "month":
        return f"{prev_year}-{prev_month:02d}"
    if kind == "quarter":
        return f"{prev_year}Q{(prev_month - 1) // 3 + 1}"
    return str(year - 1)


_PERIOD = re.compile(r"(\d{4})(?:Q(\d{1,2})|-(\d{1,2}))?", re.ASCII)


def period_bounds(period: str) -> tuple[date, date]:
    """First and last day of a period written 2022, 2022Q2 or 2022-06, in the years 2000–2100."""
    m = _PERIOD.fullmatch(period or "")
    year = int(m[1]) if m else 0
    quarter, month = (int(m[2]) if m and m[2] else None), (int(m[3]) if m and m[3] else None)
    if (not m or not DAY_MIN.year <= year <= DAY_MAX.year or (quarter is not None and not 1 <= quarter <= 4)
            or (month is not None and not 1 <= month <= 12)):
        raise PushInvalid(f"所属期“{(period or '')[:20]}”应写成 2022、2022Q2 或 2022-06(2000 至 2100 年)")
    if quarter:
        first, last_month = date(year, 3 * quarter - 2, 1), 3 * quarter
    elif month:
        first, last_month = date(year, month, 1), month
    else:
        first, last_month = date(year, 1, 1), 12
    end = date(first.year + (last_month == 12), last_month % 12 + 1, 1)
    return first, date.fromordinal(end.toordinal() - 1)


def in_list(name: str, values: list[str] | tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """`$name_0, $name_1, …` for an IN list, with its parameters."""
    params = {f"{name}_{i}": v for i, v in enumerate(values)}
    return ", ".join(f"${key}" for key in params) or "NULL", params


@dataclass
class Audience:
    """Which taxpayers a query looks at: a region prefix and an optional extra rule."""

    region: str = ""
    extra: str = ""

    def conditions(self) -> list[str]:
        parts = []
        if self.region:
            parts.append(f"substr(r.region, 1, {len(self.region)}) = $audience_region")
        if self.extra.strip():
            parts.append(rules.parse(self.extra).sql("duckdb", table_alias="r"))
        return parts

    def params(self) -> dict[str, str]:
        return {"audience_region": self.region} if self.region else {}


def _eligible_sql(rule: rules.Rule, audience: Audience, columns: str) -> str:
    """Parameters: `audience.params()`."""
    where = " AND ".join([rule.sql("duckdb", table_alias="r"), *audience.conditions()])
    return f"SELECT {columns} FROM registry AS r WHERE {where}"


def _claimed_sql(period: str | None) -> str:
    """Parameters: `claimed_policy`, `claimed_period`."""
    if period is None:  # no period with claims yet: nobody has claimed
        return "SELECT credit_code FROM claims WHERE 1 = 0"
    return "SELECT DISTINCT credit_code FROM claims WHERE policy = $claimed_policy AND period = $claimed_period"


def translate(sql: str, engine: Engine, params: dict[str, Any] | None = None) -> tuple[str, Any]:
    """The DuckDB-dialect `sql` with named `$parameters` as the engine runs it, and its parameters.

    Spark takes named markers (`:name`); PostgreSQL gets numbered ones (`$1`), which psycopg's raw cursor passes
    to the server as they are, so a `%` in the SQL (modulo) needs no escaping.
    """
    # Only the parameters the statement names: DuckDB refuses extra ones (the claimed period of a policy nobody has
    # claimed yet is in the parameters, but its query is the empty set and names none).
    params = {name: value for name, value in (params or {}).items() if re.search(rf"\${name}\b", sql)}
    if engine.dialect == "duckdb":
        return sql, params
    tree = parse_one(sql, read="duckdb")
    if engine.dialect != "postgres":
        return tree.sql(dialect=engine.dialect), params
    order: list[str] = []

    def number(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Placeholder) and node.name in params:
            if node.name not in order:
                order.append(node.name)
            return exp.Parameter(this=exp.Literal.number(order.index(node.name) + 1))
        return node

    return tree.transform(number).sql(dialect="postgres"), [params[name] for name in order]


@dataclass
class Match:
    policy: str
    period: str | None
    eligible: int = 0
    not_claimed: int = 0
    by_region: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_industry: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, province: str, section: str, eligible: int, not_claimed: int) -> None:
        """Count one (province, industry section) group of the result."""
        self.eligible += eligible
        self.not_claimed += not_claimed
        for key, name, bucket in ((f"{province}0000", PROVINCE_NAMES.get(province, province), self.by_region),
                                  (section, INDUSTRY_SECTIONS.get(section, section), self.by_industry)):
            entry = bucket.setdefault(key, {"name": name, "eligible": 0, "not_claimed": 0})
            entry["eligible"] += eligible
            entry["not_claimed"] += not_claimed

    def sort(self) -> Match:
        self.by_region = dict(sorted(self.by_region.items()))
        self.by_industry = dict(sorted(self.by_industry.items()))
        return self

    def as_json(self) -> dict:
        return {"policy": self.policy, "period": self.period, "eligible": self.eligible,
                "not_claimed": self.not_claimed, "by_region": self.by_region, "by_industry": self.by_industry}


def latest_claim_period(engine: Engine, policy_id: str) -> str | None:
    rows = engine.rows(*translate("SELECT max(period) FROM claims WHERE policy = $policy", engine, {"policy": policy_id}))
    return rows[0][0] if rows else None


def match(engine: Engine, *, policy_id: str, rule_text: str, period: str | None = None,
          audience: Audience | None = None) -> Match:
    """Counts of eligible and eligible-but-not-claimed taxpayers, in total, by province and by industry section.

    `period` defaults to the latest period anyone claimed the policy for.
    """
    rule = rules.parse(rule_text)
    audience = audience or Audience()
    if period is None:
        period = latest_claim_period(engine, policy_id)
    elif period:
        period_bounds(period)
    sql = f"""
        WITH e AS ({_eligible_sql(rule, audience, "r.credit_code, substr(r.region, 1, 2) AS province, "
                                                  "substr(r.industry, 1, 1) AS section")}),
             c AS ({_claimed_sql(period)})
        SELECT e.province, e.section, count(*) AS eligible,
               sum(CASE WHEN c.credit_code IS NULL THEN 1 ELSE 0 END) AS not_claimed
        FROM e LEFT JOIN c ON c.credit_code = e.credit_code
        GROUP BY e.province, e.section"""
    params = {**audience.params(), "claimed_policy": policy_id, "claimed_period": period}
    result = Match(policy_id, period)
    for province, section, eligible, not_claimed in engine.rows(*translate(sql, engine, params)):
        result.add(province, section, int(eligible), int(not_claimed or 0))
    return result.sort()


TAXPAYER_COLUMNS = ("credit_code", "name", "region", "industry", "vat_type", "size", "credit")


def taxpayers(engine: Engine, *, policy_id: str, rule_text: str, period: str | None, audience: Audience | None = None,
              province: str = "", section: str = "", not_claimed_only: bool = False,
              offset: int = 0, limit: int | None = 50) -> tuple[int, list[dict]]:
    """The drill-down: the taxpayers behind a count, ordered by credit code; (total, one page)."""
    if period:
        period_bounds(period)
    rule = rules.parse(rule_text)
    audience = audience or Audience()
    columns = ", ".join(f"r.{c}" for c in TAXPAYER_COLUMNS)
    where = []
    params = {**audience.params(), "claimed_policy": policy_id, "claimed_period": period}
    if province:
        where.append("substr(e.region, 1, 2) = $province")
        params["province"] = province[:2]
    if section:
        where.append("substr(e.industry, 1, 1) = $section")
        params["section"] = section[:1]
    if not_claimed_only:
        where.append("c.credit_code IS NULL")
    filters = ("WHERE " + " AND ".join(where)) if where else ""
    base = f"""
        WITH e AS ({_eligible_sql(rule, audience, columns)}), c AS ({_claimed_sql(period)})
        SELECT e.*, CASE WHEN c.credit_code IS NULL THEN 0 ELSE 1 END AS claimed
        FROM e LEFT JOIN c ON c.credit_code = e.credit_code {filters}"""
    total = engine.rows(*translate(f"SELECT count(*) FROM ({base}) AS t", engine, params))[0][0]
    page = f"{base} ORDER BY e.credit_code" + (f" LIMIT {int(limit)} OFFSET {int(offset)}" if limit else "")
    names = (*TAXPAYER_COLUMNS, "claimed")
    return int(total), [dict(zip(names, row, strict=True)) for row in engine.rows(*translate(page, engine, params))]


BITS_PER_PASS = 48  # claimed policies travel as bits of one number; doubles hold 2^48 exactly on every engine


def match_all(engine: Engine, policies: list[tuple[str, str]], *, periods: dict[str, str | None] | None = None,
              audience: Audience | None = None) -> list[Match]:
    """`match` for many policies in one pass over the registry and one over the claims.

    Matching policy by policy joins the claims to the registry once per policy; at national scale that join
    is the cost, so here each taxpayer's claims are first folded into one number (a bit per policy), joined
    once, and every policy's two counts are sums over the same scan.
    """
    audience = audience or Audience()
    periods = dict(periods or {})
    for pid, _ in policies:
        if pid not in periods:
            periods[pid] = latest_claim_period(engine, pid)
    results = []
    for start in range(0, len(policies), BITS_PER_PASS):
        results += _match_pass(engine, policies[start:start + BITS_PER_PASS], periods, audience)
    return results


def _match_pass(engine: Engine, policies: list[tuple[str, str]], periods: dict, audience: Audience) -> list[Match]:
    params = audience.params()
    for i, (pid, _) in enumerate(policies):
        params[f"policy_{i}"], params[f"period_{i}"] = pid, periods[pid] or ""
    pairs = ", ".join(f"($policy_{i}, $period_{i}, {2 ** i})" for i in range(len(policies)))
    # Each rule is evaluated once per taxpayer into a 0/1 flag; the sums then only multiply flags.
    flags = ", ".join(f"CASE WHEN {rules.parse(rule_text).sql('duckdb', table_alias='r')} THEN 1 ELSE 0 END AS e{i}"
                      for i, (_, rule_text) in enumerate(policies))
    sums = ", ".join(f"sum(e{i}), sum(e{i} * (1 - CAST(floor(claimed / {2 ** i}) AS BIGINT) % 2))"
                     for i in range(len(policies)))
    where = " AND ".join(audience.conditions()) or "1 = 1"
    sql = f"""
        WITH pairs AS (SELECT * FROM (VALUES {pairs}) AS t(policy, period, bit)),
             c AS (SELECT k.credit_code, sum(p.bit) AS claimed FROM claims k
                   JOIN pairs p ON p.policy = k.policy AND p.period = k.period GROUP BY k.credit_code),
             f AS (SELECT substr(r.region, 1, 2) AS province, substr(r.industry, 1, 1) AS section,
                          coalesce(c.claimed, 0) AS claimed, {flags}
                   FROM registry r LEFT JOIN c ON c.credit_code = r.credit_code
                   WHERE {where})
        SELECT province, section, {sums} FROM f GROUP BY province, section"""
    results = [Match(pid, periods[pid]) for pid, _ in policies]
    for row in engine.rows(*translate(sql, engine, params)):
        province, section, counts = row[0], row[1], row[2:]
        for i, result in enumerate(results):
            eligible, not_claimed = int(counts[2 * i] or 0), int(counts[2 * i + 1] or 0)
            if eligible:
                result.add(province, section, eligible, not_claimed)
    return [result.sort() for result in results]
