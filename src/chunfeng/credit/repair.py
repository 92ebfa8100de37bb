"""Credit repair (measures 117 and 118): a taxpayer, or an official on its behalf, applies to repair one failure
of a year's rating — an indicator's deduction on the register — saying how and when it was corrected, with
evidence; or, for an enterprise in bankruptcy reorganisation, on the court's ruling approving the plan. The rules
(credit/data/repair.json) propose the restored score and level where they are confirmed, and say 待人工核定 where
they await review; the competent unit approves or refuses with a reason within a limit in working days. An
approval writes the rating's restored values (the application keeps them before and after: the register's
history row) and, if the deciding official takes it, the taxpayer's entry off the major-violator list. Every step
audited; a refusal changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from importlib.resources import files as package_files
from pathlib import Path

from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.orm import Session, joinedload

from chunfeng.credit import policy
from chunfeng.credit.errors import CreditInvalid, CreditNotFound
from chunfeng.credit.models import (
    EVIDENCE_KINDS,
    LEVELS,
    REPAIR_PATHS,
    REPAIR_STATES,
    CreditRating,
    CreditRepair,
    CreditRepairEvidence,
    Violator,
)
from chunfeng.credit.services import level_rules, remove_violator
from chunfeng.db import utcnow
from chunfeng.errors import Conflict
from chunfeng.files import TYPES, safe_name, sniff, store_after_commit, stored_path, upload_problem
from chunfeng.org import audit
from chunfeng.org.access import Actor, allowed, authorize, refusal, subtree_filter
from chunfeng.org.errors import Forbidden
from chunfeng.org.models import Unit
from chunfeng.paging import Page, paginate, paginate_parts
from chunfeng.workdays import CalendarNotCovered, configured_calendar

MAX_FILES = 5
REVIEW = "待人工核定"


class RepairConflict(CreditInvalid, Conflict):
    """The application or the rating is not in the state the step needs."""

    status = 409


@cache
def repair_rules() -> dict:
    """The repair rules as shipped (credit/data/repair.json), each with its source or marked for review."""
    return json.loads(package_files("chunfeng.credit").joinpath("data/repair.json").read_text(encoding="utf-8"))


# --- the proposal ---------------------------------------------------------------------------------


def level_for(score: float, rating_level: str, bands: dict[str, dict]) -> tuple[str | None, str]:
    """The level a score earns by the confirmed bands, or (None, why not): the bands await review, or the level
    was not set by the score at all (M, or D judged directly)."""
    if rating_level == "M":
        return None, "M级不按分数确定"
    if rating_level == "D" and bands["D"]["max_score"] is not None and score >= bands["D"]["max_score"]:
        return None, "该年度为直接判级的D级,修复后的级别须重新评价"
    pending = [lvl for lvl in ("A", "B", "C", "D") if bands[lvl]["review"]]
    if pending:
        return None, f"信用级别分数线({'、'.join(pending)}级)待复核"
    for lvl in ("A", "B", "C", "D"):
        low, high = bands[lvl]["min_score"], bands[lvl]["max_score"]
        if (low is None or score >= low) and (high is None or score < high):
            return lvl, ""
    return None, "得分不在任何级别的分数线内"


def propose(*, rating: CreditRating, indicator: str, path: str, failed_on: date, corrected_on: date,
            rules: dict | None = None, levels: dict[str, dict] | None = None) -> dict:
    """What the rules say the repair restores: the band the correction falls in, the points restored, the new
    score and level — each None where a rule it rests on awaits review, with `review` naming those rules."""
    rules = rules or repair_rules()
    points = float(rating.deductions.get(indicator, 0))
    correction, days = rules["correction"], (corrected_on - failed_on).days
    review: list[str] = []
    if path == "bankruptcy":
        band = correction["bands"][rules["bankruptcy"]["band"]]
        label = f"破产重整企业:按“{band['label']}”的标准"
        if rules["bankruptcy"]["review"]:
            review.append("破产重整企业的修复标准待复核")
    else:
        band = next(b for b in correction["bands"] if b["within_days"] is None or days <= b["within_days"])
        label = f"失信行为发生后第 {days} 日纠正:{band['label']}"
    if correction["review"]:
        review.append("修复加分标准(《纳税缴费信用修复范围及标准》)待复核")
    restored = score = level = None
    if not review and band["share"] is not None:
        restored = round(points * band["share"], 2)
        score = min(100.0, round(rating.score + restored, 2))
        level, why = level_for(score, rating.level, levels or level_rules())
        if why:
            review.append(why)
    return {"status": "computed" if level else "manual", "band": label, "days": days, "points": points,
            "restored": restored, "score": score, "level": level, "review": review,
            "reading": "" if not review else correction["note"]}


# --- who may --------------------------------------------------------------------------------------


def competent_unit(rating: CreditRating, path: str, rules: dict | None = None) -> Unit:
    """The unit that decides: the rating's own unit, or its parent where the rules send that kind there."""
    rules = rules or repair_rules()
    if rules["competent_unit"].get(path) == "parent" and rating.unit.parent is not None:
        return rating.unit.parent
    return rating.unit


def sees(actor: Actor, repair: CreditRepair) -> bool:
    """The applicant taxpayer itself, or an official whose subtree holds the deciding unit or the rating's."""
    if policy.is_taxpayer(actor):
        return allowed(actor, "credit.self") and actor.taxpayer_code == repair.credit_code
    return allowed(actor, "credit.view", repair.unit) or allowed(actor, "credit.view", repair.rating.unit)


def decide_refusal(actor: Actor, repair: CreditRepair) -> Exception | None:
    if refused := refusal(actor, "credit.repair.decide", repair.unit):
        return refused
    if repair.state != "pending":
        return RepairConflict(f"修复申请 {repair.id} 已于 {repair.decided_at:%Y-%m-%d} "
                              f"{REPAIR_STATES[repair.state]},不能再次核定")
    return None


def may_decide(actor: Actor, repair: CreditRepair) -> bool:
    return decide_refusal(actor, repair) is None


def listed_violators(session: Session, credit_code: str, today: date) -> list[Violator]:
    """The taxpayer's entries on the public list today, which an approved repair may take off early."""
    return list(session.scalars(select(Violator).options(joinedload(Violator.unit)).where(
        Violator.credit_code == credit_code, Violator.removed_on.is_(None), Violator.off_on > today)
        .order_by(Violator.id)))


# --- applying -------------------------------------------------------------------------------------


@dataclass
class Application:
    """What the applicant names: the year's rating and its failure (an indicator of its deductions), the path,
    when the obligation fell due and when and how it was corrected; for reorganisation, the court's ruling."""

    credit_code: str
    year: int
    indicator: str
    path: str
    failed_on: date
    corrected_on: date
    correction: str
    court: str = ""
    ruling_number: str = ""
    ruling_on: date | None = None
    uploads: list[tuple[str, str, bytes]] = field(default_factory=list)  # (kind, filename, data)


def check_uploads(uploads: list[tuple[str, str, bytes]], max_bytes: int) -> None:
    """Every file checked (kind, size, type by content) before anything is written."""
    if len(uploads) > MAX_FILES:
        raise CreditInvalid(f"佐证材料最多 {MAX_FILES} 个文件,收到 {len(uploads)} 个")
    problems = [problem for kind, name, data in uploads
                if (problem := (f"{name}:材料类别“{kind}”无效" if kind not in EVIDENCE_KINDS
                                else upload_problem(name, data, max_bytes)))]
    if problems:
        raise CreditInvalid(";".join(problems))


def due_date(session: Session, start: date, rules: dict | None = None) -> tuple[date | None, str]:
    """The day a decision is due, `decision_limit` working days after `start`, or (None, why not) when the
    calendar does not cover the days counted: never a date counted on weekends alone."""
    days = (rules or repair_rules())["decision_limit"]["working_days"]
    try:
        return configured_calendar(session).add_working_days(start, days), ""
    except CalendarNotCovered as exc:
        return None, str(exc)


def apply(*, session: Session, actor: Actor, application: Application, store: Path, max_bytes: int, today: date,
          rules: dict | None = None) -> CreditRepair:
    """File an application; refused whole (nothing written, no file kept) when anything is wrong."""
    authorize(actor, "credit.repair.apply")
    rules, a = rules or repair_rules(), application
    code = a.credit_code.strip().upper()
    if policy.is_taxpayer(actor) and actor.taxpayer_code != code:
        raise Forbidden("只能为您的账户绑定的纳税人申请信用修复")
    rating = session.scalar(select(CreditRating).options(joinedload(CreditRating.unit))
                            .where(CreditRating.credit_code == code, CreditRating.year == a.year))
    if rating is None:
        raise CreditNotFound(f"没有信用代码为 {code} 的 {a.year} 年度纳税缴费信用评价")
    if not policy.is_taxpayer(actor) and (refused := refusal(actor, "credit.repair.apply", rating.unit)):
        raise refused
    if a.path not in REPAIR_PATHS:
        raise CreditInvalid("修复类型应为“纠正失信行为后修复”或“破产重整企业修复”")
    if a.indicator not in rating.deductions:
        listed = "、".join(rating.deductions) or "(无)"
        raise CreditInvalid(f"{a.year} 年度评价没有“{a.indicator[:50]}”的扣分;可申请修复的扣分项:{listed}")
    correction = a.correction.strip()
    if not correction or len(correction) > 2000:
        raise CreditInvalid("请说明失信行为如何纠正(不超过 2000 字)")
    if a.failed_on.year != a.year:
        raise CreditInvalid(f"失信行为的应办日期 {a.failed_on} 不在 {a.year} 评价年度内")
    if a.corrected_on > today:
        raise CreditInvalid(f"纠正日期 {a.corrected_on} 晚于今天:请在纠正之后申请修复")
    if a.corrected_on < a.failed_on:
        raise CreditInvalid(f"纠正日期 {a.corrected_on} 早于失信行为的应办日期 {a.failed_on}")
    kinds = {kind for kind, _, _ in a.uploads}
    if a.path == "bankruptcy":
        if not a.court.strip() or not a.ruling_number.strip() or a.ruling_on is None:
            raise CreditInvalid("破产重整企业修复须写明作出裁定的人民法院、裁定书文号和裁定日期")
        if a.ruling_on > today:
            raise CreditInvalid(f"裁定日期 {a.ruling_on} 晚于今天")
        if a.failed_on >= a.ruling_on:
            raise CreditInvalid(f"失信行为发生在法院裁定批准重整计划({a.ruling_on})之后,不适用破产重整企业修复")
        if "ruling" not in kinds:
            raise CreditInvalid("破产重整企业修复须上传人民法院裁定批准重整计划的裁定书")
    elif "correction" not in kinds:
        raise CreditInvalid("请上传纠正失信行为的佐证材料(如补报的申报表、缴款凭证)")
    check_uploads(a.uploads, max_bytes)
    if session.scalar(select(CreditRepair.id).where(CreditRepair.rating_id == rating.id,
                                                    CreditRepair.indicator == a.indicator,
                                                    CreditRepair.state.in_(("pending", "approved")))):
        raise RepairConflict(f"{a.year} 年度“{a.indicator}”已有办理中或已通过的修复申请,不能重复申请")
    due, _ = due_date(session, today, rules)
    repair = CreditRepair(
        credit_code=code, name=rating.name, rating=rating, year=a.year, path=a.path, indicator=a.indicator,
        points=float(rating.deductions[a.indicator]), failed_on=a.failed_on, corrected_on=a.corrected_on,
        correction=correction, court=a.court.strip()[:200], ruling_number=a.ruling_number.strip()[:100],
        ruling_on=a.ruling_on if a.path == "bankruptcy" else None, unit=competent_unit(rating, a.path, rules),
        state="pending", applicant=actor.username, on_behalf=not policy.is_taxpayer(actor), applied_on=today,
        due_on=due, proposal=propose(rating=rating, indicator=a.indicator, path=a.path, failed_on=a.failed_on,
                                     corrected_on=a.corrected_on, rules=rules),
        score_before=rating.score, level_before=rating.level, reason="")
    session.add(repair)
    session.flush()
    for kind, name, data in a.uploads:
        kept = sniff(data)
        session.add(CreditRepairEvidence(repair_id=repair.id, kind=kind, sha256=store_after_commit(session, store, data),
                                         filename=safe_name(name, kept), content_type=TYPES[kept], size=len(data),
                                         uploaded_by=actor.username))
    session.flush()
    audit.record(session, actor=actor, action="credit.repair.applied", object_type="credit_repair", object_id=repair.id,
                 after={**_fields(repair), "files": [[e.kind, e.filename, e.sha256] for e in repair.evidence]})
    return repair


def _fields(r: CreditRepair) -> dict:
    return {"credit_code": r.credit_code, "year": r.year, "path": r.path, "indicator": r.indicator, "points": r.points,
            "failed_on": str(r.failed_on), "corrected_on": str(r.corrected_on), "unit": r.unit.code, "state": r.state,
            "due_on": str(r.due_on) if r.due_on else None, "proposal": r.proposal, "ruling": r.ruling_number or None,
            "before": [r.level_before, r.score_before], "after": [r.level_after, r.score_after], "reason": r.reason}


# --- reading --------------------------------------------------------------------------------------


def get_repair(*, session: Session, actor: Actor, repair_id: int, lock: bool = False) -> CreditRepair:
    """An application for its applicant taxpayer or an official of its units; anyone else is told there is none."""
    if not (allowed(actor, "credit.view") or allowed(actor, "credit.self")):
        authorize(actor, "credit.view")
    query = (select(CreditRepair).options(joinedload(CreditRepair.unit), joinedload(CreditRepair.rating)
                                          .joinedload(CreditRating.unit)).where(CreditRepair.id == repair_id))
    repair = session.scalar(query.with_for_update(of=CreditRepair) if lock else query)
    if repair is None or not sees(actor, repair):
        raise CreditNotFound(f"没有编号为 {repair_id} 的信用修复申请")
    return repair


def list_repairs(*, session: Session, actor: Actor, state: str = "", path: str = "", q: str = "",
                 overdue: bool = False, today: date, page: int = 1, per_page: int = 50) -> Page[CreditRepair]:
    """The applications decided in the actor's subtree: pending first, soonest due first (those whose due day the
    calendar cannot yet count after them), then the decided, newest first.

    The two parts are read apart, each in an order an index gives: sorting a national queue (200,000
    applications) by “pending first” on every page took seconds; the pending part is small, the decided part is
    read newest first by its id."""
    authorize(actor, "credit.view")
    query = _queue(actor, state, path, q, overdue, today)
    if state == "pending" or overdue:
        return paginate(session, query.order_by(*PENDING_ORDER), page, per_page)
    pending = query.where(CreditRepair.state == "pending")
    states = query.with_only_columns(CreditRepair.state).subquery()
    counted = session.execute(select(func.count(), func.count().filter(states.c.state == "pending"))).one()
    total, waiting = counted[0] or 0, counted[1] or 0
    decided = query.where(CreditRepair.state != "pending").order_by(CreditRepair.id.desc())
    return paginate_parts(session, [(pending.order_by(*PENDING_ORDER), waiting), (decided, total - waiting)], page,
                          per_page)


# Soonest due first, a due day the calendar cannot count yet after them; on one day the latest application first.
PENDING_ORDER = (case((CreditRepair.due_on.is_(None), 1), else_=0), CreditRepair.due_on, CreditRepair.id.desc())


def _queue(actor: Actor, state: str, path: str, q: str, overdue: bool, today: date) -> Select:
    query = (select(CreditRepair).join(CreditRepair.unit).options(joinedload(CreditRepair.unit))
             .where(subtree_filter(actor)))
    if state in REPAIR_STATES:
        query = query.where(CreditRepair.state == state)
    if path in REPAIR_PATHS:
        query = query.where(CreditRepair.path == path)
    if q := q.strip():
        query = query.where(or_(CreditRepair.name.contains(q, autoescape=True),
                                CreditRepair.credit_code.startswith(q.upper(), autoescape=True)))
    if overdue:
        query = query.where(CreditRepair.state == "pending", CreditRepair.due_on < today)
    return query


def own_repairs(*, session: Session, actor: Actor) -> list[CreditRepair]:
    """The applications of the taxpayer the account is bound to, newest first."""
    authorize(actor, "credit.self")
    if not actor.taxpayer_code:
        raise CreditNotFound("您的账户没有绑定纳税人,无法申请或查看信用修复")
    return list(session.scalars(select(CreditRepair).options(joinedload(CreditRepair.unit))
                                .where(CreditRepair.credit_code == actor.taxpayer_code)
                                .order_by(CreditRepair.id.desc())))


def repairable(*, session: Session, actor: Actor, credit_code: str) -> list[CreditRating]:
    """The years of a taxpayer's register with deductions a repair can name, for the application form."""
    authorize(actor, "credit.repair.apply")
    code = credit_code.strip().upper()
    if policy.is_taxpayer(actor) and actor.taxpayer_code != code:
        raise Forbidden("只能为您的账户绑定的纳税人申请信用修复")
    ratings = session.scalars(select(CreditRating).options(joinedload(CreditRating.unit))
                              .where(CreditRating.credit_code == code).order_by(CreditRating.year.desc()))
    return [r for r in ratings if r.deductions and (policy.is_taxpayer(actor)
                                                    or allowed(actor, "credit.repair.apply", r.unit))]


def open_evidence(*, session: Session, actor: Actor, evidence_id: int, store: Path) -> tuple[Path, CreditRepairEvidence]:
    evidence = session.get(CreditRepairEvidence, evidence_id)
    if evidence is None:
        raise CreditNotFound(f"没有编号为 {evidence_id} 的佐证材料")
    get_repair(session=session, actor=actor, repair_id=evidence.repair_id)  # authorises the read
    path = stored_path(store, evidence.sha256)
    if not path.exists():
        raise CreditNotFound(f"佐证材料 {evidence.filename} 的文件已不在存储中")
    return path, evidence


# --- deciding -------------------------------------------------------------------------------------


def decide(*, session: Session, actor: Actor, repair_id: int, approve: bool, reason: str, today: date,
           score: float | None = None, level: str = "", take_off_list: bool = False,
           rules: dict | None = None) -> CreditRepair:
    """Approve (with the restored score and level: the proposal's where the rules confirm it, else the official's)
    or refuse, with a reason. An approval writes the rating's restored values; with `take_off_list` (or where the
    rules make it automatic) the taxpayer's entries on the major-violator list come off early."""
    authorize(actor, "credit.repair.decide")
    rules = rules or repair_rules()
    repair = get_repair(session=session, actor=actor, repair_id=repair_id, lock=True)
    if refused := decide_refusal(actor, repair):
        raise refused
    reason = reason.strip()
    if not reason or len(reason) > 2000:
        raise CreditInvalid("请写明核定理由(不超过 2000 字)")
    before = _fields(repair)
    repair.decided_by, repair.decided_at, repair.reason = actor.username, utcnow(), reason
    if not approve:
        repair.state = "refused"
        audit.record(session, actor=actor, action="credit.repair.refused", object_type="credit_repair",
                     object_id=repair.id, before=before, after=_fields(repair))
        return repair
    rating = session.get(CreditRating, repair.rating_id, with_for_update=True)
    if (rating.score, rating.level) != (repair.score_before, repair.level_before):
        raise RepairConflict(f"{repair.year} 年度评价在申请后已变更(现为 {rating.level}级 {rating.score:g} 分),"
                             "请退回后由申请人按现行评价重新申请")
    proposal = repair.proposal
    if score is None and not level and proposal.get("status") == "computed":
        score, level = proposal["score"], proposal["level"]
    if score is None or level not in LEVELS:
        raise CreditInvalid(f"修复标准{REVIEW}:请填写核定的修复后得分和信用级别(A、B、M、C、D)")
    if not repair.score_before <= score <= min(100.0, repair.score_before + repair.points):
        raise CreditInvalid(f"修复后得分应在 {repair.score_before:g} 与 {min(100.0, repair.score_before + repair.points):g} "
                            f"之间:修复只能恢复“{repair.indicator}”扣除的 {repair.points:g} 分")
    violators = listed_violators(session, repair.credit_code, today)
    removing = violators if (take_off_list or rules["violator_removal"]["automatic"]) else []
    if take_off_list and not violators:
        raise CreditInvalid(f"{repair.name} 不在重大税收违法失信主体公布名单上")
    for v in removing:
        if not policy.may_remove(actor, v):
            raise Forbidden(f"您无权将“{v.name}”撤出公布名单:须由公布单位或其上级的名单管理人员办理")
    rating_before = {"level": rating.level, "score": rating.score, "deductions": dict(rating.deductions)}
    restored = round(score - rating.score, 2)
    left = round(rating.deductions[repair.indicator] - restored, 2) if repair.indicator in rating.deductions else 0
    rating.deductions = {k: (left if k == repair.indicator else v) for k, v in rating.deductions.items()
                         if k != repair.indicator or left > 0}
    rating.score, rating.level = score, level
    repair.state, repair.score_after, repair.level_after = "approved", score, level
    for v in removing:
        remove_violator(session=session, actor=actor, violator_id=v.id, reason="repaired",
                        note=f"信用修复申请 {repair.id} 核定通过:{reason}"[:2000], today=today)
        repair.violator_id = v.id
    audit.record(session, actor=actor, action="credit.rating.repaired", object_type="credit_rating",
                 object_id=rating.id, before=rating_before,
                 after={"level": level, "score": score, "deductions": rating.deductions, "repair": repair.id})
    audit.record(session, actor=actor, action="credit.repair.approved", object_type="credit_repair",
                 object_id=repair.id, before=before, after=_fields(repair))
    return repair



def history_context(session: Session, actor: Actor, ratings: list[CreditRating]) -> dict:
    """For a taxpayer's credit page: the repairs of the years shown (each approved one the history row of a
    change to its year), and whether the viewer may apply."""
    repairs = list(session.scalars(select(CreditRepair).where(CreditRepair.rating_id.in_([r.id for r in ratings]))
                                   .order_by(CreditRepair.id.desc()))) if ratings else []
    may_apply = bool(ratings) and (allowed(actor, "credit.repair.apply") and (
        actor.taxpayer_code == ratings[0].credit_code if policy.is_taxpayer(actor)
        else any(allowed(actor, "credit.repair.apply", r.unit) for r in ratings)))
    return {"repairs": repairs, "repair_states": REPAIR_STATES, "may_apply": may_apply}
