from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chunfeng.ledger.errors import LedgerInvalid
from chunfeng.ledger.periods import period_bounds, period_of


def test_keys():
    day = date(2022, 5, 17)
    assert period_of(day, "monthly") == "2022-05"
    assert period_of(day, "quarterly") == "2022-Q2"
    assert period_of(day, "weekly") == "2022-W20"
    assert period_of(date(2022, 1, 2), "weekly") == "2021-W52"  # ISO weeks belong to the year of their Thursday


def test_bounds():
    assert period_bounds("2022-02", "monthly") == (date(2022, 2, 1), date(2022, 2, 28))
    assert period_bounds("2022-Q4", "quarterly") == (date(2022, 10, 1), date(2022, 12, 31))
    assert period_bounds("2022-W20", "weekly") == (date(2022, 5, 16), date(2022, 5, 22))


@pytest.mark.parametrize("key, cycle", [("2022-13", "monthly"), ("2022-5", "monthly"), ("2022-Q5", "quarterly"),
                                        ("2022-W54", "weekly"), ("2022-05", "weekly"), ("", "monthly")])
def test_bad_keys(key, cycle):
    with pytest.raises(LedgerInvalid, match="报告期"):
        period_bounds(key, cycle)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)), st.sampled_from(["weekly", "monthly", "quarterly"]))
def test_every_day_lies_in_its_period(day, cycle):
    start, end = period_bounds(period_of(day, cycle), cycle)
    assert start <= day <= end
