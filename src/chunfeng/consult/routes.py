"""Pages of the consultation: the public ask page and API, the agents' console, the knowledge-base editor."""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from chunfeng.bounds import LAW_DAY_MIN, OutOfBounds, bounded_day
from chunfeng.charts import bar_chart
from chunfeng.consult import analytics, knowledge, policy, services, transfer
from chunfeng.consult.errors import ConsultInvalid
from chunfeng.consult.models import ENTRY_STATES
from chunfeng.jobs import TaskResult
from chunfeng.org.access import authorize
from chunfeng.org.builtin import PROVINCES
from chunfeng.web import forms
from chunfeng.web import jobs as jobs_pages
from chunfeng.web.contract import API_ERRORS, INT_MAX, ApiError, FormId, Id, PageNo
from chunfeng.web.deps import CurrentUser, DatabaseDep, ImportLimitsDep, SessionDep, optional_user, render, require
from chunfeng.web.downloads import temporary_file
from chunfeng.xlsx import download_path, write_table

router = APIRouter(tags=["consult"])
REGIONS = [("national", "全国")] + [(code, name) for code, name in PROVINCES]


def _shared_index(request: Request, session):
    """The process's index; after a knowledge-base change the previous one answers while the new one is built."""
    settings = request.app.state.settings
    return services.index_for(session, embedding_model=settings.consult_embedding_model,
                              stale_seconds=settings.index_stale_seconds)


@router.get("/ask")
def ask_page(request: Request, db: DatabaseDep, q: str = "", region: str = "national", large: bool = False):
    """Answers and logs the question (the log is what the analytics read); handing it to a person is a POST."""
    user = optional_user(request, db, request.app.state.settings)
    answer = None
    if q.strip():
        with db.write() as session:
            answer = services.ask(session=session, query=q, region=region, channel="web",
                                  index=_shared_index(request, session))
    return render(request, "consult/ask.html", {"q": q, "region": region, "regions": REGIONS, "answer": answer,
                                                "large": large}, user=user)


@router.post("/ask/feedback")
def feedback(db: DatabaseDep, query_id: FormId, helpful: bool = Form(...), token: str = Form(""),
             large: bool = Form(False)):
    with db.write() as session:
        services.give_feedback(session=session, query_id=query_id, token=token, helpful=helpful)
    return RedirectResponse(f"/ask?thanks=1&large={'true' if large else 'false'}", status_code=303)


@router.post("/ask/handoff")
def handoff(db: DatabaseDep, query_id: FormId, token: str = Form(""), large: bool = Form(False)):
    """转人工: the asker hands the question to the 12366 agents."""
    with db.write() as session:
        services.request_handoff(session=session, query_id=query_id, token=token)
    # The follow-up link is where the asker, anonymous, later reads the agent's answer: the token proves the asker.
    return RedirectResponse(f"/ask/followup/{query_id}/{quote(token, safe='')}?new=1&large={'true' if large else 'false'}",
                            status_code=303)


@router.get("/ask/followup/{query_id}/{token}")
def followup(request: Request, query_id: Id, token: str, session: SessionDep, large: bool = False):
    item = services.handoff_for_asker(session=session, query_id=query_id, token=token)
    return render(request, "consult/followup.html", {"h": item, "large": large}, user=None)


class ApiHit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    source: str
    measure_no: int | None
    title: str
    answer: str
    basis: str
    score: float
    confidence: float
    effective_from: date | None
    effective_until: date | None
    current: bool  # false: the entry's period has ended; it is past, not a current rule
    year: int | None  # a measure's: the year of the action whose commitment it is


class ApiAnswer(BaseModel):
    """The JSON answer of /api/consult, as `services.Answer.as_dict` writes it."""
    model_config = ConfigDict(extra="forbid")
    query: str
    query_id: int | None
    token: str
    handoff: bool
    region: str
    answers: list[ApiHit]


@router.get("/api/consult", responses={200: {"model": ApiAnswer}, **API_ERRORS})
def consult_api(request: Request, db: DatabaseDep, q: str, region: str = "national", k: int = 3):
    """Answers best first; `handoff` is true when the machine is not sure and a person should answer: post
    `query_id` and `token` to /api/consult/handoff to ask for one (the token also proves the asker)."""
    with db.write() as session:
        answer = services.ask(session=session, query=q, region=region, channel="api", k=max(1, min(k, 10)),
                              index=_shared_index(request, session))
    return JSONResponse(answer.as_dict())


class HandoffIn(BaseModel):
    query_id: int = Field(ge=1, le=INT_MAX)
    token: str = Field(max_length=64)


class ApiHandoff(BaseModel):
    model_config = ConfigDict(extra="forbid")
    handoff_id: int


@router.post("/api/consult/handoff", status_code=201, responses={
    201: {"model": ApiHandoff}, **API_ERRORS, 403: {"model": ApiError, "description": "凭证无效:只有提问人可以转人工"},
    404: {"model": ApiError, "description": "没有这条咨询记录"},
    409: {"model": ApiError, "description": "这个问题已经转人工"}})
def consult_api_handoff(db: DatabaseDep, item: HandoffIn):
    """转人工 for an answer of /api/consult: once per question, by the asker (its token)."""
    with db.write() as session:
        made = services.request_handoff(session=session, query_id=item.query_id, token=item.token)
        body = {"handoff_id": made.id}
    return JSONResponse(body, status_code=201)


# --- agents ----------------------------------------------------------------------------------------


@router.get("/consult/queue", dependencies=[require("consult.agent")])
def queue(request: Request, session: SessionDep, user: CurrentUser, state: str = "waiting", page: PageNo = 1):
    return queue_page(request, session, user, state=state, page=page)


def queue_page(request: Request, session, user, *, state: str, page: int, refused: forms.Refused | None = None):
    """The agent's queue; `refused`: one of its forms again (an answer here, a demand in appeals/routes.py)."""
    result = services.handoff_queue(session=session, actor=user, state=state, page=max(1, page))
    return render(request, "consult/queue.html", {
        "result": result, "state": state, "refused": refused,
        "may": lambda handoff, permission: policy.may_handle_handoff(user, handoff, permission)}, user=user,
        status_code=refused.status if refused else 200)


@router.post("/consult/handoffs/{handoff_id}/answer", dependencies=[require("consult.agent")])
def answer_handoff(request: Request, handoff_id: Id, db: DatabaseDep, user: CurrentUser, answer: str = Form(""),
                   page: FormId = 1):
    try:
        with db.write() as session:
            services.answer_handoff(session=session, actor=user, handoff_id=handoff_id, answer=answer)
    except ConsultInvalid as exc:  # the queue page it was typed on again, the answer kept beside its message
        with db.read() as session:
            return queue_page(request, session, user, state="waiting", page=page, refused=forms.refused(
                db, request, user, exc, form=f"answer-{handoff_id}", fields=("answer",), values={"answer": answer}))
    return RedirectResponse("/consult/queue?answered=1", status_code=303)


@router.post("/consult/handoffs/{handoff_id}/promote", dependencies=[require("consult.kb.edit")])
def promote(handoff_id: Id, db: DatabaseDep, user: CurrentUser, basis: str = Form(""), tags: str = Form("")):
    with db.write() as session:
        entry = knowledge.promote_handoff(session=session, actor=user, handoff_id=handoff_id, basis=basis, tags=tags)
    return RedirectResponse(f"/consult/kb/{entry.key}?promoted=1", status_code=303)


@router.get("/consult/kb", dependencies=[require("consult.agent")])
def kb_list(request: Request, session: SessionDep, user: CurrentUser, q: str = "", status: str = "", page: PageNo = 1):
    result = knowledge.list_entries(session=session, actor=user, query=q.strip(), status=status, page=max(1, page))
    return render(request, "consult/kb.html", {"result": result, "q": q.strip(), "status": status,
                                               "states": ENTRY_STATES}, user=user)


@router.get("/consult/kb/export.{fmt}", dependencies=[require("consult.agent")])
def kb_export(fmt: str, session: SessionDep, user: CurrentUser):
    authorize(user, "consult.agent")
    if fmt not in transfer.FORMATS:
        raise ConsultInvalid(f"不支持的格式“{fmt}”")
    path = download_path(f".{fmt}")
    transfer.export_entries(session=session, actor=user, fmt=fmt, path=path)
    return temporary_file(path, f"12366知识库.{fmt}")


@router.post("/consult/kb/import", dependencies=[require("consult.kb.edit")])
async def kb_import(db: DatabaseDep, user: CurrentUser, limits: ImportLimitsDep, file: UploadFile = File(...)):
    authorize(user, "consult.kb.edit")
    data = await file.read(20 * 1048576 + 1)
    if len(data) > 20 * 1048576:
        raise ConsultInvalid(f"{file.filename}:文件超过 20 MB")
    suffix = Path(file.filename or "").suffix.lower()
    if suffix.lstrip(".") not in transfer.FORMATS + ("markdown",):
        raise ConsultInvalid(f"{file.filename}:不支持的格式,可导入 {'、'.join(transfer.FORMATS)}")

    def work(progress) -> TaskResult:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"upload{suffix}"
            path.write_bytes(data)
            progress(0, 0, "正在读取和检查文件")
            with db.read() as session:  # parse and check outside the write lock every page view needs
                plan = transfer.check_entries(session=session, actor=user, path=path, limits=limits)
            with db.write() as session:
                created, updated = transfer.import_entries(session=session, actor=user, path=path, plan=plan,
                                                           limits=limits, progress=progress)
        return TaskResult(f"新增 {created} 条,更新 {updated} 条", f"/consult/kb?created={created}&updated={updated}")

    return jobs_pages.start(db, user, name="consult.kb.import", title=f"导入知识库 {file.filename}"[:200], work=work)


@router.get("/consult/kb/new", dependencies=[require("consult.kb.edit")])
def kb_new(request: Request, user: CurrentUser):
    authorize(user, "consult.kb.edit")
    return render(request, "consult/entry.html", {"entry": None, "revisions": [], "regions": REGIONS,
                                                  "states": ENTRY_STATES}, user=user)


@router.get("/consult/kb/{key}", dependencies=[require("consult.kb.edit")])
def kb_entry(request: Request, key: str, session: SessionDep, user: CurrentUser):
    entry, revisions = knowledge.history(session=session, actor=user, key=key)
    return render(request, "consult/entry.html", {"entry": entry, "revisions": revisions, "regions": REGIONS,
                                                  "states": ENTRY_STATES,
                                                  "may_edit": policy.may_edit_entry(user, entry)}, user=user)


@router.post("/consult/kb", dependencies=[require("consult.kb.edit")])
def kb_save(request: Request, db: DatabaseDep, user: CurrentUser, key: str = Form(""), version: int | None = Form(None, title="版本号"),
            question: str = Form(""), phrasings: str = Form(""), answer: str = Form(""), basis: str = Form(""),
            article: str = Form(""), tags: str = Form(""), region: str = Form("national"),
            effective_from: str = Form(""), effective_until: str = Form(""), status: str = Form("published"),
            repeals: str = Form("")):
    def day(text: str, label: str, field: str) -> date | None:
        return bounded_day(text, label, earliest=LAW_DAY_MIN, form_field=field) if text else None

    typed = {"question": question, "phrasings": phrasings, "answer": answer, "basis": basis, "article": article,
             "tags": tags, "region": region, "effective_from": effective_from, "effective_until": effective_until,
             "status": status, "repeals": repeals}
    try:
        values = {**typed, "effective_from": day(effective_from, "生效日期", "effective_from"),
                  "effective_until": day(effective_until, "失效日期", "effective_until")}
        with db.write() as session:
            entry = knowledge.save_entry(session=session, actor=user, values=values, key=key or None,
                                        expected_version=version)
    except (ConsultInvalid, OutOfBounds) as exc:  # the entry form again, as typed, each fault beside its field
        refused = forms.refused(db, request, user, exc, form="entry", values=typed, fields=tuple(typed))
        with db.read() as session:
            entry, revisions = knowledge.history(session=session, actor=user, key=key) if key else (None, [])
            return render(request, "consult/entry.html", {
                "entry": entry, "revisions": revisions, "regions": REGIONS, "states": ENTRY_STATES,
                "may_edit": entry is None or policy.may_edit_entry(user, entry), "refused": refused},
                user=user, status_code=refused.status)
    return RedirectResponse(f"/consult/kb/{entry.key}?saved=1", status_code=303)


@router.get("/consult/review", dependencies=[require("consult.agent")])
def review(request: Request, session: SessionDep, user: CurrentUser, page: PageNo = 1):
    result = knowledge.review_queue(session=session, actor=user, page=max(1, page))
    return render(request, "consult/review.html", {"result": result, "reasons": knowledge.REVIEW_REASONS,
                                                   "may_edit": lambda entry: policy.may_edit_entry(user, entry)}, user=user)


@router.post("/consult/review/{key}", dependencies=[require("consult.kb.edit")])
def review_confirm(db: DatabaseDep, user: CurrentUser, key: str, page: FormId = 1):
    with db.write() as session:
        knowledge.mark_reviewed(session=session, actor=user, key=key)
    return RedirectResponse(f"/consult/review?page={page}&reviewed={key}", status_code=303)


@router.get("/consult/analytics", dependencies=[require("consult.analytics")])
def analytics_page(request: Request, session: SessionDep, user: CurrentUser, start: str = "", end: str = "",
                   region: str = "", channel: str = "", tag: str = "", export: str = ""):
    def day(text: str, fallback: date, label: str) -> date:
        return bounded_day(text, label) if text else fallback

    today = date.today()
    filters = analytics.Filters(day(start, today - timedelta(days=29), "开始日期"), day(end, today, "结束日期"), region,
                                channel, tag)
    if filters.end < filters.start:
        raise ConsultInvalid("结束日期早于开始日期")
    result = analytics.report(session=session, actor=user, filters=filters)
    if export:
        sheets = {
            "top": ("热点问题", ["编号", "问题", "本期次数", "上期次数", "有帮助", "没帮助"],
                    ([r.ref, r.title, r.count, r.previous, r.helpful, r.not_helpful] for r in result.top)),
            "rising": ("上升问题", ["编号", "问题", "本期次数", "上期次数", "增加"],
                       ([r.ref, r.title, r.count, r.previous, r.rise] for r in result.rising)),
            "gaps": ("知识库缺口", ["代表问题", "次数", "同类问题"],
                     ([g.example, g.count, " / ".join(g.questions)] for g in result.gaps)),
            "handed_off": ("转人工最多的问题", ["问题", "次数", "机器的候选答案"],
                           ([h.question, h.count, h.candidate] for h in result.handed_off)),
        }
        if export not in sheets:
            raise ConsultInvalid(f"未知的导出内容“{export}”")
        sheet, headers, rows = sheets[export]
        path = write_table(download_path(), sheet=sheet, headers=headers, rows=rows)
        return temporary_file(path, f"咨询分析-{sheet}-{filters.start}-{filters.end}.xlsx")
    return render(request, "consult/analytics.html", {
        "r": result, "regions": REGIONS, "channels": services.CHANNELS,
        "chart": bar_chart([t.title[:14] for t in result.top[:10]], [t.count for t in result.top[:10]],
                           maximum=max([t.count for t in result.top[:10]] or [1]), suffix="次") if result.top else "",
    }, user=user)
