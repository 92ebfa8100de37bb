"""Every domain's tables, imported in one place so Alembic and tests see the whole schema."""

from chunfeng import outbox  # noqa: F401  (the outbox's one table)
from chunfeng.appeals import models as appeals_models  # noqa: F401
from chunfeng.calendar import models as calendar_models  # noqa: F401
from chunfeng.consult import models as consult_models  # noqa: F401
from chunfeng.credit import models as credit_models  # noqa: F401
from chunfeng.db import SEEDS, Base
from chunfeng.inbox import models as inbox_models  # noqa: F401
from chunfeng.jobs import JobLease, JobRun  # noqa: F401
from chunfeng.ledger import models as ledger_models  # noqa: F401
from chunfeng.org import models as org_models  # noqa: F401
from chunfeng.plan import models as plan_models  # noqa: F401
from chunfeng.push import models as push_models  # noqa: F401
from chunfeng.ratelimit import RateState  # noqa: F401
from chunfeng.survey import direct_models as survey_direct_models  # noqa: F401
from chunfeng.survey import models as survey_models  # noqa: F401
from chunfeng.survey import sample_models  # noqa: F401
from chunfeng.survey import unit_models as survey_unit_models  # noqa: F401

__all__ = ["Base", "referenced_files"]


def _builtin_units(session) -> None:
    from chunfeng.org.services import ensure_builtin_units  # org.services imports half the domains: only when seeding

    ensure_builtin_units(session=session)


SEEDS.append(_builtin_units)


def referenced_files(session) -> set[str]:
    """The digests of every stored file a row points at: report evidence, appeal attachments and credit repair evidence. What the
    file store holds beyond these was left by a refused or rolled-back upload (see chunfeng.files.collect_orphans)."""
    from sqlalchemy import select

    return (set(session.scalars(select(ledger_models.Evidence.sha256)))
            | set(session.scalars(select(appeals_models.AppealAttachment.sha256)))
            | set(session.scalars(select(credit_models.CreditRepairEvidence.sha256))))
