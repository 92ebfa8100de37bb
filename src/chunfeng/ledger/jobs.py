"""The ledger's periodic jobs: the warning lights and the escalation of unanswered supervision notices."""

from __future__ import annotations

from datetime import datetime

from chunfeng import jobs
from chunfeng.db import Database
from chunfeng.ledger import supervision, warnings
from chunfeng.settings import Settings


def recompute_lights(db: Database, settings: Settings, now: datetime) -> dict:
    with db.write() as session:
        result = warnings.scan(session=session, today=jobs.local_day(now),
                               rules=warnings.WarningRules.from_settings(settings))
    return {"扫描任务": result.scanned, "变化": result.changed, "红灯": result.counts["red"],
            "黄灯": result.counts["yellow"]}


def escalate_notices(db: Database, settings: Settings, now: datetime) -> dict:
    with db.write() as session:
        escalated = supervision.escalate_overdue(session=session, today=jobs.local_day(now),
                                                 extra_days=settings.notice_escalation_days)
    return {"升级督办单": escalated}


jobs.register("ledger.warnings", every=jobs.scan_period, run=recompute_lights, title="台账预警灯")
jobs.register("ledger.escalation", every=jobs.scan_period, run=escalate_notices, title="逾期督办单升级")
