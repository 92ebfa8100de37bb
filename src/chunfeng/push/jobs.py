"""Push's periodic jobs: send the campaign stages approved for today (`push.schedule`), and deliver the push outbox."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from chunfeng import jobs
from chunfeng.db import Database
from chunfeng.push import campaigns, schedule, store
from chunfeng.push.models import Campaign
from chunfeng.settings import Settings


def plan_due_stages(db: Database, settings: Settings, now: datetime) -> dict | str:
    store_file = Path(settings.push_store)
    if not store_file.exists():
        return "尚未导入纳税人数据,无可执行的推送阶段"
    today = jobs.local_day(now)
    with db.read() as session:
        due = {c.id for c, _ in schedule.due_stages(session, today)}
    with store.connect_store(store_file) as conn:
        run = schedule.run_due(db, conn, today=today, now=now, cap=settings.push_cap_per_week,  # each isolated
                               margin=settings.push_approval_margin)
    with db.read() as session:
        failed = session.execute(select(Campaign.id, Campaign.name, Campaign.last_error)
                                 .where(Campaign.id.in_(due), Campaign.state == "failed")).all()
    if failed:
        raise jobs.JobFailed(f"执行 {len(run.planned)} 个推送阶段;{len(failed)} 个活动失败,其余照常:" + ";".join(
            f"活动 {cid}「{name}」:{error}" for cid, name, error in failed))
    return {"执行推送阶段": len(run.planned), "对象变化暂停": len(run.held), "未批准未发送": len(run.unapproved)}


def deliver(db: Database, settings: Settings, now: datetime) -> dict:
    run = campaigns.deliver(db, settings=settings)
    return {"送达": run.sent, "失败": run.failed, "结果不明": run.uncertain}


jobs.register("push.stages", every=jobs.scan_period, run=plan_due_stages, title="推送活动阶段执行")
jobs.register("push.deliveries", every=jobs.delivery_period, run=deliver, title="推送消息发送")
