"""Policies: the shipped catalogue, browsing, editing a rule; matching a policy against the taxpayer store."""

from __future__ import annotations

import json
import string
from datetime import date
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from chunfeng.db import utcnow
from chunfeng.org import audit
from chunfeng.org.access import Actor, SystemActor, authorize
from chunfeng.org.models import Unit
from chunfeng.paging import Page, paginate
from chunfeng.push import claim_amounts, matching, periods, rules, store
from chunfeng.push.errors import EngineFailed, PushInvalid, PushNotFound
from chunfeng.push.models import Policy
from chunfeng.push.schema import CHANNELS, CONTACT_ROLES

SHIPPED = Path(__file__).parent / "data" / "policies.json"
PLACEHOLDERS = {"name", "person", "policy", "basis", "period", "deadline"}
PERIOD_KINDS = {"month": "月", "quarter": "季", "year": "年"}
# What a claim amount of a policy is (push.schema.CLAIMS): tax and fees reduced or exempted, tax whose payment
# was deferred, or tax moved to later years by an earlier deduction. Only the first is money saved.
KINDS = {"reduction": "减免", "deferral": "延缓缴纳", "timing": "税前扣除提前(时间性差异)"}


def template_problems(templates: dict, roles: list[str]) -> list[str]:
    problems = []
    for role in roles:
        if role not in CONTACT_ROLES:
            problems.append(f"未知身份“{role}”(可用:{'、'.join(CONTACT_ROLES)})")
        elif not (templates.get(role) or {}).get("default"):
            problems.append(f"缺少给{role}的默认消息模板")
    for role, by_channel in templates.items():
        for channel, text in by_channel.items():
            if channel != "default" and channel not in CHANNELS:
                problems.append(f"{role}的模板:未知渠道“{channel}”")
            try:
                used = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
            except ValueError as exc:
                problems.append(f"{role}/{channel} 模板格式错误:{exc}")
                continue
            unknown = used - PLACEHOLDERS
            if unknown:
                problems.append(f"{role}/{channel} 模板中有未知占位符 {{{'}、{'.join(sorted(unknown))}}}"
                                f"(可用:{'、'.join('{' + p + '}' for p in sorted(PLACEHOLDERS))})")
    return problems


def _policy_from_json(data: dict) -> Policy:
    problems = []
    try:
        rules.parse(data["rule"])
    except rules.RuleError as exc:
        problems.append(f"规则:{exc}")
    problems += template_problems(data.get("templates", {}), data.get("roles", []))
    if data.get("period_kind") not in PERIOD_KINDS:
        problems.append(f"period_kind 应为 {'、'.join(PERIOD_KINDS)}")
    # Policies without a kind are reductions, the common case: a file written before kinds existed still loads.
    if data.get("kind", "reduction") not in KINDS:
        problems.append(f"kind 应为 {'、'.join(KINDS)}")
    if problems:
        raise PushInvalid(f"政策 {data.get('id')}:" + ";".join(problems))
    until = data.get("effective_until")
    return Policy(id=data["id"], name=data["name"], tax_type=data["tax_type"], topic=data.get("topic", ""),
                  industries=data.get("industries", []), sizes=data.get("sizes", []), regions=data.get("regions", []),
                  basis=data["basis"], basis_title=data.get("basis_title", ""),
                  effective_from=date.fromisoformat(data["effective_from"]),
                  effective_until=date.fromisoformat(until) if until else None, period_kind=data["period_kind"],
                  kind=data.get("kind", "reduction"), filing=data["filing"], summary=data.get("summary", ""),
                  rule=data["rule"], roles=data["roles"], templates=data["templates"], review=data.get("review", ""),
                  shipped=True, updated_by="system")


def shipped_policies() -> list[dict]:
    return json.loads(SHIPPED.read_text(encoding="utf-8"))["policies"]


# What a new release of the catalogue may change in a policy already in the database. The rule is refreshed only
# while nobody has edited it: an official's rule stands.
REFRESHED = ("name", "kind", "tax_type", "topic", "industries", "sizes", "regions", "basis", "basis_title", "effective_from",
             "effective_until", "period_kind", "filing", "summary", "roles", "templates", "review")


def seed_policies(session: Session) -> int:
    """Add the shipped policies that are not in the database yet, and bring shipped ones up to the catalogue
    (validity, basis, review note): a corrected end date must reach databases seeded before it. A rule an official
    edited is kept. Each refresh is audited. Returns how many were added."""
    have = {p.id: p for p in session.scalars(select(Policy))}
    added = 0
    for data in shipped_policies():
        fresh = _policy_from_json(data)
        policy = have.get(data["id"])
        if policy is None:
            session.add(fresh)
            added += 1
            continue
        if not policy.shipped:
            continue
        fields = REFRESHED + (("rule",) if policy.updated_by == "system" else ())
        changed = [f for f in fields if getattr(policy, f) != getattr(fresh, f)]
        if changed:
            before = {f: _plain(getattr(policy, f)) for f in changed}
            for f in changed:
                setattr(policy, f, getattr(fresh, f))
            audit.record(session, actor=SystemActor(), action="push.policy.refreshed", object_type="policy",
                         object_id=policy.id, before=before, after={f: _plain(getattr(policy, f)) for f in changed})
    session.flush()
    return added


def _plain(value):
    return value.isoformat() if isinstance(value, date) else value


def claim_period(policy: dict | Policy) -> str:
    """The period synthetic claims of a policy are for: the one filed in July 2022, moved forward to the
    first period after the policy took effect, or back to its last period when it had already ended."""
    get = policy.get if isinstance(policy, dict) else lambda k: getattr(policy, k)

    def day(value):
        return date.fromisoformat(value) if isinstance(value, str) else value

    kind, start, until = get("period_kind"), day(get("effective_from")), day(get("effective_until"))
    months = {"month": 1, "quarter": 3, "year": 12}[kind]

    def month_after(d: date, n: int) -> date:
        return date(d.year + (d.month - 1 + n) // 12, (d.month - 1 + n) % 12 + 1, 1)

    ref = max(month_after(start, months), date(2022, 7, 1))
    if until is not None and ref > month_after(until, 1):
        ref = month_after(until, 1)
    return matching.period_for(kind, ref.year, ref.month)


def synthetic_claim_rules() -> dict[str, tuple[str, ...]]:
    """What `push gen` and the demo hand the generator: each shipped policy's rule as SQL, its period and, where
    claim_amounts.CLAIM_AMOUNTS has one, the amount at the policy's own rate."""
    result = {}
    for p in shipped_policies():
        amount = claim_amounts.claim_amount_sql(p["id"], p["period_kind"])
        result[p["id"]] = (rules.parse(p["rule"]).sql("duckdb"), claim_period(p), *([amount] if amount else []))
    return result


STANDINGS = {"current": "现行有效", "expired": "已失效", "all": "全部"}


def list_policies(*, session: Session, actor: Actor, q: str = "", tax_type: str = "", on: date | None = None,
                  standing: str = "all", page: int = 1, per_page: int = 30) -> Page[Policy]:
    """`on` keeps the policies in force that day; `standing` (with `on`, default today) "current" keeps those not
    yet ended (in force, or announced and not begun), "expired" those that ended before it."""
    authorize(actor, "push.policy.view")
    where = []
    if standing != "all":
        day = on or date.today()
        on = None
        if standing == "current":
            where.append(or_(Policy.effective_until.is_(None), Policy.effective_until >= day))
        elif standing == "expired":
            where.append(Policy.effective_until < day)
        else:
            raise PushInvalid(f"政策状态应为 {'、'.join(STANDINGS)} 之一")
    if q.strip():
        like = f"%{q.strip()}%"
        where.append(or_(Policy.name.like(like), Policy.basis.like(like), Policy.summary.like(like),
                         Policy.id.like(like), Policy.topic.like(like)))
    if tax_type:
        where.append(Policy.tax_type == tax_type)
    if on is not None:
        where.append(Policy.effective_from <= on)
        where.append(or_(Policy.effective_until.is_(None), Policy.effective_until >= on))
    return paginate(session, select(Policy).where(*where).order_by(Policy.tax_type, Policy.id), page, per_page)


def tax_types(session: Session) -> list[str]:
    return list(session.scalars(select(Policy.tax_type).distinct().order_by(Policy.tax_type)))


def get_policy(*, session: Session, actor: Actor, policy_id: str) -> Policy:
    authorize(actor, "push.policy.view")
    policy = session.get(Policy, policy_id)
    if policy is None:
        raise PushNotFound(f"没有编号为 {policy_id} 的政策")
    return policy


def update_rule(*, session: Session, actor: Actor, policy_id: str, rule: str) -> Policy:
    """Replace a policy's eligibility rule; a rule that does not check is refused (RuleError) and nothing changes."""
    policy = get_policy(session=session, actor=actor, policy_id=policy_id)
    authorize(actor, "push.policy.edit", _national(session))
    rules.check(rule)
    before = policy.rule
    if rule == before:
        return policy
    policy.rule, policy.updated_at, policy.updated_by = rule, utcnow(), actor.username
    audit.record(session, actor=actor, action="push.policy.rule_changed", object_type="policy", object_id=policy.id,
                 before={"rule": before}, after={"rule": rule})
    return policy


def _national(session: Session) -> Unit:
    return session.scalar(select(Unit).where(Unit.level == "national"))


def actor_region(actor: Actor) -> str:
    """The region prefix of the taxpayers an official may see: the unit's own code prefix."""
    return "" if isinstance(actor, SystemActor) else matching.region_prefix(actor.unit.code)


def check_rule(text: str, store_file: Path) -> dict:
    """A rule editor's live check: errors with their position, or the fields used and how many match now."""
    try:
        rule = rules.check(text)
    except rules.RuleError as exc:
        return {"ok": False, "error": str(exc), "message": exc.message, "position": exc.position,
                "pointer": exc.pointer()}
    result = {"ok": True, "fields": rule.fields, "sql": rule.sql("duckdb"), "matches": None}
    if store_file.exists():
        with store.connect_store(store_file) as conn:
            try:
                result["matches"] = matching.DuckDBEngine(conn).rows(
                    f"SELECT count(*) FROM registry WHERE {rule.sql('duckdb')}")[0][0]
            except EngineFailed as exc:
                return {"ok": False, "error": str(exc), "message": str(exc), "position": 0, "pointer": ""}
    return result


def match_policy(*, session: Session, actor: Actor, policy_id: str, period: str | None = None,
                 engine: matching.Engine | None = None, store_file: Path | None = None) -> matching.Match:
    """Counts for one policy over the taxpayers of the actor's region."""
    authorize(actor, "push.match")
    policy = get_policy(session=session, actor=actor, policy_id=policy_id)
    audience = matching.Audience(region=actor_region(actor))
    if engine is not None:
        return _match_within_validity(engine, policy, period, audience)
    if store_file is None:
        raise ValueError("match_policy needs an engine or the taxpayer store (setting push_store)")
    with store.connect_store(store_file) as conn:
        return _match_within_validity(matching.DuckDBEngine(conn), policy, period, audience)


def check_match_period(policy: Policy, period: str | None) -> None:
    """Refuse a period outside the policy's validity: before it began nobody could claim it, and counting everyone
    as eligible but not claimed would send officials after a relief that did not exist."""
    if period:
        periods.check_period(policy, period)


def _match_within_validity(engine: matching.Engine, policy: Policy, period: str | None,
                           audience: matching.Audience) -> matching.Match:
    if period is None:
        period = matching.latest_claim_period(engine, policy.id)
    check_match_period(policy, period)
    return matching.match(engine, policy_id=policy.id, rule_text=policy.rule, period=period, audience=audience)
