"""The shipped starter knowledge base against the law in force: time-bound entries, replaced entries, the
repealed VAT regulations and credit rules, and the everyday questions it must answer."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest

from chunfeng.consult import services, transfer

STARTER = json.loads(transfer.starter_path().read_text(encoding="utf-8"))["entries"]
BY_KEY = {e["id"]: e for e in STARTER}


@pytest.fixture
def starter(with_plan, system):
    with with_plan.write() as s:
        transfer.load_starter(session=s, actor=system)
    return with_plan


def top(db, query, day):
    with db.read() as s:
        return services.ask(session=s, query=query, today=day, log=False).hits[0]


def test_an_entry_that_states_its_end_answers_through_that_day_and_after_it_only_as_past(starter):
    on_the_day = top(starter, "2023年生活性服务业增值税加计抵减比例是多少", date(2023, 12, 31))
    assert on_the_day.doc.ref == "kb-0100" and on_the_day.current
    after = top(starter, "2023年生活性服务业增值税加计抵减比例是多少", date(2026, 12, 6))
    assert after.doc.ref == "kb-0100" and not after.current  # answers, saying it is past
    with starter.read() as s:
        answer = services.ask(session=s, query="2021年小规模纳税人月销售额15万元以下免征增值税吗", today=date(2026, 12, 6),
                              log=False).as_dict()
    past = [a for a in answer["answers"] if a["id"] == "kb-0102"]
    assert past and past[0]["current"] is False and past[0]["effective_until"] == "2022-12-31"


def test_no_entry_says_it_has_ended_in_its_own_words():
    # "该政策已于…到期" is true only after the end date, when the page says so from the dates itself.
    assert [e["id"] for e in STARTER if re.search(r"已于.{0,12}到期", e["answer"])] == []


def test_every_entry_stating_a_time_bound_relief_has_its_end_date():
    bound = re.compile(r"(?:执行至|延续执行至|至)(20\d\d)年(\d{1,2})月(\d{1,2})日")
    missing = [e["id"] for e in STARTER if bound.search(e["answer"]) and not e["effective_until"]]
    assert missing == []
