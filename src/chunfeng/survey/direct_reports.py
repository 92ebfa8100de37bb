"""Direct reports (直联直报, measure 19): on every new tax and fee policy, the contact units — the 100 service-hall
contact points, 12366, grassroots bureaus — report first-hand what they saw.

An office sends a report form on one policy (from the push catalogue, or a named new policy) to units of its
subtree, due a number of working days later on the holiday calendar (a year the calendar does not hold is refused,
never guessed); each unit is told in its inbox and reminded there (by the periodic job a working day before the
due date and once when it has passed, or by the office at any time); each unit's report is written by that unit
alone; the roll-up shows who has not reported, who reported late, and the themes of what came back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from chunfeng import jobs
from chunfeng.db import utcnow
from chunfeng.errors import Forbidden
from chunfeng.inbox import services as inbox
from chunfeng.org import audit
from chunfeng.org.access import Actor, SystemActor, authorize, refusal, subtree_filter
from chunfeng.org.models import Unit, User
from chunfeng.org.services import find_unit
from chunfeng.paging import Page, paginate
from chunfeng.push.models import Policy
from chunfeng.survey import themes
from chunfeng.survey.direct_models import REPORT_FIELDS, DirectReport, DirectReportForm
from chunfeng.survey.errors import SurveyInvalid, SurveyNotFound
from chunfeng.workdays import CalendarNotCovered, configured_calendar
from chunfeng.xlsx import write_sheets

MAX_UNITS, MAX_WORKING_DAYS, MAX_FIELD = 500, 60, 5000
INBOX_KIND = "direct_report"


def _issuing_unit(session: Session, actor: Actor) -> Unit:
    return find_unit(session=session, code=actor.unit_code) if isinstance(actor, SystemActor) else actor.unit


def create_form(*, session: Session, actor: Actor, unit_codes: list[str], working_days: int, policy_id: str = "",
                policy_name: str = "", title: str = "", instructions: str = "",
                issued_on: date | None = None) -> DirectReportForm:
    """A report form sent to each listed unit's inbox. All units must exist and lie in the actor's subtree, the
    policy must be in force on the day it is sent, and the due date must fall in a year the calendar holds; else
    nothing is sent."""
    unit = _issuing_unit(session, actor)
    authorize(actor, "survey.manage", unit)
    issued_on = issued_on or date.today()
    policy = None
    if policy_id.strip():
        policy = session.get(Policy, policy_id.strip())
        if policy is None:
            raise SurveyNotFound(f"政策目录中没有编号为“{policy_id.strip()[:40]}”的政策")
        if policy.effective_until is not None and policy.effective_until < issued_on:
            raise SurveyInvalid(f"政策“{policy.name}”已于 {policy.effective_until} 失效,不再是新出台的政策;"
                                "如要跟踪其后续政策,请选择或填写新政策")
        policy_name = policy.name
    policy_name = policy_name.strip()
    if not policy_name or len(policy_name) > 200:
        raise SurveyInvalid("政策:请从政策目录中选择,或填写新出台政策的名称(不超过 200 字)")
    title = title.strip() or f"{policy_name}落实情况直联直报"
    if len(title) > 200 or len(instructions) > MAX_FIELD:
        raise SurveyInvalid(f"标题不超过 200 字,填报说明不超过 {MAX_FIELD} 字")
    if not 1 <= working_days <= MAX_WORKING_DAYS:
        raise SurveyInvalid(f"报送时限:请填写 1 到 {MAX_WORKING_DAYS} 个工作日")
    codes = list(dict.fromkeys(c.strip() for c in unit_codes if c.strip()))
    if not codes or len(codes) > MAX_UNITS:
        raise SurveyInvalid(f"报送单位:请选择 1 到 {MAX_UNITS} 个单位")
    units = {u.code: u for u in session.scalars(select(Unit).where(Unit.code.in_(codes)))}
    if missing := [c for c in codes if c not in units]:
        raise SurveyInvalid(f"报送单位:没有这些代码的单位:{'、'.join(c[:20] for c in missing[:20])};未发出任何直报表")
    for code in codes:
        authorize(actor, "survey.manage", units[code])
    # The calendar's own refusal (CalendarNotCovered, naming the year) when the working days run into a year it
    # does not hold: a due date is never a weekend-only guess.
    due_on = configured_calendar(session).add_working_days(issued_on, working_days)
    form = DirectReportForm(unit_id=unit.id, policy_id=policy.id if policy else None, policy_name=policy_name,
                            title=title, instructions=instructions.strip(), issued_on=issued_on,
                            working_days=working_days, due_on=due_on, created_by=actor.username)
    session.add(form)
    session.flush()
    for code in codes:
        session.add(DirectReport(form_id=form.id, unit_id=units[code].id))
        inbox.post(session, unit=units[code], kind=INBOX_KIND, title=f"直联直报:{title}",
                   link=f"/direct-reports/{form.id}/report", sender=actor.username,
                   body=f"{unit.name}请贵单位就“{policy_name}”报送执行中遇到的问题、纳税人缴费人的反映和意见建议,"
                        f"请于 {due_on} 前报送({working_days} 个工作日)。")
    session.flush()
    audit.record(session, actor=actor, action="survey.direct.form.created", object_type="survey_direct_form",
                 object_id=form.id, after={"title": title, "policy": policy.id if policy else policy_name,
                                           "due_on": str(due_on), "units": codes[:50], "count": len(codes)})
    return form


def policy_choices(session: Session, today: date | None = None) -> list[Policy]:
    """The catalogue's policies in force today: what a new report form may be about."""
    today = today or date.today()
    return list(session.scalars(select(Policy).where(Policy.effective_from <= today, or_(
        Policy.effective_until.is_(None), Policy.effective_until >= today)).order_by(Policy.effective_from.desc())))


def get_form(*, session: Session, actor: Actor, form_id: int) -> DirectReportForm:
    """A form, for those who may see the roll-up: the officials of the sending unit's subtree and above."""
    form = session.get(DirectReportForm, form_id)
    if form is None:
        raise SurveyNotFound(f"没有编号为 {form_id} 的直报表")
    authorize(actor, "survey.view", form.unit)
    return form


def own_report(*, session: Session, actor: Actor, form_id: int) -> tuple[DirectReportForm, DirectReport]:
    """The actor's own unit's report on a form. Only that unit writes it: not the unit above, not the sender."""
    form = session.get(DirectReportForm, form_id)
    if form is None:
        raise SurveyNotFound(f"没有编号为 {form_id} 的直报表")
    if not isinstance(actor, User):
        raise Forbidden("直报由报送单位的人员填写")
    authorize(actor, "survey.report", actor.unit)
    report = session.scalar(select(DirectReport).where(DirectReport.form_id == form.id,
                                                       DirectReport.unit_id == actor.unit.id))
    if report is None:
        raise Forbidden(f"“{actor.unit.name}”不在这份直报表的报送单位之列;每个单位只能填写本单位的直报")
    return form, report


def submit(*, session: Session, actor: Actor, form_id: int, fields: dict[str, str]) -> DirectReport:
    """Save the unit's report. The first submission's time decides whether it was on time; a later correction
    changes the text (the audit log keeps each version), not that time."""
    form, report = own_report(session=session, actor=actor, form_id=form_id)
    values = {k: (fields.get(k) or "").strip() for k in REPORT_FIELDS}
    if too_long := [REPORT_FIELDS[k] for k, v in values.items() if len(v) > MAX_FIELD]:
        raise SurveyInvalid(f"{'、'.join(too_long)}:每项不超过 {MAX_FIELD} 字")
    if not any(values.values()):
        raise SurveyInvalid("请至少填写一项(遇到的问题、纳税人缴费人的反映、意见建议或其他情况)")
    before = {k: getattr(report, k)[:200] for k in REPORT_FIELDS} if report.state == "submitted" else None
    for k, v in values.items():
        setattr(report, k, v)
    if report.state != "submitted":
        report.state, report.submitted_at = "submitted", utcnow()
    report.submitted_by = actor.username
    audit.record(session, actor=actor, action="survey.direct.report.submitted", object_type="survey_direct_report",
                 object_id=report.id, before=before, after={k: v[:200] for k, v in values.items()} | {"form": form.id})
    return report


def _remind(session: Session, form: DirectReportForm, report: DirectReport, today: date, note: str,
            sender: str) -> None:
    report.reminders += 1
    report.reminded_on = today
    inbox.post(session, unit=session.get(Unit, report.unit_id), kind=INBOX_KIND, title=f"催报:{form.title}",
               link=f"/direct-reports/{form.id}/report", sender=sender,
               body=f"“{form.policy_name}”的直联直报{note},请尽快报送。")


def _due_note(form: DirectReportForm, today: date) -> str:
    return f"已于 {form.due_on} 到期" if form.due_on < today else f"将于 {form.due_on} 到期"


def remind(*, session: Session, actor: Actor, form_id: int, unit_code: str = "", today: date | None = None) -> int:
    """The sender reminds the units that have not reported (or one of them) through their inboxes."""
    form = get_form(session=session, actor=actor, form_id=form_id)
    authorize(actor, "survey.manage", form.unit)
    today = today or date.today()
    where = [DirectReport.form_id == form.id, DirectReport.state == "pending"]
    if unit_code.strip():
        where.append(DirectReport.unit_id == find_unit(session=session, code=unit_code.strip()).id)
    pending = list(session.scalars(select(DirectReport).where(*where).order_by(DirectReport.id)))
    if not pending:
        raise SurveyInvalid("没有需要催报的单位:都已报送")
    for report in pending:
        _remind(session, form, report, today, _due_note(form, today), actor.username)
    audit.record(session, actor=actor, action="survey.direct.reminded", object_type="survey_direct_form",
                 object_id=form.id, after={"count": len(pending), "unit": unit_code.strip() or "all"})
    return len(pending)


@dataclass
class ScanResult:
    reminded: int = 0
    calendar_problem: str = ""


def scan(*, session: Session, today: date | None = None) -> ScanResult:
    """The periodic reminders: a pending unit is reminded once on the working day before its due date (or on the
    day itself, for a report given a single working day) and once after the date has passed."""
    today = today or date.today()
    result = ScanResult()
    try:
        tomorrow = configured_calendar(session).add_working_days(today, 1)
    except CalendarNotCovered as exc:
        tomorrow, result.calendar_problem = today, str(exc)  # the overdue ones are still reminded
    rows = session.execute(select(DirectReport, DirectReportForm).join(DirectReportForm)
                           .where(DirectReport.state == "pending", DirectReportForm.due_on <= tomorrow)
                           .order_by(DirectReport.id)).all()
    for report, form in rows:
        # Before the date: only a unit nobody has reminded yet (an office's own reminder counts); after it: once more.
        due = report.reminded_on is None or (form.due_on < today and report.reminded_on <= form.due_on)
        if due:
            _remind(session, form, report, today, _due_note(form, today), "system")
            result.reminded += 1
    if result.reminded:
        audit.record(session, actor=SystemActor(), action="survey.direct.reminded", object_type="survey_direct_form",
                     object_id="scan", after={"count": result.reminded, "day": str(today)})
    return result


# --- the roll-up --------------------------------------------------------------------------------------------

@dataclass
class Row:
    report: DirectReport
    unit_code: str
    unit_name: str
    submitted_on: date | None  # the local day of the first submission
    due_on: date

    @property
    def late(self) -> bool:
        return self.submitted_on is not None and self.submitted_on > self.due_on


@dataclass
class Rollup:
    form: DirectReportForm
    today: date
    rows: list[Row]
    themes: list = field(default_factory=list)  # appeals.analysis.Cluster: kinds count the report fields

    @property
    def submitted(self) -> list[Row]:
        return [r for r in self.rows if r.report.state == "submitted"]

    @property
    def pending(self) -> list[Row]:
        return [r for r in self.rows if r.report.state == "pending"]

    @property
    def late(self) -> list[Row]:
        return [r for r in self.rows if r.late]

    @property
    def overdue(self) -> bool:
        return self.form.due_on < self.today


def rollup(*, session: Session, actor: Actor, form_id: int, today: date | None = None) -> Rollup:
    form = get_form(session=session, actor=actor, form_id=form_id)
    today = today or date.today()
    found = session.execute(select(DirectReport, Unit.code, Unit.name).join(Unit, DirectReport.unit_id == Unit.id)
                            .where(DirectReport.form_id == form.id).order_by(Unit.code)).all()
    rows = [Row(r, code, name, jobs.local_day(r.submitted_at) if r.submitted_at else None, form.due_on)
            for r, code, name in found]
    items = [themes.Item(r.report.id, kind, getattr(r.report, kind), []) for r in rows
             if r.report.state == "submitted" for kind in REPORT_FIELDS]
    return Rollup(form, today, rows, themes.clusters(items, limit=30))


def list_forms(*, session: Session, actor: Actor, page: int = 1, per_page: int = 30) -> Page[DirectReportForm]:
    """The forms sent by the actor's subtree, newest first."""
    authorize(actor, "survey.view")
    return paginate(session, select(DirectReportForm).join(Unit, DirectReportForm.unit_id == Unit.id)
                    .where(subtree_filter(actor)).order_by(DirectReportForm.id.desc()), page, per_page)


def my_reports(*, session: Session, actor: Actor) -> list[tuple[DirectReportForm, DirectReport]]:
    """The reports the actor's own unit is asked for, those still to write first."""
    if not isinstance(actor, User) or refusal(actor, "survey.report", actor.unit):
        return []
    rows = session.execute(select(DirectReportForm, DirectReport).join(DirectReport)
                           .where(DirectReport.unit_id == actor.unit.id)
                           .order_by(DirectReport.state.desc(), DirectReportForm.due_on, DirectReportForm.id)
                           .limit(200)).all()
    return [(f, r) for f, r in rows]


def export_xlsx(*, session: Session, actor: Actor, r: Rollup, path: Path) -> Path:
    """The roll-up as a workbook: every unit's state and report, and the themes; recorded in the audit log."""
    audit.record(session, actor=actor, action="survey.direct.exported", object_type="survey_direct_form",
                 object_id=r.form.id, after={"units": len(r.rows)})
    f = r.form
    summary = [("直报表", f.title), ("政策", f.policy_name), ("发出日期", str(f.issued_on)),
               ("报送时限", f"{f.working_days} 个工作日,{f.due_on} 前"), ("报送单位", len(r.rows)),
               ("已报送", len(r.submitted)), ("其中逾期报送", len(r.late)), ("未报送", len(r.pending))]

    def state(row: Row) -> str:
        if row.report.state == "submitted":
            return "逾期报送" if row.late else "按时报送"
        return "逾期未报" if r.overdue else "未报送"

    reports = [[row.unit_code, row.unit_name, state(row), str(row.submitted_on or ""), row.report.reminders,
                *(getattr(row.report, k) for k in REPORT_FIELDS)] for row in r.rows]
    clustered = [[i, c.size, c.representative, "、".join(c.terms),
                  "、".join(f"{REPORT_FIELDS.get(k, k)} {n}" for k, n in c.kinds.items())]
                 for i, c in enumerate(r.themes, start=1)]
    return write_sheets(path, [
        ("概况", ["项目", "内容"], [16, 60], summary),
        ("各单位报送", ["单位代码", "单位", "状态", "报送日期", "催报次数", *REPORT_FIELDS.values()],
         [10, 30, 10, 12, 8, 50, 50, 50, 50], reports),
        ("主题", ["序号", "条数", "代表性内容", "关键词", "出自"], [6, 8, 60, 30, 30], clustered),
    ])
