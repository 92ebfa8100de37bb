"""The application factory: one app per database and settings, routers from each domain."""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from chunfeng import __version__, jobs, runtime
from chunfeng.appeals import jobs as _appeals_jobs  # noqa: F401 (each domain registers its periodic jobs)
from chunfeng.appeals.routes import router as appeals_router
from chunfeng.calendar.routes import router as calendar_router
from chunfeng.consult.routes import router as consult_router
from chunfeng.credit import jobs as _credit_jobs  # noqa: F401
from chunfeng.credit.api_routes import router as credit_api_router
from chunfeng.credit.repair_routes import router as credit_repair_router
from chunfeng.credit.routes import router as credit_router
from chunfeng.db import Database
from chunfeng.errors import ChunfengError, Forbidden
from chunfeng.inbox import jobs as _inbox_jobs  # noqa: F401
from chunfeng.inbox.routes import router as inbox_router
from chunfeng.ledger import jobs as _ledger_jobs  # noqa: F401
from chunfeng.ledger.routes import router as ledger_router
from chunfeng.ledger.supervision_routes import router as supervision_router
from chunfeng.org import audit
from chunfeng.org.roles import landing
from chunfeng.org.routes import router as org_router
from chunfeng.plan.routes import router as plan_router
from chunfeng.push import jobs as _push_jobs  # noqa: F401
from chunfeng.push.routes import router as push_router
from chunfeng.ratelimit import RateLimiter
from chunfeng.settings import Settings
from chunfeng.survey import jobs as _survey_jobs  # noqa: F401
from chunfeng.survey.api_routes import public_router as survey_public_api_router
from chunfeng.survey.api_routes import router as survey_api_router
from chunfeng.survey.builder_routes import router as survey_builder_router
from chunfeng.survey.routes import public_router as survey_public_router
from chunfeng.survey.routes import router as survey_router
from chunfeng.survey.sample_routes import router as survey_sample_router
from chunfeng.web import auth, forms
from chunfeng.web import jobs as jobs_pages
from chunfeng.web.deliveries import router as deliveries_router
from chunfeng.web.deps import (
    LoginRequired,
    PasswordChangeRequired,
    SecondFactorRequired,
    is_htmx,
    login_url,
    optional_user,
    render,
)
from chunfeng.web.limits import RateLimit
from chunfeng.web.readiness import Readiness
from chunfeng.web.security import SecurityHeaders, csrf_protect


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


def _error(request: Request, status: int, title: str, message: str):
    if _wants_json(request):
        return JSONResponse({"detail": message}, status_code=status)
    user = getattr(request.state, "user", None)
    return render(request, "error.html", {"status": status, "title": title, "message": message},
                  status_code=status, user=user)


log = logging.getLogger("chunfeng")


def _run_jobs_in_process(db: Database, settings: Settings) -> threading.Event:
    """The periodic jobs on a thread of this web process (CHUNFENG_RUN_JOBS_IN_WEB; the demo): the same runner and
    leases as `chunfeng worker`, so a worker alongside never runs a job twice in a period."""
    stop = threading.Event()
    threading.Thread(target=jobs.Runner(db, settings).serve, args=(stop,), name="jobs", daemon=True).start()
    return stop


# Starlette tries a request's path against each route in turn, router after router: the public front door (the
# 12366 questions, filings, survey respondents, the taxpayer's message centre) comes first, so that its requests are
# not matched against the officials' routes first (issue 16; ≈ 0.6–0.9 ms of the event loop a request at the end of
# the list). No route of one router takes a path written for another's (tests/web/test_route_order.py), so the order
# changes no answer.
ROUTERS = (consult_router, appeals_router, survey_public_router, survey_public_api_router, push_router, inbox_router,
           auth.router, plan_router, org_router, ledger_router, supervision_router, credit_router,
           credit_repair_router, credit_api_router, calendar_router, jobs_pages.router, deliveries_router, survey_router,
           survey_api_router, survey_sample_router, survey_builder_router)


def create_app(db: Database, settings: Settings) -> FastAPI:
    runtime.configure(settings)  # the data key, the calendar file, the audit head: process-wide, as the columns are

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        with db.write() as session:
            audit.record_configuration(session, settings)
        jobs.reap(db)  # tasks a previous run of this server left half done are shown as failed, not as running
        stop = _run_jobs_in_process(db, settings) if settings.run_jobs_in_web else None
        readiness.start()  # the indexes, on a thread: the port opens now, /healthz says 503 until they are in
        yield
        readiness.stop()
        if stop:
            stop.set()
        limiter.dispose()

    # No Swagger UI or ReDoc pages: they load scripts from a CDN (offline intranets have none) with inline script
    # the CSP refuses. The schema itself stays for API clients and the fuzz test.
    app = FastAPI(title="春风 Chunfeng", version=__version__, dependencies=[Depends(csrf_protect)],
                  docs_url=None, openapi_url="/api/openapi.json", redoc_url=None, lifespan=lifespan)
    app.state.db = db
    app.state.settings = settings
    readiness = app.state.readiness = Readiness(db, settings)
    limiter = RateLimiter(db.url, wait_seconds=settings.rate_limit_wait_ms / 1000, write_lock=db.write_lock)
    app.add_middleware(RateLimit, limiter=limiter)  # inside SecurityHeaders: a 429 page carries the headers too
    app.add_middleware(SecurityHeaders)
    if settings.trusted_proxies:  # added last, so outermost: the rate limits and the audit log see the real client
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    # The site's own assets, then the documents' stylesheet (chunfeng/static), which a briefing page links.
    app.mount("/static", StaticFiles(directory=str(Path(__file__).with_name("static")), packages=[("chunfeng", "static")]),
              name="static")
    for router in ROUTERS:
        app.include_router(router)

    @app.get("/", include_in_schema=False)
    def home(request: Request, user=Depends(optional_user)):
        if user is None:
            return RedirectResponse("/login", status_code=303)
        return RedirectResponse(landing(user.role_set, user.unit.code), status_code=303)

    @app.get("/healthz", include_in_schema=False)
    def healthz():
        return readiness.health()  # no version: it would tell an attacker what to try

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

    @app.exception_handler(ChunfengError)
    def _domain_error(request: Request, exc: ChunfengError):
        """Every domain's refusal, in one place: its status, its title, its message for people."""
        user = getattr(request.state, "user", None)
        if isinstance(exc, Forbidden) and user is not None:
            # a refused access is a security event (anonymous visitors are sent to log in)
            audit.record_denied(db, actor=user, object_type="route", object_id=f"{request.method} {request.url.path}",
                                reason=str(exc))
        if exc.status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        return _error(request, exc.status, exc.title, str(exc))

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
        if not _wants_json(request):  # a page: the field named by its label, and the way back to the form
            message, back = forms.invalid_parameters(request, exc.errors())
            return render(request, "error.html", {"status": 400, "title": "请求无效", "message": message, "back": back},
                          status_code=400, user=getattr(request.state, "user", None))
        fields = "、".join(".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]) for e in exc.errors())
        return _error(request, 400, "请求无效", f"参数无效:{fields}")

    return app
