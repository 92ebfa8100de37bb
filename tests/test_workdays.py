"""The working-day calendar on the shipped holiday file, and the monthly filing deadlines computed from it and
published by the STA; a year no calendar covers is an error, never a weekend-only guess."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from chunfeng.calendar.errors import CalendarNotCovered
from chunfeng.workdays import Arrangement, WorkCalendar, filing_deadline, filing_period, load_calendar

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
        ("2026-01-02", False),  # Friday, 元旦 2026 (Jan 1-3)
        ("2026-01-04", True),  # Sunday worked for 元旦
        ("2026-02-14", True),  # Saturday worked for 春节
        ("2026-02-23", False),  # Monday, last day of the nine-day Spring Festival
        ("2026-09-20", True),  # Sunday worked for 国庆
        ("2026-10-10", True),  # Saturday worked for 国庆
    ],
)
def test_is_working_day(cal, day, working):
    assert cal.is_working_day(D(day)) is working


@pytest.mark.parametrize("day", ["2021-10-01", "2027-01-01", "2027-01-04"])
def test_a_year_no_calendar_covers_is_an_error_naming_it(cal, day):
    # Before: 2021-10-01 (国庆) counted as a working day and 2027-01-01 as an ordinary Friday.
    with pytest.raises(CalendarNotCovered, match=f"{day[:4]}年的工作日历尚未导入.*chunfeng calendar import"):
        cal.is_working_day(D(day))
    with pytest.raises(CalendarNotCovered):
        cal.add_working_days(D(day), 3)
    with pytest.raises(CalendarNotCovered):
        filing_deadline(int(day[:4]), 1, cal)
    with pytest.raises(CalendarNotCovered):  # a count that runs from a covered year into an uncovered one
        cal.add_working_days(D("2026-12-24"), 10)


def test_five_working_days_from_2026_09_30_leave_national_day_alone(cal):
    # Before 2026 was shipped: 2026-10-07, inside 国庆 (Oct 1-7). Oct 8, 9, 10 (Saturday worked), 12, 13.
    assert cal.add_working_days(D("2026-09-30"), 5) == D("2026-10-13")
    assert cal.working_days_between(D("2026-09-30"), D("2026-10-13")) == 5


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
    # Days off per notice: 2022 3+7+3+5+3+3+7, 2023 3+7+1+5+3+8, 2024 1+8+3+5+1+3+7, 2025 1+8+3+5+3+8,
    # 2026 3+9+3+5+3+3+7 (国办发明电〔2025〕7号).
    raw = json.loads((Path(__file__).parent.parent / "src/chunfeng/data/holidays.json").read_text(encoding="utf-8"))
    assert {y: len(v["holidays"]) for y, v in raw["years"].items()} == {
        "2022": 31, "2023": 27, "2024": 28, "2025": 28, "2026": 33}
    assert {y: len(v["makeup_days"]) for y, v in raw["years"].items()} == {
        "2022": 7, "2023": 7, "2024": 8, "2025": 5, "2026": 6}


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
    # 税总办征科函〔2025〕64号 (src/chunfeng/data/notices/2026-deadlines.txt): Jan 1-3 off -> 20; Feb 15-23 off -> 24;
    # Mar 15 a Sunday -> 16; Apr 4-6 -> 20; May 1-5 -> 22; Aug 15 a Saturday -> 17; Oct 1-7 -> 26; Nov 15 a Sunday -> 16;
    # Jun, Jul, Sep, Dec -> 15. The shipped 2022-2025 data gave Jan 15, Feb 16, Apr 15, May 15, Oct 15 for 2026.
    2026: [20, 24, 16, 20, 22, 15, 15, 17, 15, 26, 16, 15],
}


@pytest.mark.parametrize("year", sorted(PUBLISHED))
def test_filing_deadlines_match_the_published_ones(cal, year):
    published = [date(year, m, d) for m, d in enumerate(PUBLISHED[year], 1)]
    # What the officials see: the STA's own list where it is shipped, else the computation.
    assert [filing_deadline(year, m, cal) for m in range(1, 13)] == published
    # The rule alone, from the State Council's arrangement, gives the same dates: a year imported before the STA
    # publishes its list (as 2027 will be) gets the right deadlines too.
    bare = WorkCalendar.of(cal.arrangements, {})
    assert [filing_deadline(year, m, bare) for m in range(1, 13)] == published


def test_the_shipped_2026_deadlines_are_the_stas_list():
    raw = json.loads((Path(__file__).parent.parent / "src/chunfeng/data/holidays.json").read_text(encoding="utf-8"))
    assert raw["filing_deadline_overrides"] == {f"2026-{m:02d}": f"2026-{m:02d}-{d:02d}" for m, d in enumerate(PUBLISHED[2026], 1)}
    assert "税总办征科函〔2025〕64号" in raw["filing_deadline_source"]["2026"]


def test_a_january_campaign_never_starts_on_new_years_day():
    # 1 January is a day off by statute (全国年节及纪念日放假办法) whatever else a year's notice arranges.
    from chunfeng.push.campaigns import stage_dates

    cal = load_calendar()
    with pytest.raises(CalendarNotCovered, match="2027"):  # 2027 not imported: refused, not planned on weekends alone
        stage_dates(year=2027, month=1, reminder_day=10, last_days=2, cal=cal)
    covered = WorkCalendar.of({**cal.arrangements, 2027: Arrangement(2027, (D("2027-01-01"),), ())}, {})
    _, due = stage_dates(year=2027, month=1, reminder_day=10, last_days=2, cal=covered)
    assert due["first"] == D("2027-01-04")  # Jan 1 a Friday off, then the weekend
    _, due = stage_dates(year=2026, month=1, reminder_day=10, last_days=2, cal=cal)
    assert due["first"] == D("2026-01-04")  # Jan 1-3 off; Sunday Jan 4 is worked in lieu (上班)


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
    path.write_text(json.dumps({"years": {"2022": {"holidays": [], "makeup_days": []}},
                                "filing_deadline_overrides": {"2022-10": "2022-10-28"}}))
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


def test_every_shipped_day_agrees_with_the_chinesecalendar_package():
    # An independent transcription of the same notices (PyPI chinesecalendar, a test dependency; 1.11.0 covers 2004–2026); skipped
    # where it is not installed. Checked on 2026-12-06: no difference on any day of 2022–2026.
    chinese_calendar = pytest.importorskip("chinese_calendar")
    cal = load_calendar()
    for year in cal.years:
        d = date(year, 1, 1)
        while d.year == year:
            assert cal.is_working_day(d) is chinese_calendar.is_workday(d), d
            d += timedelta(days=1)
