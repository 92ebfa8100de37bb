"""One page of a list: every list in Chunfeng paginates the same way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[T]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


def clamp_page(page: int, per_page: int, *, max_per_page: int = 200) -> tuple[int, int]:
    return max(1, page), min(max(1, per_page), max_per_page)


def paginate(session: Session, query: Select, page: int, per_page: int) -> Page:
    """One page of `query`'s rows (in its order) and how many rows it has in all: the count and the page from the
    same query, so the two can never disagree about what the list holds."""
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    items = list(session.scalars(query.offset((page - 1) * per_page).limit(per_page)))
    return Page(items, total, page, per_page)
