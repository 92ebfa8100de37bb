"""Cookies, CSRF tokens and security headers: the web side of sessions (org.sessions owns the data)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import HTTPException, Request
from starlette.datastructures import MutableHeaders
from starlette.responses import Response

from chunfeng.org import audit

SESSION_COOKIE = "cf_session"
ANON_COOKIE = "cf_anon"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

SECURITY_HEADERS = {
    # No inline script anywhere: every script is a file under /static.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # No page here needs a camera, microphone, location or the like: refused outright, for frames too.
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=(), "
                          "magnetometer=(), gyroscope=(), accelerometer=(), display-capture=()",
}


def csrf_token(secret: str, request: Request) -> str:
    """Bound to the login session if there is one, else to the visitor's anonymous cookie."""
    session_token = request.cookies.get(SESSION_COOKIE, "")
    basis = f"session:{session_token}" if session_token else f"anon:{anon_id(request)}"
    return hmac.new(secret.encode(), basis.encode(), hashlib.sha256).hexdigest()


def anon_id(request: Request) -> str:
    value = request.cookies.get(ANON_COOKIE) or getattr(request.state, "new_anon_id", None)
    if not value:
        value = secrets.token_urlsafe(24)
        request.state.new_anon_id = value
    return value


async def csrf_protect(request: Request) -> None:
    """Refuse any state-changing request whose token (form field or X-CSRF-Token header) does not match."""
    if request.method not in UNSAFE_METHODS:
        return
    if (request.url.path.startswith("/api/") and not request.cookies.get(SESSION_COOKIE)
            and request.headers.get("content-type", "").startswith("application/json")):
        # A JSON API call without a session cookie carries no ambient authority to forge, and a browser
        # cannot send application/json cross-site without CORS approval, which this app never gives.
        return
    sent = request.headers.get(CSRF_HEADER)
    if not sent and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        sent = (await request.form()).get(CSRF_FIELD)
    expected = csrf_token(request.app.state.settings.secret_key, request)
    if not sent or not hmac.compare_digest(str(sent), expected):
        raise HTTPException(status_code=403, detail="表单已失效或缺少防伪令牌(CSRF),请刷新页面后重试")


class SecurityHeaders:
    """Plain ASGI, not BaseHTTPMiddleware, which runs the app in a task of its own with a stream between the two:
    a part of every public request's cost (issue 16)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        # Every audit entry written while serving this request carries its source address.
        audit.request_source.set(request.client.host if request.client else "")
        request.state  # noqa: B018 (scope["state"] made now: the app's requests share it, and new_anon_id with it)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
                if not scope["path"].startswith("/static/"):
                    # Pages, exports and downloads carry personal data (a tracking page shows the citizen's own
                    # item): no browser or shared proxy keeps a copy. Only the static assets may be cached.
                    headers["Cache-Control"] = "no-store"
                new_anon = getattr(request.state, "new_anon_id", None)
                if new_anon and not request.cookies.get(SESSION_COOKIE):
                    cookie = Response()
                    cookie.set_cookie(ANON_COOKIE, new_anon, httponly=True, samesite="lax",
                                      secure=request.app.state.settings.cookie_secure)
                    headers.append("set-cookie", cookie.headers["set-cookie"])
            await send(message)

        await self.app(scope, receive, send_with_headers)
