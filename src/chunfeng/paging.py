"""One page of a list: every list in Chunfeng paginates the same way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import Select, func, literal, select, tuple_
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


def paginate_parts(session: Session, parts: list[tuple[Select, int]], page: int, per_page: int) -> Page:
    """One page of several ordered queries' rows, read one part after the other, given how many rows each part has:
    a list whose order no index gives whole (pending first, then the decided) is served by parts an index orders."""
    offset, items = (page - 1) * per_page, []
    for query, count in parts:
        if len(items) == per_page:
            break
        if offset >= count:
            offset -= count
            continue
        items += session.scalars(query.offset(offset).limit(per_page - len(items)))
        offset = 0
    return Page(items, sum(count for _, count in parts), page, per_page)


@dataclass
class Slice(Generic[T]):
    """One page of a list walked by keyset (newest first): `next` and `previous` are the cursors of the pages beside
    it (None at either end); `total` is exact when `total_exact`, else only known to exceed it (counting a national
    list on every page is what made its pages slow)."""

    items: list[T]
    per_page: int
    total: int
    total_exact: bool
    next: tuple | None
    previous: tuple | None


def keyset(session: Session, query: Select, keys: tuple, key_of, *, after: tuple | None = None,
           before: tuple | None = None, per_page: int, count_limit: int = 10_000) -> Slice:
    """The page of `query` (filtered, not ordered) that follows `after` or precedes `before` in descending order of
    the `keys` columns (the last one unique, e.g. the id), read from an index on them at any depth: no OFFSET.
    `key_of(item)` gives an item's key values. The total is counted only up to `count_limit` rows."""
    key = tuple_(*keys)
    if before is not None:  # walk back: the rows just above the cursor, ascending, then put newest first again
        rows = list(session.scalars(query.where(key > tuple_(*map(literal, before)))
                                    .order_by(*(k.asc() for k in keys)).limit(per_page + 1)))
        more_before, items = len(rows) > per_page, rows[:per_page][::-1]
        previous = key_of(items[0]) if more_before else None
        following = key_of(items[-1]) if items else None
    else:
        if after is not None:
            query_page = query.where(key < tuple_(*map(literal, after)))
        else:
            query_page = query
        rows = list(session.scalars(query_page.order_by(*(k.desc() for k in keys)).limit(per_page + 1)))
        items = rows[:per_page]
        following = key_of(items[-1]) if len(rows) > per_page else None
        previous = key_of(items[0]) if after is not None and items else None
        if after is None and following is None:  # the first page is the whole list: counted already
            return Slice(items, per_page, len(items), True, None, None)
    counted = session.scalar(select(func.count()).select_from(query.order_by(None).limit(count_limit + 1).subquery())) or 0
    return Slice(items, per_page, min(counted, count_limit), counted <= count_limit, following, previous)
