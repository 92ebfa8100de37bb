"""The inbox's periodic job: send the outbox deliveries of unit messages to their external channels."""

from __future__ import annotations

from datetime import datetime

from chunfeng import jobs
from chunfeng.db import Database
from chunfeng.inbox.services import deliver_pending
from chunfeng.settings import Settings


def deliver(db: Database, settings: Settings, now: datetime) -> dict:
    run = deliver_pending(db, settings=settings)
    return {"发送": run.sent, "失败(将重试)": run.failed}


jobs.register("inbox.deliveries", every=jobs.delivery_period, run=deliver, title="站内消息外部通道发送")
