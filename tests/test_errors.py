"""One family of domain errors: every domain's errors carry their status, and the CLI and the web map them once."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from chunfeng import errors
from chunfeng.appeals.errors import AppealInvalid, AppealNotFound
from chunfeng.backup import BackupError
from chunfeng.bounds import OutOfBounds
from chunfeng.calendar.errors import CalendarInvalid, CalendarNotCovered, NoticeInvalid
from chunfeng.channels import ChannelRefused
from chunfeng.consult.errors import ConsultConflict, ConsultInvalid, ConsultNotFound
from chunfeng.crypto import DecryptionFailed
from chunfeng.db import NulInText
from chunfeng.ledger.errors import LedgerInvalid, LedgerNotFound, StaleReport
from chunfeng.org import errors as org_errors
from chunfeng.org.models import AuditEntry
from chunfeng.plan.errors import NoticeError, PlanExists, PlanNotFound
from chunfeng.push.errors import EngineFailed, ExtractInvalid, PushInvalid, PushNotFound
from chunfeng.push.rules import RuleError
from chunfeng.tabular import TableError
from tests.org.test_cli import run


@pytest.mark.parametrize("error, status", [
    (AppealNotFound("x"), 404), (AppealInvalid("x"), 400),
    (CalendarNotCovered(2031), 400), (CalendarInvalid("x"), 400), (NoticeInvalid("x"), 400),
    (ConsultNotFound("x"), 404), (ConsultInvalid("x"), 400), (ConsultConflict("x"), 409),
    (LedgerNotFound("x"), 404), (LedgerInvalid("x"), 400), (StaleReport("x"), 409),
    (org_errors.NotFound("x"), 404), (org_errors.Forbidden("x"), 403), (org_errors.ValidationFailed("x"), 400),
    (org_errors.AuthenticationFailed("x"), 401),
    (PlanNotFound("x"), 404), (NoticeError("x"), 400), (PlanExists("x"), 400),
    (PushNotFound("x"), 404), (PushInvalid("x"), 400), (EngineFailed("x"), 400), (ExtractInvalid(["x"]), 400),
    (RuleError("x", 0, "a"), 400), (TableError("x"), 400), (OutOfBounds("x"), 400), (NulInText("x"), 400),
    (ChannelRefused("x"), 400), (BackupError("x"), 400), (DecryptionFailed("x"), 500),
])
def test_every_domain_error_is_one_family_with_its_status(error, status):
    assert isinstance(error, errors.ChunfengError) and error.status == status and error.title


def test_kinds_callers_catch_still_hold():
    # The base layer's refusals are the org's ValidationFailed (pages and forms catch that name) ...
    assert issubclass(OutOfBounds, org_errors.ValidationFailed) and issubclass(NulInText, org_errors.ValidationFailed)
    # ... and the base layer's value errors are still ValueErrors for the parsers that catch those.
    assert issubclass(TableError, ValueError) and issubclass(RuleError, ValueError)
    assert issubclass(ChannelRefused, ValueError)
    assert RuleError("未知字段", 2, "ab c").for_terminal().endswith("ab c\n  ^")


def test_a_command_refused_anywhere_is_a_message_and_audited(db, make_user):
    """`push policies` mapped no domain error: a user without the right got a Python traceback and no audit entry."""
    make_user("auditor", "110000", ["audit_admin"])
    result = run(db, "--as", "auditor", "push", "policies")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "错误" in result.stderr and "无权查看优惠政策" in result.stderr
    with db.read() as s:
        denied = s.scalars(select(AuditEntry).where(AuditEntry.action == "access.denied")).all()
    assert [e.object_type for e in denied] == ["command"] and denied[0].outcome == "denied"
