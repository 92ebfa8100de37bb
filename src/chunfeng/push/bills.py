"""The dividend bill (红利账单): what a small or micro enterprise saved in a year, per policy and in total."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session

from chunfeng import crypto
from chunfeng.db import utcnow
from chunfeng.org import audit
from chunfeng.org.access import Actor, authorize
from chunfeng.org.services import find_unit
from chunfeng.push import matching
from chunfeng.push.errors import PushInvalid, PushNotFound
from chunfeng.push.models import Campaign, CampaignStage, Policy, PushMessage

TEMPLATES = Path(__file__).parent.parent / "web" / "templates"
CSS = TEMPLATES.parent / "static" / "briefing.css"
_env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]))
SMALL = "(r.size IN ('小型', '微型') OR r.individual_business)"


@dataclass
class Bill:
    credit_code: str
    name: str
    region: str
    size: str
    year: int
    lines: list[dict] = field(default_factory=list)  # policy, name, basis, tax_type, amount, periods

    @property
    def total(self) -> Decimal:
        return sum((line["amount"] for line in self.lines), Decimal(0))


def check_year(year: int) -> None:
    if not 2000 <= year <= 2100:  # the years campaigns accept too; a larger number overflowed the column
        raise PushInvalid(f"年度应在 2000–2100 之间,而不是 {year}")


def bill(conn, session: Session, *, credit_code: str, year: int) -> Bill:
    """One taxpayer's bill; PushNotFound when the taxpayer is unknown or not a small or micro enterprise."""
    check_year(year)
    row = conn.execute(f"SELECT r.credit_code, r.name, r.region, r.size FROM registry r "
                       f"WHERE r.credit_code = ? AND {SMALL}", [credit_code]).fetchall()
    row = row[0] if row else None
    if row is None:
        raise PushNotFound(f"没有信用代码为 {credit_code} 的小型微利企业或个体工商户")
    result = Bill(*row, year=year)
    names = {p.id: p for p in session.scalars(select(Policy))}
    for policy_id, amount, periods in conn.execute(
            "SELECT policy, sum(amount), count(DISTINCT period) FROM claims WHERE credit_code = ? "
            "AND substr(period, 1, 4) = ? GROUP BY policy ORDER BY sum(amount) DESC, policy",
            [credit_code, str(year)]).fetchall():
        policy = names.get(policy_id)
        result.lines.append({"policy": policy_id, "name": policy.name if policy else policy_id,
                             "basis": policy.basis if policy else "", "tax_type": policy.tax_type if policy else "",
                             "amount": Decimal(amount), "periods": periods})
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
    """Send every small or micro enterprise of the unit's region its bill, to the legal representative and
    the finance head in the message centre; once per unit and year."""
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
    rows = conn.execute(f"""
        SELECT r.credit_code, r.name, k.role, k.person, sum(c.amount), count(DISTINCT c.policy)
        FROM registry r JOIN claims c ON c.credit_code = r.credit_code AND substr(c.period, 1, 4) = $year
        JOIN contacts k ON k.credit_code = r.credit_code AND k.channel = 'inapp' AND NOT k.opted_out
                       AND k.role IN ('法定代表人', '财务负责人')
        WHERE {SMALL} {where}
        GROUP BY r.credit_code, r.name, k.role, k.person ORDER BY r.credit_code, k.role""",
                        {"year": str(year), **({"region": region} if region else {})}).fetchall()
    messages = [dict(campaign_id=campaign.id, stage="bill", policy_id="", credit_code=code, taxpayer_name=tp_name,
                     role=role, person=person, channel="inapp", address="", state="sent", created_at=now, sent_at=now,
                     title=f"{tp_name}{year}年度红利账单",
                     body=f"{crypto.decrypt(person)}您好:{tp_name}{year}年共享受 {count} 项税费优惠,减免税费合计 {amount:,.2f} 元。"
                          f"点击查看各项政策的明细。",
                     link=f"/push/bill?year={year}")
                for code, tp_name, role, person, amount, count in rows]
    for i in range(0, len(messages), 5000):
        session.execute(PushMessage.__table__.insert(), messages[i:i + 5000])
    session.add(CampaignStage(campaign_id=campaign.id, stage="bill", due=now.date(), planned_at=now,
                              audience=len({m["credit_code"] for m in messages}), messages=len(messages)))
    audit.record(session, actor=actor, action="push.bills.sent", object_type="campaign", object_id=campaign.id,
                 after={"unit": unit.code, "year": year, "messages": len(messages)})
    return campaign


def render_html(b: Bill, *, inline_css: bool = False) -> str:
    """The bill as one page; with `inline_css` self-contained, for saving and for the PDF."""
    css = CSS.read_text(encoding="utf-8") if inline_css else None
    return _env.get_template("push/bill_doc.html").render(b=b, inline_css=css)


def render_pdf(b: Bill) -> bytes:
    import weasyprint  # imported here: it loads Pango, which only the PDF needs

    return weasyprint.HTML(string=render_html(b, inline_css=True)).write_pdf()
