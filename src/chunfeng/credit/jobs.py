"""Credit's periodic job: entries of the major-violator list come off on their date."""

from __future__ import annotations

from datetime import datetime

from chunfeng import jobs
from chunfeng.credit import services
from chunfeng.db import Database
from chunfeng.settings import Settings


def expire_violators(db: Database, settings: Settings, now: datetime) -> dict:
    with db.write() as session:
        removed = services.expire_violators(session=session, today=jobs.local_day(now))
    return {"期满撤出失信主体": removed}


jobs.register("credit.violators.expire", every=jobs.scan_period, run=expire_violators, title="重大税收违法失信主体期满撤出")
