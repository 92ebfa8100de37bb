"""The survey's periodic job: reminders to sampled taxpayers who have not answered (the push deliveries job sends
them on)."""

from __future__ import annotations

from datetime import datetime

from chunfeng import jobs
from chunfeng.db import Database
from chunfeng.settings import Settings
from chunfeng.survey import invitations


def remind(db: Database, settings: Settings, now: datetime) -> dict:
    sent = invitations.run_due_reminders(db, now=now)
    return {"样本": len(sent), "提醒消息": sum(sent.values())}


jobs.register("survey.reminders", every=jobs.scan_period, run=remind, title="问卷未答提醒")
