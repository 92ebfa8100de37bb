"""Top questions, rising questions and knowledge-base gaps over a real query log."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import update

from chunfeng.consult import analytics, services
from chunfeng.consult.models import ConsultQuery
from chunfeng.org.errors import Forbidden
from tests.conftest import person
from tests.consult.test_services import kb  # noqa: F401  (the fixture)


def ask_on(db, day: date, text: str, times: int = 1, channel: str = "web", helpful: bool | None = None):
    for _ in range(times):
        with db.write() as s:
            answer = services.ask(session=s, query=text, channel=channel, today=date(2024, 5, 1))
            s.execute(update(ConsultQuery).where(ConsultQuery.id == answer.query_id).values(at=datetime(day.year, day.month, day.day, 10)))
            if helpful is not None:
                services.give_feedback(session=s, query_id=answer.query_id, token=answer.token, helpful=helpful)


def test_report(kb):  # noqa: F811
    ask_on(kb, date(2024, 4, 10), "个税汇算什么时候办", times=1)          # previous period
    ask_on(kb, date(2024, 5, 10), "个税汇算什么时候办", times=3, helpful=True)
    ask_on(kb, date(2024, 5, 11), "小规模交增值税几个点", times=2, channel="api")
    ask_on(kb, date(2024, 4, 12), "小规模交增值税几个点", times=4)
    ask_on(kb, date(2024, 5, 12), "我家小狗的疫苗怎么打")
    ask_on(kb, date(2024, 5, 13), "小狗的疫苗在哪里打")
    ask_on(kb, date(2024, 5, 14), "火星上的天气冷不冷")
    with kb.read() as s:
        r = analytics.report(session=s, actor=person(s, "agent"),
                             filters=analytics.Filters(date(2024, 5, 1), date(2024, 5, 31)))
    assert (r.total, r.handoffs) == (8, 3) and r.by_channel == {"web": 6, "api": 2}
    top = {row.ref: row for row in r.top}
    assert top["kb-0001"].count == 3 and top["kb-0001"].previous == 1 and top["kb-0001"].helpful == 3
    assert [row.ref for row in r.rising][0] == "kb-0001" and "kb-0002" not in [row.ref for row in r.rising]
    dogs = next(g for g in r.gaps if "小狗" in g.example)
    assert dogs.count == 2 and len(r.gaps) == 2  # the two dog questions together, Mars apart
    with kb.read() as s:
        api_only = analytics.report(session=s, actor=person(s, "agent"),
                                    filters=analytics.Filters(date(2024, 5, 1), date(2024, 5, 31), channel="api"))
        assert api_only.total == 2
        with pytest.raises(Forbidden):
            analytics.report(session=s, actor=person(s, "viewer"), filters=analytics.Filters(date(2024, 5, 1), date(2024, 5, 31)))


def test_most_handed_off_questions_word_for_word(kb):  # noqa: F811
    ask_on(kb, date(2024, 5, 10), "火星上的天气冷不冷", times=3)
    ask_on(kb, date(2024, 5, 11), "火星上的天气  冷不冷")  # the same words, spaced differently
    ask_on(kb, date(2024, 5, 12), "我家小狗的疫苗怎么打")
    ask_on(kb, date(2024, 5, 12), "个税汇算什么时候办")  # answered: not a hand-off
    with kb.read() as s:
        r = analytics.report(session=s, actor=person(s, "agent"), filters=analytics.Filters(date(2024, 5, 1), date(2024, 5, 31)))
    assert [(h.question, h.count) for h in r.handed_off] == [("火星上的天气冷不冷", 4), ("我家小狗的疫苗怎么打", 1)]
