"""A survey sent to a list of units (service halls, 12366 centres, grassroots bureaus of a subtree) rather than to a
sample of taxpayers: one one-time invitation per unit posted to its inbox (and so sent on through its channels by
the outbox after commit), reminders to the units that have not answered, and each unit's response on the analysis.

The list comes from the unit picker, typed codes or an imported file of codes; it is all of it or none of it:
every code must name a unit of the official's subtree, else nothing is sent and each fault is named (by its row,
for a file)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from chunfeng.db import utcnow
from chunfeng.errors import ValidationFailed
from chunfeng.inbox import services as inbox
from chunfeng.org import audit
from chunfeng.org.access import Actor, refusal
from chunfeng.org.models import Unit
from chunfeng.survey import policy
from chunfeng.survey.errors import SurveyInvalid
from chunfeng.survey.models import Survey, SurveyInvitation
from chunfeng.survey.services import MAX_INVITATIONS, _digest, get_survey
from chunfeng.survey.unit_models import SurveyUnitInvitation
from chunfeng.tabular import TableLimits, listed_problems, read_table

COLUMNS = {"code": ("单位代码", "code", "unit_code", "代码"), "name": ("单位名称", "name")}
MAX_UNIT_REMINDERS = 3  # a unit is reminded at most this often: after that it is a matter for a phone call


def parse_unit_list(path: Path, *, limits: TableLimits) -> list[tuple[int, str]]:
    """(row number, unit code) of a spreadsheet or CSV with a 单位代码 column; a row without a code or with a
    code that cannot be one is named, and nothing is returned unless every row is right."""
    rows = read_table(Path(path), COLUMNS, required={"code"}, limits=limits)
    problems, found = [], []
    for row in rows:
        code = row.values.get("code", "").strip()
        if not code:
            problems.append(f"第 {row.number} 行 单位代码:不能为空")
        elif len(code) > 32 or not code.replace("-", "").replace("_", "").isalnum():
            problems.append(f"第 {row.number} 行 单位代码:“{code[:40]}”不是单位代码")
        else:
            found.append((row.number, code))
    if not rows:
        problems.append("没有任何单位(第 1 行为表头,单位从第 2 行起)")
    if problems:
        raise ValidationFailed(f"{Path(path).name}:单位名单有 {len(problems)} 处问题,未发出任何邀请",
                               listed_problems(problems, limits))
    return found


def _link(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/s/{token}"


def invite_units(*, session: Session, actor: Actor, survey_id: int, unit_codes: list[str], base_url: str,
                 rows: dict[str, int] | None = None) -> list[SurveyUnitInvitation]:
    """One one-time invitation per unit of the list, each posted to the unit's inbox and so sent on through its
    channels by the outbox after commit. All units must exist and lie in the actor's subtree, or none is invited
    (`rows`: each code's row in an imported file, to name it). A unit already invited to this version is not
    invited again (a reminder reaches it instead)."""
    survey = get_survey(session=session, actor=actor, survey_id=survey_id)
    if refused := policy.invite_refusal(actor, survey):
        raise refused
    codes = list(dict.fromkeys(code.strip() for code in unit_codes if code.strip()))
    if not codes or len(codes) > MAX_INVITATIONS:
        raise SurveyInvalid(f"请选择或填写 1 到 {MAX_INVITATIONS} 个单位", field="units")
    where = (lambda code: f"第 {rows[code]} 行 “{code}”") if rows else (lambda code: f"“{code}”")
    units = {u.code: u for u in session.scalars(select(Unit).where(Unit.code.in_(codes)))}
    if missing := [c for c in codes if c not in units]:
        raise SurveyInvalid(f"没有这些代码的单位:{'、'.join(where(c) for c in missing[:20])};未发出任何邀请",
                            field="units")
    for code in codes:
        if refused := refusal(actor, "survey.manage", units[code]):
            # A unit outside the official's subtree, typed or imported: named by its row, never by its name.
            refused.field = "units"
            if rows:
                refused.args = (f"{where(code)}:{refused}",)
            raise refused
    already = set(session.scalars(select(SurveyUnitInvitation.unit_id).where(
        SurveyUnitInvitation.survey_id == survey.id, SurveyUnitInvitation.unit_id.in_([u.id for u in units.values()]))))
    now, made = utcnow(), []
    for code in codes:
        unit = units[code]
        if unit.id in already:
            continue
        token = secrets.token_urlsafe(24)
        invitation = SurveyInvitation(survey_id=survey.id, token_digest=_digest(token),
                                      label=f"{unit.code} {unit.name}"[:200], created_by=actor.username, created_at=now)
        session.add(invitation)
        session.flush()
        sent = SurveyUnitInvitation(survey_id=survey.id, unit_id=unit.id, invitation_id=invitation.id, token=token,
                                    reminders=0, created_at=now, last_sent_at=now)
        session.add(sent)
        _post(session, survey, unit, token, base_url, actor.username, reminder=False)
        made.append(sent)
    session.flush()
    audit.record(session, actor=actor, action="survey.invitations.sent", object_type="survey", object_id=survey.id,
                 after={"count": len(made), "already": len(codes) - len(made), "unit": codes[:50]})
    return made


def _post(session: Session, survey: Survey, unit: Unit, token: str, base_url: str, sender: str, *,
          reminder: bool) -> None:
    lead = "提醒:贵单位尚未填写问卷。" if reminder else ""
    inbox.post(session, unit=unit, kind="survey", title=f"{'问卷提醒' if reminder else '问卷邀请'}:{survey.title}",
               link=f"/s/{token}", sender=sender,
               body=f"{lead}{survey.unit.name}邀请贵单位填写问卷“{survey.title}”:{_link(base_url, token)}\n"
                    "此链接专供贵单位使用,只能提交一次。")


@dataclass
class UnitFigure:
    unit: Unit
    invited_at: datetime
    answered_at: datetime | None
    reminders: int


@dataclass
class UnitRollup:
    """The units invited under one parent unit: how many, how many answered."""
    parent: str
    invited: int
    answered: int

    @property
    def response_rate(self) -> float:
        return 100 * self.answered / self.invited if self.invited else 0.0


def figures(session: Session, survey_id: int) -> list[UnitFigure]:
    """Each invited unit, whether and when it answered, and the reminders it had, in unit order."""
    rows = session.execute(
        select(SurveyUnitInvitation, SurveyInvitation.answered_at, Unit)
        .join(SurveyInvitation, SurveyInvitation.id == SurveyUnitInvitation.invitation_id)
        .join(Unit, Unit.id == SurveyUnitInvitation.unit_id)
        .where(SurveyUnitInvitation.survey_id == survey_id).order_by(Unit.path)).all()
    return [UnitFigure(unit, sent.created_at, answered_at, sent.reminders) for sent, answered_at, unit in rows]


def rollup(session: Session, units: list[UnitFigure]) -> list[UnitRollup]:
    """The response rate per parent unit (e.g. a municipal bureau's halls), largest first."""
    parents = {u.unit.parent_id for u in units if u.unit.parent_id}
    names = dict(session.execute(select(Unit.id, Unit.name).where(Unit.id.in_(parents))).all()) if parents else {}
    groups: dict[str, UnitRollup] = {}
    for u in units:
        name = names.get(u.unit.parent_id, u.unit.name)
        group = groups.setdefault(name, UnitRollup(name, 0, 0))
        group.invited += 1
        group.answered += u.answered_at is not None
    return sorted(groups.values(), key=lambda g: (-g.invited, g.parent))


def remind_units(*, session: Session, actor: Actor, survey_id: int, base_url: str) -> int:
    """A reminder through the inbox to each invited unit that has not answered, with its own link again; a unit
    reminded MAX_UNIT_REMINDERS times is left out. Returns how many were reminded."""
    survey = get_survey(session=session, actor=actor, survey_id=survey_id)
    if refused := policy.invite_refusal(actor, survey):
        raise refused
    rows = session.execute(
        select(SurveyUnitInvitation, Unit)
        .join(SurveyInvitation, SurveyInvitation.id == SurveyUnitInvitation.invitation_id)
        .join(Unit, Unit.id == SurveyUnitInvitation.unit_id)
        .where(SurveyUnitInvitation.survey_id == survey.id, SurveyInvitation.answered_at.is_(None),
               SurveyUnitInvitation.reminders < MAX_UNIT_REMINDERS).order_by(Unit.path)).all()
    if not rows:
        raise SurveyInvalid(f"没有需要提醒的单位(都已作答,或已提醒 {MAX_UNIT_REMINDERS} 次)")
    now = utcnow()
    for sent, unit in rows:
        _post(session, survey, unit, sent.token, base_url, actor.username, reminder=True)
        sent.reminders += 1
        sent.last_sent_at = now
    audit.record(session, actor=actor, action="survey.units.reminded", object_type="survey", object_id=survey.id,
                 after={"count": len(rows), "unit": [unit.code for _, unit in rows][:50]})
    return len(rows)
