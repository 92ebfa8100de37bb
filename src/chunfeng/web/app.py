"""The application factory: one app per database and settings, routers from each domain."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from chunfeng import __version__, runtime
from chunfeng.appeals import services as appeals
from chunfeng.appeals.errors import AppealError, AppealNotFound
from chunfeng.appeals.routes import router as appeals_router
from chunfeng.calendar.errors import CalendarError
from chunfeng.calendar.routes import router as calendar_router
from chunfeng.channels import ChannelRules
from chunfeng.consult.errors import ConsultConflict, ConsultError, ConsultNotFound
from chunfeng.consult.routes import router as consult_router
from chunfeng.db import Database
from chunfeng.inbox.routes import router as inbox_router
from chunfeng.inbox.services import deliver_pending
from chunfeng.ledger import supervision, warnings
from chunfeng.ledger.errors import LedgerError, LedgerNotFound, StaleReport
from chunfeng.ledger.routes import router as ledger_router
from chunfeng.org import audit
from chunfeng.org.errors import Forbidden, NotFound, ValidationFailed
from chunfeng.org.routes import router as org_router
from chunfeng.plan.errors import PlanError, PlanNotFound
from chunfeng.plan.routes import router as plan_router
from chunfeng.push import campaigns
from chunfeng.push import store as push_store
from chunfeng.push.errors import PushError, PushNotFound, RuleError
from chunfeng.push.routes import router as push_router
from chunfeng.settings import Settings
from chunfeng.web import auth
from chunfeng.web.deps import (
    LoginRequired,
    PasswordChangeRequired,
    SecondFactorRequired,
    is_htmx,
    login_url,
    optional_user,
    render,
)
from chunfeng.web.security import RateLimit, SecurityHeaders, csrf_protect


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


def _error(request: Request, status: int, title: str, message: str):
    if _wants_json(request):
        return JSONResponse({"detail": message}, status_code=status)
    user = getattr(request.state, "user", None)
    return render(request, "error.html", {"status": status, "title": title, "message": message},
                  status_code=status, user=user)


log = logging.getLogger("chunfeng")


def scan_once(db: Database, settings: Settings) -> None:
    """Lights, escalation of overdue notices, then delivery of whatever the inbox has pending."""
    with db.write() as session:
        result = warnings.scan(session=session, today=date.today(), rules=warnings.WarningRules.from_settings(settings))
        escalated = supervision.escalate_overdue(session=session, today=date.today(),
                                                 extra_days=settings.notice_escalation_days)
        appeal_scan = appeals.scan(session=session, today=date.today())
        appeals.erase_expired_contacts(session=session, today=date.today(), days=settings.appeal_retention_days)
    delivered = deliver_pending(db, channel_rules=ChannelRules.from_settings(settings))
    log.info("scan: %d assignments, %d changed; %d notices escalated; appeals %d reminded, %d escalated; "
             "%d messages sent, %d failed", result.scanned, result.changed, escalated, appeal_scan.reminded,
             appeal_scan.escalated, delivered.sent, delivered.failed)
    if appeal_scan.calendar_problem:
        log.warning("appeals scan: %s", appeal_scan.calendar_problem)
    store_file = Path(settings.push_store)
    if store_file.exists():  # campaign stages that have come due, then the push outbox
        planned = []  # each campaign is isolated inside run_due; this guards the store itself
        try:
            with push_store.connect_store(store_file) as conn:
                planned = campaigns.run_due(db, conn, today=date.today(), cap=settings.push_cap_per_week)
        except Exception:  # the outbox still goes out when the store cannot be read
            log.exception("push: planning failed")
        pushed = campaigns.deliver(db, sending=campaigns.Sending.from_settings(settings))
        log.info("push: %d stages planned; %d messages sent, %d failed, %d uncertain", len(planned), pushed.sent,
                 pushed.failed, pushed.uncertain)


async def _scan_on_schedule(db: Database, settings: Settings) -> None:
    """Recompute every light now and then every `scan_interval_minutes`, off the event loop."""
    while True:
        try:
            await asyncio.to_thread(scan_once, db, settings)
        except Exception:  # a failed scan must not stop the next one
            log.exception("warning scan failed")
        await asyncio.sleep(settings.scan_interval_minutes * 60)


def create_app(db: Database, settings: Settings) -> FastAPI:
    runtime.configure(settings)  # the data key, the calendar file, the audit head: process-wide, as the columns are

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        with db.write() as session:
            audit.record_configuration(session, settings)
        task = asyncio.create_task(_scan_on_schedule(db, settings)) if settings.scan_interval_minutes else None
        yield
        if task:
            task.cancel()

    # No Swagger UI or ReDoc pages: they load scripts from a CDN (offline intranets have none) with inline script
    # the CSP refuses. The schema itself stays for API clients and the fuzz test.
    app = FastAPI(title="春风 Chunfeng", version=__version__, dependencies=[Depends(csrf_protect)],
                  docs_url=None, openapi_url="/api/openapi.json", redoc_url=None, lifespan=lifespan)
    app.state.db = db
    app.state.settings = settings
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RateLimit)
    if settings.trusted_proxies:  # added last, so outermost: the rate limits and the audit log see the real client
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    app.mount("/static", StaticFiles(directory=str(Path(__file__).with_name("static"))), name="static")
    app.include_router(auth.router)
    app.include_router(plan_router)
    app.include_router(org_router)
    app.include_router(ledger_router)
    app.include_router(inbox_router)
    app.include_router(consult_router)
    app.include_router(push_router)
    app.include_router(appeals_router)
    app.include_router(calendar_router)

    @app.get("/", include_in_schema=False)
    def home(request: Request, user=Depends(optional_user)):
        if user is None:
            return RedirectResponse("/login", status_code=303)
        home = ("/push/inbox" if "taxpayer" in user.role_set else "/audit" if "audit_admin" in user.role_set
                else "/security" if "security_admin" in user.role_set else "/plan")
        return RedirectResponse(home, status_code=303)

    @app.get("/healthz", include_in_schema=False)
    def healthz():
        return {"status": "ok", "schema": db.schema_version()}  # no version: it would tell an attacker what to try

    @app.exception_handler(LoginRequired)
    def _login_required(request: Request, exc: LoginRequired):
        if _wants_json(request) or is_htmx(request):
            return JSONResponse({"detail": "请先登录"}, status_code=401)
        return RedirectResponse(login_url(request), status_code=303)

    @app.exception_handler(SecondFactorRequired)
    def _second_factor(request: Request, exc: SecondFactorRequired):
        if _wants_json(request) or is_htmx(request):
            return JSONResponse({"detail": "请先设置动态口令(双因素认证)"}, status_code=403)
        return RedirectResponse("/totp", status_code=303)

    @app.exception_handler(PasswordChangeRequired)
    def _password_change(request: Request, exc: PasswordChangeRequired):
        if _wants_json(request) or is_htmx(request):
            return JSONResponse({"detail": "请先修改密码"}, status_code=403)
        return RedirectResponse("/password", status_code=303)

    @app.exception_handler(Forbidden)
    def _forbidden(request: Request, exc: Forbidden):
        user = getattr(request.state, "user", None)
        if user is not None:  # a refused access is a security event (anonymous visitors are sent to log in)
            with db.write() as session:
                audit.record(session, actor=user, action="access.denied", object_type="route",
                             # A path may carry %00, which no database stores: recorded escaped.
                             object_id=f"{request.method} {request.url.path}".replace("\x00", "\\x00")[:100],
                             after={"reason": str(exc)},
                             outcome="denied")
        return _error(request, 403, "无权访问", str(exc))

    @app.exception_handler(StaleReport)
    def _stale(request: Request, exc: StaleReport):
        return _error(request, 409, "内容已被他人修改", str(exc))

    @app.exception_handler(ConsultConflict)
    def _conflict(request: Request, exc: ConsultConflict):
        return _error(request, 409, "状态已变化", str(exc))

    @app.exception_handler(NotFound)
    @app.exception_handler(PlanNotFound)
    @app.exception_handler(LedgerNotFound)
    @app.exception_handler(ConsultNotFound)
    @app.exception_handler(PushNotFound)
    @app.exception_handler(AppealNotFound)
    def _not_found(request: Request, exc: Exception):
        return _error(request, 404, "未找到", str(exc))

    @app.exception_handler(ValidationFailed)
    @app.exception_handler(PlanError)
    @app.exception_handler(LedgerError)
    @app.exception_handler(ConsultError)
    @app.exception_handler(PushError)
    @app.exception_handler(RuleError)
    @app.exception_handler(AppealError)
    @app.exception_handler(CalendarError)
    def _invalid(request: Request, exc: Exception):
        return _error(request, 400, "无法处理", str(exc))

    @app.exception_handler(HTTPException)
    @app.exception_handler(StarletteHTTPException)  # the router's own 404 and 405 are Starlette's, not FastAPI's
    def _http(request: Request, exc: StarletteHTTPException):
        titles = {403: "无权访问", 404: "未找到", 401: "请先登录", 405: "不支持的操作"}
        message = exc.detail if isinstance(exc.detail, str) else "请求无效"
        if exc.status_code == 404 and message == "Not Found":
            message = "页面不存在"
        elif exc.status_code == 405 and message == "Method Not Allowed":
            message = f"此地址不支持 {request.method} 请求"
        response = _error(request, exc.status_code, titles.get(exc.status_code, "请求无效"), message)
        response.headers.update(exc.headers or {})  # e.g. Allow on a 405
        return response

    @app.exception_handler(RequestValidationError)
    def _bad_parameters(request: Request, exc: RequestValidationError):
        fields = "、".join(".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]) for e in exc.errors())
        return _error(request, 400, "请求无效", f"参数无效:{fields}")

    return app
