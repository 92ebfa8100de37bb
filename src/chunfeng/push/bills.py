"""The dividend bill (红利账单): what a small or micro enterprise saved in a year, per policy and in total.

Who gets a bill is decided by the enterprise size class of the registry (`size`, 小型/微型 under the 中小企业划型
standard) or by being an individual business; that is not the enterprise income tax concept 小型微利企业 (headcount
≤ 300, assets ≤ 5000万, taxable income ≤ 300万), which some of the policies on a bill use. The bill says so.

A claim amount (push.schema.CLAIMS) means what the policy's kind says: tax and fees reduced or exempted, tax
deferred (still owed), or tax moved to later years by an earlier deduction. Only reductions add up to 为您减免;
the others are listed apart. A claim for a period outside its policy's validity, or for a policy the catalogue
does not know, is left out with a note and never summed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from chunfeng import crypto, documents
from chunfeng.db import utcnow
from chunfeng.org import audit
from chunfeng.org.access import Actor, authorize
from chunfeng.org.services import find_unit, unit_for_region
from chunfeng.push import matching
from chunfeng.push.errors import PushInvalid, PushNotFound
from chunfeng.push.models import Campaign, CampaignStage, Policy, PushMessage

# The enterprise size class (工信部 中小企业划型), not 小型微利企业: the registry records the former.
SMALL = "(r.size IN ('小型', '微型') OR r.individual_business)"
ISSUER = "国家税务总局"  # when no unit of the taxpayer's region, nor a national one, is known


@dataclass
class Bill:
    credit_code: str
    name: str
    region: str
    size: str
    individual_business: bool
    year: int
    issuer: str = ISSUER
    # policy, name, basis, tax_type, kind, amount, periods: reductions, deferrals and timing lines alike
    lines: list[dict] = field(default_factory=list)
    left_out: list[dict] = field(default_factory=list)  # policy, name, amount, periods, reason

    def _of(self, kind: str) -> list[dict]:
        return [line for line in self.lines if line["kind"] == kind]

    @property
    def reductions(self) -> list[dict]:
        return self._of("reduction")

    @property
    def deferrals(self) -> list[dict]:
        return self._of("deferral")

    @property
    def timing(self) -> list[dict]:
        return self._of("timing")

    @property
    def total(self) -> Decimal:
        """为您减免: reductions only; deferred tax is still owed and an earlier deduction only moves tax in time."""
        return sum((line["amount"] for line in self.reductions), Decimal(0))

    @property
    def deferred_total(self) -> Decimal:
        return sum((line["amount"] for line in self.deferrals), Decimal(0))

    @property
    def timing_total(self) -> Decimal:
        return sum((line["amount"] for line in self.timing), Decimal(0))

    @property
    def size_label(self) -> str:
        return "个体工商户" if self.individual_business else f"{self.size}企业(按中小企业划型标准)"


def check_year(year: int) -> None:
    if not 2000 <= year <= 2100:  # the years campaigns accept too; a larger number overflowed the column
        raise PushInvalid(f"年度应在 2000–2100 之间,而不是 {year}")


def _validity(policy: Policy) -> str:
    return f"{policy.effective_from.isoformat()} 至 {policy.effective_until.isoformat() if policy.effective_until else '长期'}"


def classify(policy: Policy | None, period: str) -> str | None:
    """Why a claim of `policy` for `period` stays off the bill, or None when it counts (as the policy's kind)."""
    if policy is None:
        return "政策库中没有该政策,无法确认其性质和有效期,未计入"
    try:
        first, last = matching.period_bounds(period)
    except PushInvalid:
        return f"所属期“{period[:20]}”无法识别,未计入"
    if last < policy.effective_from or (policy.effective_until is not None and first > policy.effective_until):
        return f"所属期 {period} 不在政策有效期({_validity(policy)})内,未计入"
    return None


def bill(conn, session: Session, *, credit_code: str, year: int) -> Bill:
    """One taxpayer's bill; PushNotFound when the taxpayer is unknown or neither a small or micro enterprise
    (size class) nor an individual business."""
    check_year(year)
    row = conn.execute(f"SELECT r.credit_code, r.name, r.region, r.size, r.individual_business FROM registry r "
                       f"WHERE r.credit_code = ? AND {SMALL}", [credit_code]).fetchall()
    row = row[0] if row else None
    if row is None:
        raise PushNotFound(f"没有信用代码为 {credit_code} 的小型、微型企业(按中小企业划型标准)或个体工商户")
    issuer = unit_for_region(session=session, region=row[2])
    result = Bill(*row, year=year, issuer=issuer.name if issuer is not None else ISSUER)
    policies = {p.id: p for p in session.scalars(select(Policy))}
    kept: dict[str, dict] = {}
    dropped: dict[tuple[str, str], dict] = {}
    for policy_id, period, amount in conn.execute(
            "SELECT policy, period, sum(amount) FROM claims WHERE credit_code = ? AND substr(period, 1, 4) = ? "
            "GROUP BY policy, period ORDER BY policy, period", [credit_code, str(year)]).fetchall():
        policy = policies.get(policy_id)
        reason = classify(policy, period)
        name = policy.name if policy else policy_id
        if reason:
            note = dropped.setdefault((policy_id, reason), {"policy": policy_id, "name": name, "reason": reason,
                                                            "amount": Decimal(0), "periods": 0})
        else:
            note = kept.setdefault(policy_id, {"policy": policy_id, "name": name, "basis": policy.basis,
                                               "tax_type": policy.tax_type, "kind": policy.kind or "reduction",
                                               "amount": Decimal(0), "periods": 0})
        note["amount"] += Decimal(amount)
        note["periods"] += 1
    result.lines = sorted(kept.values(), key=lambda line: (-line["amount"], line["policy"]))
    result.left_out = sorted(dropped.values(), key=lambda line: (line["policy"], line["reason"]))
    return result


def bill_for_actor(conn, *, session: Session, actor: Actor, credit_code: str, year: int) -> Bill:
    """A taxpayer sees their own bill; a service officer sees the bills of the taxpayers in their region."""
    if "taxpayer" in getattr(actor, "role_set", ()):
        authorize(actor, "push.inbox")
        if actor.taxpayer_code != credit_code:
            raise PushNotFound(f"没有信用代码为 {credit_code} 的账单")
    else:
        authorize(actor, "push.bill.view")
        region = matching.region_prefix(actor.unit.code) if hasattr(actor, "unit") else ""
        if region and not _in_region(conn, credit_code, region):
            raise PushNotFound(f"没有信用代码为 {credit_code} 的账单")
    return bill(conn, session, credit_code=credit_code, year=year)


def _in_region(conn, credit_code: str, region: str) -> bool:
    rows = conn.execute("SELECT region FROM registry WHERE credit_code = ?", [credit_code]).fetchall()
    return bool(rows) and rows[0][0].startswith(region)


def push_bills(conn, *, session: Session, actor: Actor, unit_code: str, year: int,
               now: datetime | None = None) -> Campaign:
    """Send every small or micro enterprise (size class) and individual business of the unit's region with a
    counted claim its bill, to the legal representative and the finance head in the message centre; once per
    unit and year."""
    check_year(year)
    unit = find_unit(session=session, code=unit_code)
    authorize(actor, "push.campaign", unit)
    name = f"{year}年度红利账单"
    if session.scalar(select(Campaign.id).where(Campaign.kind == "bill", Campaign.unit_id == unit.id,
                                                Campaign.year == year)):
        raise PushInvalid(f"{unit.name}的{name}已经推送过")
    now = now or utcnow()
    campaign = Campaign(name=name, kind="bill", unit_id=unit.id, policies=[], channels=["inapp"], year=year, month=12,
                        created_by=actor.username)
    session.add(campaign)
    session.flush()
    region = matching.region_prefix(unit.code)
    where = f"AND substr(r.region, 1, {len(region)}) = $region" if region else ""
    params = {"year": str(year), **({"region": region} if region else {})}
    # The (policy, period) pairs of the year that count, each with its policy's kind: the same rule as one
    # taxpayer's bill (classify), so a message never states a total its bill does not show.
    policies = {p.id: p for p in session.scalars(select(Policy))}
    counted = [(policy_id, period, policies[policy_id].kind or "reduction") for policy_id, period in conn.execute(
        "SELECT DISTINCT policy, period FROM claims WHERE substr(period, 1, 4) = $year ORDER BY ALL",
        {"year": str(year)}).fetchall() if classify(policies.get(policy_id), period) is None]
    rows = []
    if counted:
        values = ", ".join(f"($p{i}, $q{i}, $k{i})" for i in range(len(counted)))
        for i, (policy_id, period, kind) in enumerate(counted):
            params.update({f"p{i}": policy_id, f"q{i}": period, f"k{i}": kind})
        rows = conn.execute(f"""
            WITH counted(policy, period, kind) AS (VALUES {values})
            SELECT r.credit_code, r.name, k.role, k.person,
                   coalesce(sum(c.amount) FILTER (WHERE v.kind = 'reduction'), 0),
                   count(DISTINCT c.policy) FILTER (WHERE v.kind = 'reduction'),
                   coalesce(sum(c.amount) FILTER (WHERE v.kind = 'deferral'), 0),
                   coalesce(sum(c.amount) FILTER (WHERE v.kind = 'timing'), 0)
            FROM registry r JOIN claims c ON c.credit_code = r.credit_code AND substr(c.period, 1, 4) = $year
            JOIN counted v ON v.policy = c.policy AND v.period = c.period
            JOIN contacts k ON k.credit_code = r.credit_code AND k.channel = 'inapp' AND NOT k.opted_out
                           AND k.role IN ('法定代表人', '财务负责人')
            WHERE {SMALL} {where}
            GROUP BY r.credit_code, r.name, k.role, k.person ORDER BY r.credit_code, k.role""", params).fetchall()
    messages = [dict(campaign_id=campaign.id, stage="bill", policy_id="", credit_code=code, taxpayer_name=tp_name,
                     role=role, person=person, channel="inapp", address="", created_at=now,
                     title=f"{tp_name}{year}年度红利账单",
                     body=_message(crypto.decrypt(person), tp_name, year, amount, count, deferred, timing),
                     link=f"/push/bill?year={year}")
                for code, tp_name, role, person, amount, count, deferred, timing in rows]
    for i in range(0, len(messages), 5000):
        session.execute(PushMessage.__table__.insert(), messages[i:i + 5000])
    session.add(CampaignStage(campaign_id=campaign.id, stage="bill", due=now.date(), planned_at=now,
                              audience=len({m["credit_code"] for m in messages}), messages=len(messages)))
    audit.record(session, actor=actor, action="push.bills.sent", object_type="campaign", object_id=campaign.id,
                 after={"unit": unit.code, "year": year, "messages": len(messages)})
    return campaign


def _message(person: str, tp_name: str, year: int, amount, count: int, deferred, timing) -> str:
    text = f"{person}您好:{tp_name}{year}年共享受 {count} 项税费减免,减免税费合计 {amount:,.2f} 元"
    if deferred:
        text += f";另延缓缴纳税费 {deferred:,.2f} 元,这部分不是减免,到期仍需缴纳"
    if timing:
        text += f";提前税前扣除使 {timing:,.2f} 元税款推迟到以后年度缴纳,不减少应纳税总额"
    return text + "。点击查看各项政策的明细。"


def render_html(b: Bill, *, inline_css: bool = False) -> str:
    """The bill as one page; with `inline_css` self-contained, for saving and for the PDF."""
    return documents.render("push/bill_doc.html", inline_css=inline_css, b=b)


def render_pdf(b: Bill) -> bytes:
    return documents.html_to_pdf(render_html(b, inline_css=True))
