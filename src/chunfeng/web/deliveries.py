"""The delivery log: every message the outbox sent, is sending or gave up on, with filters, pages and xlsx.

The system administrator sees the deliveries of their unit's subtree, whatever their origin; a service officer
those of the push campaigns of their subtree (their taxpayers' messages, not the units' supervision notices).
Addresses, tokens and passwords are shown masked, on the page and in the file.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from chunfeng import outbox
from chunfeng.bounds import TITLE
from chunfeng.inbox.services import ORIGIN as INBOX
from chunfeng.org.access import allowed
from chunfeng.org.errors import Forbidden, ValidationFailed
from chunfeng.push.campaigns import ORIGIN as PUSH
from chunfeng.push.schema import CHANNEL_NAMES
from chunfeng.web.contract import PageNo
from chunfeng.web.deps import CurrentUser, SessionDep, render, require
from chunfeng.web.downloads import XLSX, temporary_file
from chunfeng.xlsx import download_path, write_table

router = APIRouter(tags=["deliveries"])

ORIGIN_NAMES = {INBOX: "单位消息(督办、催办)", PUSH: "政策推送"}
CHANNEL_LABELS = {**CHANNEL_NAMES, outbox.URL: "单位通知通道"}
HEADERS = ["编号", "来源", "来源编号", "渠道", "收件地址(已遮蔽)", "标题", "状态", "尝试次数", "下次尝试/租约到期(UTC)",
           "最近错误", "创建时间(UTC)", "送达时间(UTC)"]


def _filters(user, state: str, channel: str, origin: str) -> outbox.LogFilter:
    """What this user may see of the log, narrowed by the filters asked for; a refusal names what is wrong."""
    origins = None if allowed(user, "outbox.view") else (PUSH,)
    if state and state not in outbox.STATES:
        raise ValidationFailed(f"未知状态“{state[:20]}”,可选:{'、'.join(outbox.STATES)}")
    if len(channel) > TITLE or len(origin) > TITLE:
        raise ValidationFailed("筛选条件过长")
    if origin and origins is not None and origin not in origins:
        raise Forbidden("纳税服务专员只能查看政策推送的发送记录")
    return outbox.LogFilter(within=user.unit.path, origins=origins, state=state, channel=channel, origin=origin)


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


@router.get("/deliveries", dependencies=[require("outbox.view", "push.campaign")])
def delivery_log(request: Request, session: SessionDep, user: CurrentUser, state: str = "", channel: str = "",
                 origin: str = "", page: PageNo = 1):
    filters = _filters(user, state, channel, origin)
    result = outbox.deliveries(session, filters, page=page)
    return render(request, "deliveries.html", {
        "result": result, "filters": filters, "states": outbox.STATES, "masked": outbox.masked_target,
        "channels": outbox.channels_in(session, filters), "channel_names": CHANNEL_LABELS,
        "origins": {k: v for k, v in ORIGIN_NAMES.items() if filters.origins is None or k in filters.origins},
    }, user=user)


@router.get("/deliveries/export.xlsx", dependencies=[require("outbox.view", "push.campaign")])
def delivery_export(session: SessionDep, user: CurrentUser, state: str = "", channel: str = "", origin: str = ""):
    filters = _filters(user, state, channel, origin)
    rows = ([d.id, ORIGIN_NAMES.get(d.origin, d.origin), d.origin_id, CHANNEL_LABELS.get(d.channel, d.channel),
             outbox.masked_target(d.channel, d.target), d.title, outbox.STATES.get(d.state, d.state), d.attempts,
             _when(d.next_attempt_at), d.last_error, _when(d.created_at), _when(d.sent_at)]
            for d in outbox.each_delivery(session, filters))
    path = write_table(download_path(), sheet="发送记录", headers=HEADERS, rows=rows,
                       widths=[8, 16, 10, 12, 20, 30, 12, 8, 20, 30, 20, 20])
    return temporary_file(path, "发送记录.xlsx", XLSX)
