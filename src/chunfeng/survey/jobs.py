"""The survey domain's periodic jobs: reminding contact units of direct reports due or overdue, and reminding
sampled taxpayers who have not answered (the push deliveries job sends them on)."""

from __future__ import annotations

from datetime import datetime

from chunfeng import jobs
from chunfeng.db import Database
from chunfeng.settings import Settings
from chunfeng.survey import direct_reports, invitations


def remind_direct_reports(db: Database, settings: Settings, now: datetime) -> dict:
    with db.write() as session:
        result = direct_reports.scan(session=session, today=jobs.local_day(now))
    if result.calendar_problem:  # the overdue ones were reminded and committed; the gap is this run's failure
        raise jobs.JobFailed(f"催报 {result.reminded} 个单位;但次一工作日无法确定,未提醒明天到期的:"
                             f"{result.calendar_problem}")
    return {"催报单位": result.reminded}


jobs.register("survey.direct_reports", every=jobs.scan_period, run=remind_direct_reports, title="直联直报催报")


def remind(db: Database, settings: Settings, now: datetime) -> dict:
    sent = invitations.run_due_reminders(db, now=now)
    return {"样本": len(sent), "提醒消息": sum(sent.values())}


jobs.register("survey.reminders", every=jobs.scan_period, run=remind, title="问卷未答提醒")
