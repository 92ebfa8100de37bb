"""Login and logout."""

from __future__ import annotations

import pyotp
import segno
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from markupsafe import Markup

from chunfeng.org import audit, second_factor, services
from chunfeng.org.errors import NotFound, ValidationFailed
from chunfeng.org.sessions import end_other_sessions, end_own_session, end_session, is_current, own_sessions, start_session
from chunfeng.web.contract import Id
from chunfeng.web.deps import CurrentUser, DatabaseDep, SettingsDep, optional_user, render
from chunfeng.web.security import SESSION_COOKIE

router = APIRouter()


def _safe_next(target: str) -> str:
    # Only paths on this site: an open redirect after login would be a phishing aid.
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.get("/login")
def login_form(request: Request, next: str = "/"):
    return render(request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login")
def login(request: Request, db: DatabaseDep, settings: SettingsDep,
          username: str = Form(""), password: str = Form(""), code: str = Form(""), next: str = Form("/")):
    source = request.client.host if request.client else ""
    with db.write() as session:  # committed either way: a failure is counted and logged too
        attempt = services.attempt_login(session=session, username=username.strip(), password=password, source=source,
                                         code=code,
                                         max_failures=settings.login_max_failures,
                                         lockout_minutes=settings.login_lockout_minutes)
        token = (start_session(session, user=attempt.user, max_hours=settings.session_max_hours, source=source)
                 if attempt.user else None)
    if token is None:
        return render(request, "login.html", {"next": _safe_next(next), "error": attempt.error, "username": username},
                      status_code=401)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", secure=settings.cookie_secure,
                        max_age=settings.session_max_hours * 3600)
    return response


@router.get("/password")
def password_form(request: Request, db: DatabaseDep, settings: SettingsDep):
    user = optional_user(request, db, settings)
    if user is None:
        return RedirectResponse("/login?next=/password", status_code=303)
    return render(request, "password.html", {"error": None, "forced": user.must_change_password}, user=user)


@router.post("/password")
def password_change(request: Request, db: DatabaseDep, settings: SettingsDep, current: str = Form(""),
                    new: str = Form(""), again: str = Form("")):
    user = optional_user(request, db, settings)
    if user is None:
        return RedirectResponse("/login?next=/password", status_code=303)
    source = request.client.host if request.client else ""
    try:
        with db.write() as session:  # a wrong current password is committed: counted toward the lockout, audited
            me = session.merge(user)
            error = services.current_password_refusal(session=session, user=me, password=current, source=source,
                                                      max_failures=settings.login_max_failures,
                                                      lockout_minutes=settings.login_lockout_minutes)
            if error is None:
                if new != again:
                    raise ValidationFailed("两次输入的新密码不一致")
                services.change_password(session=session, user=me, current=current, new=new,
                                         history=settings.password_history,
                                         min_length=settings.password_min_length,
                                         keep_token=request.cookies.get(SESSION_COOKIE, ""))
    except ValidationFailed as exc:
        error = str(exc)
    if error is not None:
        return render(request, "password.html", {"error": error, "forced": user.must_change_password}, user=user,
                      status_code=400)
    return RedirectResponse("/?password=changed", status_code=303)


@router.get("/totp")
def totp_form(request: Request, db: DatabaseDep, settings: SettingsDep):
    user = optional_user(request, db, settings)
    if user is None:
        return RedirectResponse("/login?next=/totp", status_code=303)
    return _totp_page(request, user)


def _totp_page(request, user, error: str | None = None, status: int = 200):
    secret = user.totp_pending_secret  # issued and kept by the server: a secret sent back by the form is never used
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name="春风 Chunfeng") if secret else ""
    # Drawn here, offline, as inline SVG: the secret never leaves the server for a QR service.
    qr = Markup(segno.make(uri, error="m").svg_inline(scale=5, light="#fff", title="动态口令二维码")) if uri else ""
    return render(request, "totp.html", {"secret": secret, "uri": uri, "qr": qr, "error": error,
                                         "enrolled": bool(user.totp_secret)}, user=user, status_code=status)


@router.post("/totp/secret")
def totp_issue(request: Request, db: DatabaseDep, settings: SettingsDep):
    user = optional_user(request, db, settings)
    if user is None:
        return RedirectResponse("/login?next=/totp", status_code=303)
    with db.write() as session:
        second_factor.issue_secret(session=session, user=session.merge(user))
    return RedirectResponse("/totp", status_code=303)


@router.post("/totp")
def totp_enrol(request: Request, db: DatabaseDep, settings: SettingsDep, code: str = Form(""),
               current: str = Form("")):
    user = optional_user(request, db, settings)
    if user is None:
        return RedirectResponse("/login?next=/totp", status_code=303)
    with db.write() as session:  # committed either way: a refused change of second factor is audited
        mine = session.merge(user)
        refusal = second_factor.confirm(session=session, user=mine, code=code, current=current)
        if not refusal:
            # A new second factor (a lost phone, a suspected leak): sessions opened with the old one end.
            end_other_sessions(session, user=mine, keep_token=request.cookies.get(SESSION_COOKIE, ""))
    if refusal:
        return _totp_page(request, mine, refusal, 400)
    return RedirectResponse("/?totp=enrolled", status_code=303)


@router.get("/sessions")
def sessions_page(request: Request, db: DatabaseDep, user: CurrentUser):
    token = request.cookies.get(SESSION_COOKIE, "")
    with db.read() as session:
        rows = [(row, is_current(row, token)) for row in own_sessions(session, user=user)]
    return render(request, "sessions.html", {"rows": rows}, user=user)


@router.post("/sessions/{session_id}/end")
def sessions_end(request: Request, session_id: Id, db: DatabaseDep, user: CurrentUser):
    with db.write() as session:
        ended = end_own_session(session, user=user, session_id=session_id)
        if ended:
            audit.record(session, actor=user, action="org.session.ended", object_type="session", object_id=session_id)
    if not ended:
        raise NotFound(f"没有编号为 {session_id} 的会话")
    return RedirectResponse("/sessions?ended=1", status_code=303)


@router.post("/logout")
def logout(request: Request, db: DatabaseDep):
    token = request.cookies.get(SESSION_COOKIE, "")
    if token:
        with db.write() as session:
            end_session(session, token=token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


__all__ = ["router", "optional_user"]
