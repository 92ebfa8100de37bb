"""The working-day calendar on the shipped holiday file, and the monthly filing deadlines computed from it."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from chunfeng.workdays import WorkCalendar, filing_deadline, filing_period, load_calendar

D = date.fromisoformat


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    return load_calendar()


@pytest.mark.parametrize(
    ("day", "working"),
    [
        ("2022-01-28", True),  # Friday before the Spring Festival
        ("2022-01-29", True),  # Saturday worked in lieu
        ("2022-01-30", True),  # Sunday worked in lieu
        ("2022-01-31", False),  # Monday, first day of the Jan 31-Feb 6 break
        ("2022-02-04", False),  # Friday inside the break
        ("2022-02-06", False),  # Sunday, last day of the break
        ("2022-02-07", True),  # Monday after
        ("2022-01-03", False),  # Monday, New Year's third day off
        ("2022-04-02", True),  # Saturday worked for 清明
        ("2022-04-24", True),  # Sunday worked for 劳动节
        ("2022-05-07", True),  # Saturday worked for 劳动节
        ("2022-05-08", False),  # an ordinary Sunday
        ("2022-10-08", True),  # Saturday worked for 国庆
        ("2022-10-09", True),  # Sunday worked for 国庆
        ("2021-10-01", True),  # a Friday outside the shipped years: only weekends are days off there
    ],
)
def test_is_working_day(cal, day, working):
    assert cal.is_working_day(D(day)) is working


def test_next_working_day(cal):
    assert cal.next_working_day(D("2022-01-29")) == D("2022-01-29")  # a make-up Saturday is itself
    assert cal.next_working_day(D("2022-01-31")) == D("2022-02-07")  # Jan 31-Feb 6 off


def test_add_working_days_across_national_day_2022(cal):
    # Oct 1-7 off, Oct 8 (Sat) and Oct 9 (Sun) worked.
    assert cal.add_working_days(D("2022-09-30"), 0) == D("2022-09-30")
    assert cal.add_working_days(D("2022-10-01"), 0) == D("2022-10-08")
    assert cal.add_working_days(D("2022-09-30"), 1) == D("2022-10-08")
    # Sep 29 (1), Sep 30 (2), Oct 8 (3), Oct 9 (4), Oct 10 (5)
    assert cal.add_working_days(D("2022-09-28"), 5) == D("2022-10-10")
    # Oct 10-14 (5), Oct 17-21 (10)
    assert cal.add_working_days(D("2022-10-09"), 10) == D("2022-10-21")
    with pytest.raises(ValueError, match="n must be >= 0"):
        cal.add_working_days(D("2022-10-01"), -1)


def test_working_days_between(cal):
    assert cal.working_days_between(D("2022-09-30"), D("2022-10-10")) == 3  # Oct 8, 9, 10
    assert cal.working_days_between(D("2022-01-28"), D("2022-02-07")) == 3  # Jan 29, Jan 30, Feb 7
    assert cal.working_days_between(D("2022-10-10"), D("2022-10-10")) == 0
    with pytest.raises(ValueError, match="before start"):
        cal.working_days_between(D("2022-10-10"), D("2022-10-09"))
    # The two functions agree: counting (start, start + n working days] gives back n, on every start of 2022.
    start = D("2022-01-01")
    while start.year == 2022:
        for n in (1, 3, 10):
            assert cal.working_days_between(start, cal.add_working_days(start, n)) == n
        start += timedelta(days=1)


def test_shipped_file_has_each_notices_days_off():
    # Days off per notice: 2022 3+7+3+5+3+3+7, 2023 3+7+1+5+3+8, 2024 1+8+3+5+1+3+7, 2025 1+8+3+5+3+8.
    raw = json.loads((Path(__file__).parent.parent / "src/chunfeng/data/holidays.json").read_text(encoding="utf-8"))
    assert {y: len(v["holidays"]) for y, v in raw["years"].items()} == {"2022": 31, "2023": 27, "2024": 28, "2025": 28}


# 2022 by hand (extension n = days off in runs of 3+ inside days 1..15; deadline = n-th working day after the 15th):
#  1: Jan 1-3 off (3); 15th is a Sat; Jan 17, 18, 19                      -> 19
#  2: Jan 31-Feb 6 run, Feb 1-6 inside (6); Feb 16, 17, 18, 21, 22, 23    -> 23
#  3: nothing; 15th a Tue                                                 -> 15
#  4: Apr 3-5 (3); 15th a Fri; Apr 18, 19, 20                             -> 20
#  5: Apr 30-May 4 run, May 1-4 inside (4); 15th a Sun; May 16-19         -> 19
#  6: Jun 3-5 (3); Jun 16, 17, 20                                         -> 20
#  9: Sep 10-12 (3); Sep 16, 19, 20                                       -> 20
# 10: Oct 1-7 (7); 15th a Sat; Oct 17-21, 24, 25                          -> 25
# 7, 8, 11, 12: nothing, 15th a weekday                                   -> 15
# These are also the dates the STA published (税总办征科函〔2021〕201号), as are the other years below
# (2023 税总办征科函〔2022〕245号, 2024 the STA table as republished, 2025 税总办征科函〔2024〕71号).
PUBLISHED = {
    2022: [19, 23, 15, 20, 19, 20, 15, 15, 20, 25, 15, 15],
    # Jan: 15th a Sun and Jan 1-2 are only 2 days of the New Year run -> 16; Apr/Jul: 15th a Sat -> 17;
    # May: May 1-3 inside (3) -> 18; Oct: Oct 1-6 inside (6), 15th a Sun -> 23.
    2023: [16, 15, 15, 17, 18, 15, 17, 15, 15, 23, 15, 15],
    # Jun: 端午 Jun 10 joined the weekend, Jun 8-10 (3), 15th a Sat -> 17, 18, 19;
    # Sep: Sep 15-17 off, only the 15th inside, so no extension, next working day -> 18.
    2024: [15, 23, 15, 18, 22, 19, 15, 15, 18, 24, 15, 16],
    2025: [15, 20, 17, 18, 22, 16, 15, 15, 15, 27, 17, 15],
}


@pytest.mark.parametrize("year", sorted(PUBLISHED))
def test_filing_deadlines_match_the_published_ones(cal, year):
    assert [filing_deadline(year, m, cal) for m in range(1, 13)] == [date(year, m, d) for m, d in enumerate(PUBLISHED[year], 1)]


def test_filing_deadline_cases_named(cal):
    assert filing_deadline(2022, 3, cal) == D("2022-03-15")  # no holiday, 15th a Tuesday
    assert filing_deadline(2023, 4, cal) == D("2023-04-17")  # 15th a Saturday, no long run
    assert filing_deadline(2022, 5, cal) == D("2022-05-19")  # 15th a Sunday and a long run
    assert filing_deadline(2022, 3, cal, day=10) == D("2022-03-10")  # a Thursday
    assert filing_period(2022, 10, cal) == (D("2022-10-01"), D("2022-10-25"))


def test_overrides_win(cal, tmp_path):
    assert filing_deadline(2022, 10, cal, overrides={"2022-10": D("2022-10-31")}) == D("2022-10-31")
    assert filing_deadline(2022, 11, cal, overrides={"2022-10": D("2022-10-31")}) == D("2022-11-15")
    # The file's overrides apply too, and the argument beats them.
    path = tmp_path / "cal.json"
    path.write_text(json.dumps({"years": {}, "filing_deadline_overrides": {"2022-10": "2022-10-28"}}))
    from_file = load_calendar(path)
    assert filing_deadline(2022, 10, from_file) == D("2022-10-28")
    assert filing_period(2022, 10, from_file, overrides={"2022-10": D("2022-10-31")}) == (D("2022-10-01"), D("2022-10-31"))


def test_user_file_replaces_the_shipped_one(tmp_path):
    path = tmp_path / "cal.json"
    path.write_text(json.dumps({"source": "test", "years": {"2022": {"holidays": ["2022-03-15"], "makeup_days": []}}}))
    cal = load_calendar(path)
    assert not cal.is_working_day(D("2022-03-15"))
    assert cal.is_working_day(D("2022-10-03"))  # a Monday off in the shipped file, not in this one
    assert filing_deadline(2022, 3, cal) == D("2022-03-16")  # a one-day holiday on the 15th: the next working day
    assert filing_deadline(2022, 10, cal) == D("2022-10-17")  # 15th a Saturday, no National Day here


def _year(holidays, makeup_days=()):
    return {"years": {"2022": {"holidays": list(holidays), "makeup_days": list(makeup_days)}}}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ({"source": "x"}, "missing key 'years'"),
        ({"years": {"2022": {"holidays": []}}}, r"years\.2022: missing key 'makeup_days'"),
        (_year(["2022-02-30"]), r"years\.2022\.holidays\[0\]: '2022-02-30' is not a real date"),
        (_year(["2022-01-01", "2022-1-3"]), r"years\.2022\.holidays\[1\]: '2022-1-3' is not a date written YYYY-MM-DD"),
        (_year([], ["2022-01-28"]), r"makeup_days\[0\]: 2022-01-28 is a weekday"),
        (_year(["2020-10-01"]), "is not in 2022"),
        (_year(["2022-01-29"], ["2022-01-29"]), "both as a holiday and as a make-up"),
        ({"years": {"22": {"holidays": [], "makeup_days": []}}}, "not a four-digit year"),
        ({"years": {}, "filing_deadline_overrides": {"2022-13": "2022-12-15"}}, "'2022-13' is not a month"),
        ({"years": {}, "filing_deadline_overrides": {"2022-10": "2022-11-01"}}, "not in that month"),
    ],
)
def test_malformed_file_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(ValueError, match=message) as info:
        load_calendar(path)
    assert str(path) in str(info.value)  # the message names the file it is about
