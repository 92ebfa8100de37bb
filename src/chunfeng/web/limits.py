"""The web side of the rate limits (chunfeng.ratelimit counts): which requests count, and the 429 people see."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from anyio import CapacityLimiter, to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse

from chunfeng.ratelimit import RateLimiter, Refusal, Rule
from chunfeng.web.deps import render

# Public endpoints limited per client address: (method, path) → bucket of `Settings.rate_limits` (a minute each);
# a path ending in "/" covers what lies below it (the survey answer page /s/{token}).
RATE_LIMITED = {("POST", "/login"): "login", ("POST", "/totp"): "login", ("GET", "/ask"): "consult",
                ("GET", "/api/consult"): "consult", ("POST", "/appeals/new"): "appeals",
                ("POST", "/api/appeals"): "appeals", ("POST", "/appeals/find"): "appeals", ("POST", "/s/"): "survey",
                ("POST", "/api/s/"): "survey"}

# The public front door at a filing-season peak: (method, path) → bucket of `Settings.rate_ceilings` (a second each,
# all processes together). Paths ending in "/" cover what lies below them.
CEILINGS = {("GET", "/ask"): "consult", ("GET", "/api/consult"): "consult", ("POST", "/appeals/new"): "appeals",
            ("POST", "/api/appeals"): "appeals", ("GET", "/push/inbox"): "inbox", ("GET", "/push/inbox/"): "inbox",
            ("GET", "/push/bill"): "inbox", ("POST", "/s/"): "survey", ("POST", "/api/s/"): "survey"}

BACKLOG_SECONDS = 60  # a ceiling tells no one to come back later than this
CHINA = timezone(timedelta(hours=8))


def _bucket(table: dict[tuple[str, str], str], method: str, path: str) -> str | None:
    if bucket := table.get((method, path)):
        return bucket
    head = path.rsplit("/", 1)[0] + "/"
    return table.get((method, head)) if head != "/" else None


def rules_for(request, *, per_address: dict[str, int], ceilings: dict[str, int]) -> list[Rule]:
    """What this request counts against: the endpoint's ceiling first (so a refused request costs the client
    nothing), then the client address's own limit."""
    method, path = request.method, request.url.path
    rules = []
    if (bucket := _bucket(CEILINGS, method, path)) and ceilings.get(bucket):
        rules.append(Rule(bucket, "*", ceilings[bucket], 1.0, backlog=BACKLOG_SECONDS))
    if (bucket := _bucket(RATE_LIMITED, method, path)) and per_address.get(bucket):
        rules.append(Rule(bucket, request.client.host if request.client else "", per_address[bucket], 60.0))
    return rules


class RateLimit:
    """Counted in the database, so that N server processes hold one limit and not N. Plain ASGI (see
    security.SecurityHeaders for why).

    Behind a reverse proxy the proxy's address is the client unless CHUNFENG_TRUSTED_PROXIES names it.
    """

    def __init__(self, app, *, limiter: RateLimiter):
        self.app = app
        self.limiter = limiter
        # Counting has threads of its own: a thread pool busy with slow pages must not delay the fast refusal.
        self._threads = CapacityLimiter(4)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            request = Request(scope, receive)
            settings = request.app.state.settings
            rules = rules_for(request, per_address=settings.rate_limits, ceilings=settings.rate_ceilings)
            if rules:
                refusal = await to_thread.run_sync(self.limiter.take, rules, limiter=self._threads)
                if refusal is not None:
                    await too_many(request, refusal)(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def too_many(request, refusal: Refusal):
    seconds = refusal.seconds
    at = (datetime.now(CHINA) + timedelta(seconds=seconds)).strftime("%H:%M:%S")
    if refusal.rule.key == "*":
        title = "访问人数较多"
        message = f"当前访问人数较多,请于北京时间 {at} 后(约 {seconds} 秒后)再试。"
    else:
        title = "请求过于频繁"
        message = f"请求过于频繁:每分钟最多 {refusal.rule.limit} 次,请于北京时间 {at} 后(约 {seconds} 秒后)再试。"
    headers = {"Retry-After": str(seconds)}
    if request.url.path.startswith("/api/"):
        return JSONResponse({"detail": message}, status_code=429, headers=headers)  # the contract's ApiError
    if refusal.rule.bucket in ("appeals", "survey"):
        message += "您填写的内容尚未提交,返回上一页即可找回,稍后再提交。"
    response = render(request, "error.html", {"status": 429, "title": title, "message": message}, status_code=429)
    response.headers.update(headers)
    return response
