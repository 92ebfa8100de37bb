"""Tables of the plan: a notice, its categories, items and measures."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from chunfeng.db import Base, utcnow


class PlanNotice(Base):
    """An imported notice such as 税总纳服函〔2022〕32号: the action it launches."""

    __tablename__ = "plan_notice"

    id: Mapped[int] = mapped_column(primary_key=True)
    doc_number: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    issued: Mapped[date] = mapped_column(Date)
    source_name: Mapped[str] = mapped_column(String(200), default="")
    source_sha256: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    imported_by: Mapped[str] = mapped_column(String(64))

    categories: Mapped[list[PlanCategory]] = relationship(
        back_populates="notice", order_by="PlanCategory.no", cascade="all, delete-orphan")


class PlanCategory(Base):
    __tablename__ = "plan_category"
    __table_args__ = (UniqueConstraint("notice_id", "no"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("plan_notice.id", ondelete="CASCADE"), index=True)
    no: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    stated_items: Mapped[int] = mapped_column(Integer)
    stated_measures: Mapped[int] = mapped_column(Integer)

    notice: Mapped[PlanNotice] = relationship(back_populates="categories")
    items: Mapped[list[PlanItem]] = relationship(
        back_populates="category", order_by="PlanItem.no", cascade="all, delete-orphan")


class PlanItem(Base):
    """任务事项, numbered 1–20 across the whole plan."""

    __tablename__ = "plan_item"
    __table_args__ = (UniqueConstraint("notice_id", "no"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("plan_notice.id", ondelete="CASCADE"), index=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("plan_category.id", ondelete="CASCADE"), index=True)
    no: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))

    category: Mapped[PlanCategory] = relationship(back_populates="items")
    measures: Mapped[list[PlanMeasure]] = relationship(
        back_populates="item", order_by="PlanMeasure.no", cascade="all, delete-orphan")


class PlanMeasure(Base):
    """具体措施, numbered by its 序号 in the attachment table. A new measure of section 一 also
    carries its number, group and title there."""

    __tablename__ = "plan_measure"
    __table_args__ = (UniqueConstraint("notice_id", "no"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("plan_notice.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("plan_item.id", ondelete="CASCADE"), index=True)
    no: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    new_no: Mapped[int | None] = mapped_column(Integer)
    new_group: Mapped[int | None] = mapped_column(Integer)
    new_title: Mapped[str | None] = mapped_column(String(200))
    new_text: Mapped[str | None] = mapped_column(Text)

    item: Mapped[PlanItem] = relationship(back_populates="measures", lazy="joined")

    @property
    def is_new(self) -> bool:
        return self.new_no is not None
