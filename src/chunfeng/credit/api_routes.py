"""The credit JSON API (read-only), on the pages' permissions model: the public list of major violators for
anyone, anonymously; a taxpayer's ratings, the repair applications and the risk tiers for a signed-in official
of the unit's subtree (credit.view), or for the taxpayer the account is bound to (credit.self). The same services
as the pages answer, so the same rules refuse: whoever may not see a record is told there is none (404); a role
without the permission is refused (403, audited as denied); no session is 401.

Signed in means the session cookie of the login form, as every signed-in route (GET only: no CSRF token needed).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from chunfeng.credit import policy, repair, risk, services
from chunfeng.credit.models import REPAIR_PATHS, REPAIR_STATES, RISK_TIERS, CreditRating, CreditRepair, CreditRisk, Violator
from chunfeng.credit.routes import PER_PAGE, _today
from chunfeng.paging import Page, clamp_page
from chunfeng.web.contract import API_ERRORS, ApiError, Id, PageNo
from chunfeng.web.deps import CurrentUser, SessionDep, require

router = APIRouter(tags=["credit"])
PerPage = Annotated[int, Query(ge=1, le=200)]
SIGNED_IN_ERRORS: dict[int | str, dict] = {
    **API_ERRORS, 401: {"model": ApiError, "description": "请先登录"},
    403: {"model": ApiError, "description": "无权访问(角色没有这项权限,或须先修改密码、设置动态口令)"}}


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApiRating(ApiModel):
    year: int
    score: float
    level: str
    deductions: dict[str, float]
    unit: str


class ApiTaxpayer(ApiModel):
    credit_code: str
    name: str
    ratings: list[ApiRating]


class ApiViolator(ApiModel):
    name: str
    credit_code: str
    case_nature: str
    facts: str
    amount_unpaid: str
    amount_penalty: str
    published_on: date
    off_on: date


class ApiRepair(ApiModel):
    id: int
    credit_code: str
    name: str
    year: int
    path: str
    indicator: str
    points: float
    failed_on: date
    corrected_on: date
    unit: str
    state: str
    state_name: str
    applied_on: date
    due_on: date | None
    level_before: str
    score_before: float
    level_after: str | None
    score_after: float | None
    decided_at: datetime | None
    reason: str


class ApiRisk(ApiModel):
    credit_code: str
    name: str
    unit: str
    tier: str
    flag: str
    indicators: list[str]
    computed_at: datetime


class ApiPage(ApiModel):
    total: int
    page: int
    per_page: int
    pages: int


class ApiViolators(ApiModel):
    items: list[ApiViolator]
    total: int
    total_exact: bool
    per_page: int
    next: str | None
    previous: str | None


class ApiRepairs(ApiPage):
    items: list[ApiRepair]


class ApiRisks(ApiPage):
    items: list[ApiRisk]


def _utc(moment: datetime) -> str:
    """The database keeps UTC without a zone; the API says so (RFC 3339 wants an offset)."""
    return moment.replace(tzinfo=UTC).isoformat()


def _rating(r: CreditRating) -> dict:
    return {"year": r.year, "score": r.score, "level": r.level, "deductions": r.deductions or {}, "unit": r.unit.code}


def _violator(v: Violator) -> dict:
    return {"name": v.name, "credit_code": v.credit_code, "case_nature": v.case_nature, "facts": v.facts,
            "amount_unpaid": str(v.amount_unpaid), "amount_penalty": str(v.amount_penalty),
            "published_on": v.published_on.isoformat(), "off_on": v.off_on.isoformat()}


def _repair(r: CreditRepair) -> dict:
    return {"id": r.id, "credit_code": r.credit_code, "name": r.name, "year": r.year, "path": r.path,
            "indicator": r.indicator, "points": r.points, "failed_on": r.failed_on.isoformat(),
            "corrected_on": r.corrected_on.isoformat(), "unit": r.unit.code, "state": r.state,
            "state_name": REPAIR_STATES[r.state], "applied_on": r.applied_on.isoformat(),
            "due_on": r.due_on.isoformat() if r.due_on else None, "level_before": r.level_before,
            "score_before": r.score_before, "level_after": r.level_after, "score_after": r.score_after,
            "decided_at": _utc(r.decided_at) if r.decided_at else None, "reason": r.reason}


def _risk(r: CreditRisk) -> dict:
    return {"credit_code": r.credit_code, "name": r.name, "unit": r.unit.code, "tier": r.tier,
            "flag": risk.consequence(r.tier)["flag"], "indicators": list(r.indicators or []),
            "computed_at": _utc(r.computed_at)}


def _paged(result: Page, item) -> dict:
    return {"items": [item(x) for x in result.items], "total": result.total, "page": result.page,
            "per_page": result.per_page, "pages": result.pages}


@router.get("/api/credit/violators", responses={200: {"model": ApiViolators}, **API_ERRORS})
def violators(session: SessionDep, q: str = "", after: str | None = None, before: str | None = None,
              per_page: PerPage = PER_PAGE):
    """The public list of major violators today (the same entries as /credit/violators), newest first; `q`
    searches the name or the start of the credit code. Paged by keyset: pass a page's `next` as `after` for the
    following page, its `previous` as `before` for the one above it. `total` is exact when `total_exact`, else
    the list holds more than that many entries."""
    result = services.public_violators(session=session, q=q[:200], today=_today(), after=after, before=before,
                                       per_page=per_page)
    return JSONResponse({"items": [_violator(v) for v in result.items], "total": result.total,
                         "total_exact": result.total_exact, "per_page": result.per_page,
                         "next": services.format_cursor(result.next), "previous": services.format_cursor(result.previous)})


@router.get("/api/credit/taxpayers/{credit_code}", dependencies=[require("credit.view", "credit.self")], responses={
    200: {"model": ApiTaxpayer}, **SIGNED_IN_ERRORS,
    404: {"model": ApiError, "description": "没有这个纳税人的信用记录(或不在您的管辖范围内)"}})
def taxpayer(credit_code: str, session: SessionDep, user: CurrentUser):
    """A taxpayer's ratings, newest year first: an official sees the years its subtree rated; a taxpayer only its own."""
    ratings = services.taxpayer_history(session=session, actor=user, credit_code=credit_code)
    return JSONResponse({"credit_code": ratings[0].credit_code, "name": ratings[0].name,
                         "ratings": [_rating(r) for r in ratings]})


@router.get("/api/credit/repairs", dependencies=[require("credit.view", "credit.self")],
            responses={200: {"model": ApiRepairs}, **SIGNED_IN_ERRORS,
                       404: {"model": ApiError, "description": "账户没有绑定纳税人"}})
def repairs(session: SessionDep, user: CurrentUser, state: str = "", path: str = "", q: str = "",
            overdue: bool = False, page: PageNo = 1, per_page: PerPage = PER_PAGE):
    """Repair applications: an official's are those decided in its subtree, pending first and soonest due first
    (filters as the queue page: `state`, `path`, `q`, `overdue`); a taxpayer's are its own, newest first."""
    page, per_page = clamp_page(page, per_page)
    if policy.is_taxpayer(user):
        own = [r for r in repair.own_repairs(session=session, actor=user)
               if (state not in REPAIR_STATES or r.state == state) and (path not in REPAIR_PATHS or r.path == path)]
        result = Page(own[(page - 1) * per_page:page * per_page], len(own), page, per_page)
    else:
        result = repair.list_repairs(session=session, actor=user, state=state, path=path, q=q[:200], overdue=overdue,
                                     today=_today(), page=page, per_page=per_page)
    return JSONResponse(_paged(result, _repair))


@router.get("/api/credit/repairs/{repair_id}", dependencies=[require("credit.view", "credit.self")], responses={
    200: {"model": ApiRepair}, **SIGNED_IN_ERRORS,
    404: {"model": ApiError, "description": "没有这份修复申请(或不是您的、不在您的管辖范围内)"}})
def repair_status(repair_id: Id, session: SessionDep, user: CurrentUser):
    """One application, for its applicant taxpayer or an official of its units."""
    return JSONResponse(_repair(repair.get_repair(session=session, actor=user, repair_id=repair_id)))


@router.get("/api/credit/risk", dependencies=[require("credit.view")],
            responses={200: {"model": ApiRisks}, **SIGNED_IN_ERRORS})
def risks(session: SessionDep, user: CurrentUser, tier: str = "", q: str = "", page: PageNo = 1,
          per_page: PerPage = PER_PAGE):
    """The 中 and 高 risk tiers of the official's subtree (高 first), with the indicators that fired and the flag;
    `tier` is 中 or 高. A computed taxpayer that is not listed is 低 (no indicator fired): 低 is counted, not
    listed."""
    page, per_page = clamp_page(page, per_page)
    result = risk.list_risks(session=session, actor=user, tier=tier if tier in RISK_TIERS else "", q=q[:200],
                             page=page, per_page=per_page)
    return JSONResponse(_paged(result, _risk))
