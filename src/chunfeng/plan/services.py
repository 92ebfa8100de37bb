"""Operations on the plan: import a notice, read and search it. The caller owns the transaction."""

from __future__ import annotations

import hashlib
from importlib import resources

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from chunfeng.org import audit
from chunfeng.org.access import Actor, authorize
from chunfeng.paging import Page, paginate
from chunfeng.plan.errors import PlanExists, PlanNotFound
from chunfeng.plan.models import PlanCategory, PlanItem, PlanMeasure, PlanNotice
from chunfeng.plan.parser import Notice, parse_notice


def shipped_notice() -> bytes:
    """The 2022 notice as scraped, shipped with the package so a clone alone runs the demo."""
    return resources.files("chunfeng.plan").joinpath("data/shuizong_nafuhan_2022_32.txt").read_bytes()


def _summary(notice: PlanNotice | Notice) -> dict:
    measures = [m for c in notice.categories for i in c.items for m in i.measures]
    return {"doc_number": notice.doc_number, "title": notice.title, "categories": len(notice.categories),
            "items": sum(len(c.items) for c in notice.categories), "measures": len(measures)}


def import_notice(*, session: Session, actor: Actor, data: bytes, source_name: str = "",
                  replace: bool = False) -> PlanNotice:
    """Parse and store a notice. Refused if its document number is already stored, unless `replace`.

    Replacing updates the stored plan in place, by category, item and measure number, so that
    what refers to a measure keeps referring to it.
    """
    authorize(actor, "plan.import")
    parsed = parse_notice(data)
    stored = session.scalar(select(PlanNotice).where(PlanNotice.doc_number == parsed.doc_number))
    if stored is not None and not replace:
        raise PlanExists(f"通知 {parsed.doc_number} 已于 {stored.imported_at:%Y-%m-%d %H:%M} 由 {stored.imported_by} "
                         f"导入,未作任何改动;如需用新文件覆盖,请加 --replace")
    before = _summary(stored) if stored is not None else None
    notice = stored or PlanNotice(doc_number=parsed.doc_number)
    notice.title, notice.issued = parsed.title, parsed.issued
    notice.source_name = source_name[:200]
    notice.source_sha256 = hashlib.sha256(data).hexdigest()
    notice.imported_by = actor.username
    if stored is None:
        session.add(notice)
    session.flush()
    _store_structure(session, notice, parsed)
    audit.record(session, actor=actor, action="plan.notice.replaced" if stored else "plan.notice.imported",
                 object_type="plan_notice", object_id=notice.doc_number, before=before,
                 after=_summary(parsed) | {"sha256": notice.source_sha256})
    return notice


def _store_structure(session: Session, notice: PlanNotice, parsed: Notice) -> None:
    categories = {c.no: c for c in session.scalars(select(PlanCategory).where(PlanCategory.notice_id == notice.id))}
    items = {i.no: i for i in session.scalars(select(PlanItem).where(PlanItem.notice_id == notice.id))}
    measures = {m.no: m for m in session.scalars(select(PlanMeasure).where(PlanMeasure.notice_id == notice.id))}
    new_by_row = {n.table_no: n for n in parsed.new_measures}
    seen_c, seen_i, seen_m = set(), set(), set()
    for c in parsed.categories:
        category = categories.get(c.no) or PlanCategory(notice_id=notice.id, no=c.no)
        category.name, category.stated_items, category.stated_measures = c.name, c.stated_items, c.stated_measures
        session.add(category)
        session.flush()
        seen_c.add(c.no)
        for i in c.items:
            item = items.get(i.no) or PlanItem(notice_id=notice.id, no=i.no)
            item.category_id, item.name = category.id, i.name
            session.add(item)
            session.flush()
            seen_i.add(i.no)
            for m in i.measures:
                measure = measures.get(m.no) or PlanMeasure(notice_id=notice.id, no=m.no)
                measure.item_id, measure.text = item.id, m.text
                new = new_by_row.get(m.no)
                measure.new_no = new.no if new else None
                measure.new_group = new.group if new else None
                measure.new_title = new.title if new else None
                measure.new_text = new.text if new else None
                session.add(measure)
                seen_m.add(m.no)
    session.flush()
    for table, seen in ((measures, seen_m), (items, seen_i), (categories, seen_c)):
        for no, row in table.items():
            if no not in seen:
                session.delete(row)
    session.flush()


def any_notice():
    return select(PlanNotice.id).limit(1)


def latest_notice_id():
    """The newest imported notice's id, as a subquery: the action being run."""
    return select(PlanNotice.id).order_by(PlanNotice.issued.desc(), PlanNotice.id.desc()).limit(1).scalar_subquery()


def current_notice(*, session: Session, actor: Actor) -> PlanNotice:
    """The newest imported notice: the action being run."""
    authorize(actor, "plan.view")
    notice = session.scalar(select(PlanNotice).where(PlanNotice.id == latest_notice_id()))
    if notice is None:
        raise PlanNotFound("尚未导入任何通知;请先运行 chunfeng plan import 通知文件")
    return notice


def plan_tree(*, session: Session, notice: PlanNotice) -> list[PlanCategory]:
    """Categories with their items and measures, loaded in three queries."""
    return list(session.scalars(
        select(PlanCategory).where(PlanCategory.notice_id == notice.id).order_by(PlanCategory.no)
        .options(selectinload(PlanCategory.items).selectinload(PlanItem.measures))))


def get_item(*, session: Session, notice: PlanNotice, no: int) -> PlanItem:
    item = session.scalar(select(PlanItem).where(PlanItem.notice_id == notice.id, PlanItem.no == no)
                          .options(selectinload(PlanItem.measures)))
    if item is None:
        raise PlanNotFound(f"没有第 {no} 项任务事项")
    return item


def measure_count(*, session: Session, notice: PlanNotice) -> int:
    return session.scalar(select(func.count()).select_from(PlanMeasure).where(PlanMeasure.notice_id == notice.id)) or 0


def get_measure(*, session: Session, notice: PlanNotice, no: int) -> PlanMeasure:
    measure = session.scalar(select(PlanMeasure).where(PlanMeasure.notice_id == notice.id, PlanMeasure.no == no))
    if measure is None:
        raise PlanNotFound(f"没有序号为 {no} 的具体措施")
    return measure


def search_measures(*, session: Session, notice: PlanNotice, query: str = "", new_only: bool = False,
                    page: int = 1, per_page: int = 20) -> Page[PlanMeasure]:
    """Measures whose text, new-measure title, item or category holds every word of `query`."""
    where = [PlanMeasure.notice_id == notice.id]
    if new_only:
        where.append(PlanMeasure.new_no.is_not(None))
    for word in query.split():
        # A bare number is a 序号 or part of the text ("12366").
        by_number = [PlanMeasure.no == int(word)] if word.isdigit() and len(word) <= 4 else []
        where.append(or_(*by_number, PlanMeasure.text.contains(word, autoescape=True),
                         PlanMeasure.new_title.contains(word, autoescape=True),
                         PlanItem.name.contains(word, autoescape=True),
                         PlanCategory.name.contains(word, autoescape=True)))
    base = select(PlanMeasure).join(PlanMeasure.item).join(PlanItem.category).where(*where)
    return paginate(session, base.order_by(PlanMeasure.no), page, per_page)


def notice_as_dict(*, session: Session, notice: PlanNotice) -> dict:
    """The stored plan in the shape `chunfeng plan parse --json` prints."""
    tree = plan_tree(session=session, notice=notice)
    new = sorted((m for c in tree for i in c.items for m in i.measures if m.is_new), key=lambda m: m.new_no)
    return {
        "title": notice.title, "doc_number": notice.doc_number, "issued": notice.issued.isoformat(),
        "categories": [{"no": c.no, "name": c.name, "stated_items": c.stated_items, "stated_measures": c.stated_measures,
                        "items": [{"no": i.no, "name": i.name,
                                   "measures": [{"no": m.no, "text": m.text} for m in i.measures]} for i in c.items]}
                       for c in tree],
        "new_measures": [{"no": m.new_no, "group": m.new_group, "title": m.new_title, "text": m.new_text,
                          "table_no": m.no} for m in new],
    }


def plan_rows(*, session: Session, notice: PlanNotice) -> list[list]:
    """The attachment table as rows (序号, 任务类别, 任务事项, 具体措施, 新增措施) for export."""
    return [[m.no, c.name, i.name, m.text, f"新增第{m.new_no}条" if m.is_new else ""]
            for c in plan_tree(session=session, notice=notice) for i in c.items for m in i.measures]
