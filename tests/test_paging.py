"""The count-then-page helper: the count and the page come from the same query, whatever it joins."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import aliased

from chunfeng.org.models import Unit
from chunfeng.paging import paginate


def test_paginate_counts_and_pages_the_same_query(db):
    provinces = select(Unit).where(Unit.level == "province").order_by(Unit.code)
    with db.read() as s:
        everything = list(s.scalars(provinces))
        first, last = paginate(s, provinces, 1, 10), paginate(s, provinces, 4, 10)
        beyond = paginate(s, provinces, 9, 10)
        parent = aliased(Unit)
        joined = paginate(s, select(Unit).join(parent, Unit.parent_id == parent.id)
                          .where(Unit.level == "province", parent.level == "national").order_by(Unit.code), 1, 5)
    assert len(everything) == 36 and first.total == last.total == 36 and first.pages == 4
    assert first.items == everything[:10] and last.items == everything[30:]
    assert beyond.items == [] and beyond.total == 36
    assert joined.total == 36 and [u.code for u in joined.items] == [u.code for u in everything[:5]]
