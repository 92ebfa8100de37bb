"""The unit's inbox page."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from chunfeng import channels
from chunfeng.errors import Invalid
from chunfeng.inbox import services
from chunfeng.org.routes import render_unit_page
from chunfeng.web import forms
from chunfeng.web.contract import Id, PageNo
from chunfeng.web.deps import ChannelRulesDep, CurrentUser, DatabaseDep, SessionDep, render, require

router = APIRouter(prefix="/inbox", tags=["inbox"])


@router.get("", dependencies=[require("inbox.read")])
def inbox_page(request: Request, session: SessionDep, user: CurrentUser, unread: bool = False, page: PageNo = 1):
    result = services.messages(session=session, actor=user, unread_only=unread, page=max(1, page))
    return render(request, "inbox.html", {"result": result, "unread": unread,
                                          "senders": services.sender_names(session, result.items)}, user=user)


@router.post("/{message_id}/read", dependencies=[require("inbox.read")])
def open_message(message_id: Id, db: DatabaseDep, user: CurrentUser):
    with db.write() as session:
        message = services.mark_read(session=session, actor=user, message_id=message_id)
        link = message.link if message.link.startswith("/") else "/inbox"
    return RedirectResponse(link, status_code=303)


@router.post("/channels", dependencies=[require("inbox.channel")])
def add_channel(request: Request, db: DatabaseDep, user: CurrentUser, channel_rules: ChannelRulesDep, unit: str = Form(""),
                kind: str = Form("url"), label: str = Form(""), url: str = Form(""), token: str = Form(""),
                secret: str = Form(""), key: str = Form(""), host: str = Form(""), port: str = Form(""),
                smtp_user: str = Form(""), password: str = Form(""), to: str = Form(""), mode: str = Form(""),
                sender: str = Form("")):
    """One form per channel type (the unit page) builds the Apprise URL; kind "url" takes one as written."""
    try:
        url = channels.build_url(kind, {"url": url, "token": token, "secret": secret, "key": key, "host": host,
                                        "port": port, "user": smtp_user, "password": password, "to": to,
                                        "mode": mode, "from": sender})
        with db.write() as session:
            services.add_channel(session=session, actor=user, unit_code=unit, url=url, label=label,
                                 channel_rules=channel_rules)
    except Invalid as exc:
        # The unit page again, that channel's form with the message and what was typed, but no token, key or
        # password: a secret is not sent back into a page.
        typed = {"label": label, "host": host, "port": port, "smtp_user": smtp_user, "to": to, "mode": mode,
                 "sender": sender}
        with db.read() as session:
            return render_unit_page(request, session, user, unit, refused=forms.refused(
                db, request, user, exc, form=f"channel-{kind}", fields=(), values=typed))
    return RedirectResponse(f"/org/units/{unit}?channel=1", status_code=303)
