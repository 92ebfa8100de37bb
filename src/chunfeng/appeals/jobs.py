"""Appeals' periodic jobs: reminders and escalation along the time limits, and erasing expired contact details."""

from __future__ import annotations

from datetime import datetime

from chunfeng import jobs
from chunfeng.appeals import services
from chunfeng.db import Database
from chunfeng.settings import Settings


def watch_limits(db: Database, settings: Settings, now: datetime) -> dict:
    with db.write() as session:
        result = services.scan(session=session, today=jobs.local_day(now))
    if result.calendar_problem:  # what could be done is committed; the gap is shown as this run's failure
        raise jobs.JobFailed(f"临期提醒 {result.reminded} 件、超期升级 {result.escalated} 件;"
                             f"但次一工作日无法确定,只提醒了今天到期的:{result.calendar_problem}")
    return {"临期提醒": result.reminded, "超期升级": result.escalated}


def erase_contacts(db: Database, settings: Settings, now: datetime) -> dict:
    with db.write() as session:
        erased = services.erase_expired_contacts(session=session, today=jobs.local_day(now),
                                                 days=settings.appeal_retention_days)
    return {"删除到期个人信息": erased}


jobs.register("appeals.limits", every=jobs.scan_period, run=watch_limits, title="诉求办理时限提醒与升级")
jobs.register("appeals.retention", every=jobs.scan_period, run=erase_contacts, title="到期个人信息删除")
