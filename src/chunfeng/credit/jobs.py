"""Credit's periodic jobs: entries of the major-violator list come off on their date; the register's levels are
published for push rules."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from chunfeng import jobs
from chunfeng.credit import evaluation, risk, services
from chunfeng.db import Database
from chunfeng.org.access import SystemActor
from chunfeng.settings import Settings


def expire_violators(db: Database, settings: Settings, now: datetime) -> dict:
    with db.write() as session:
        removed = services.expire_violators(session=session, today=jobs.local_day(now))
    return {"期满撤出失信主体": removed}


jobs.register("credit.violators.expire", every=jobs.scan_period, run=expire_violators, title="重大税收违法失信主体期满撤出")


def publish_levels(db: Database, settings: Settings, now: datetime) -> dict:
    # The levels file is rewritten after every change to the register; this catches a change whose rewrite failed.
    with db.read() as session:
        written = evaluation.publish_levels(session=session, store=Path(settings.push_store))
    return {"发布信用级别(供推送规则 credit_level)": written}


jobs.register("credit.levels.publish", every=jobs.scan_period, run=publish_levels, title="发布纳税缴费信用级别供精准推送")


def compute_risk(db: Database, settings: Settings, now: datetime) -> dict:
    if not Path(settings.push_store).exists():  # nothing imported yet: nothing to compute, not a failure
        return {"风险等级": "尚未导入纳税人数据,未计算"}
    with db.write() as session:
        counts = risk.compute(session=session, actor=SystemActor(username="worker"), store=Path(settings.push_store),
                              today=jobs.local_day(now), engine=settings.credit_risk_engine)
    return {f"{tier}风险": n for tier, n in counts.items()}


jobs.register("credit.risk.compute", every=jobs.scan_period, run=compute_risk, title="纳税人风险等级计算(措施95)")
