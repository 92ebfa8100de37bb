"""The State Council's holiday notice read in its own words: the published 2022–2026 notices give exactly the shipped
calendar, and a notice whose dates disagree with its weekdays or day counts is refused naming the clause."""

from __future__ import annotations

import json
import unicodedata
from datetime import date
from pathlib import Path

import pytest

from chunfeng.calendar.errors import NoticeInvalid
from chunfeng.calendar.notice import decode, parse_notice

ROOT = Path(__file__).parent.parent.parent
# The notices' text as published (Xinhua's full text, reprinted by gmw.cn, people.com.cn, beijing.gov.cn, wikisource;
# 2026: https://www.gov.cn/zhengce/content/202511/content_7047090.htm), in the forms an official may save it: 2022 run
# together on one line, 2023 in half-width punctuation, 2024 as a web page, 2025 and 2026 in full-width punctuation.
NOTICES = {
    2022: Path(__file__).with_name("notices") / "2022.txt",
    2023: Path(__file__).with_name("notices") / "2023.txt",
    2024: Path(__file__).with_name("notices") / "2024.html",
    2025: Path(__file__).with_name("notices") / "2025.txt",
    2026: ROOT / "src/chunfeng/data/notices/2026.txt",
}
SHIPPED = json.loads((ROOT / "src/chunfeng/data/holidays.json").read_text(encoding="utf-8"))["years"]
D = date.fromisoformat


def text_of(year: int) -> str:
    return decode(NOTICES[year].read_bytes())


@pytest.mark.parametrize("year", sorted(NOTICES))
def test_each_published_notice_gives_the_shipped_calendar(year):
    notice = parse_notice(text_of(year))
    assert notice.year == year
    assert [d.isoformat() for d in notice.holidays] == sorted(SHIPPED[str(year)]["holidays"])
    assert [d.isoformat() for d in notice.makeup_days] == sorted(SHIPPED[str(year)]["makeup_days"])
    assert notice.number in SHIPPED[str(year)]["source"]


def test_the_2026_notice_clause_by_clause():
    notice = parse_notice(text_of(2026))
    assert notice.title == "国务院办公厅关于2026年部分节假日安排的通知(国办发明电〔2025〕7号)"
    spans = {c.festivals: (c.holidays[0], c.holidays[-1], len(c.holidays), c.makeup_days) for c in notice.clauses}
    assert spans == {
        "元旦": (D("2026-01-01"), D("2026-01-03"), 3, (D("2026-01-04"),)),
        "春节": (D("2026-02-15"), D("2026-02-23"), 9, (D("2026-02-14"), D("2026-02-28"))),
        "清明节": (D("2026-04-04"), D("2026-04-06"), 3, ()),
        "劳动节": (D("2026-05-01"), D("2026-05-05"), 5, (D("2026-05-09"),)),
        "端午节": (D("2026-06-19"), D("2026-06-21"), 3, ()),
        "中秋节": (D("2026-09-25"), D("2026-09-27"), 3, ()),
        "国庆节": (D("2026-10-01"), D("2026-10-07"), 7, (D("2026-09-20"), D("2026-10-10"))),
    }


def test_the_notices_own_wording():
    n2025 = parse_notice(text_of(2025))
    by_name = {c.festivals: c for c in n2025.clauses}
    assert by_name["元旦"].holidays == (D("2025-01-01"),) and by_name["元旦"].makeup_days == ()  # 放假1天,不调休
    assert by_name["国庆节、中秋节"].holidays[-1] == D("2025-10-08")  # several festivals in one clause
    assert len(by_name["端午节"].holidays) == 3  # 5月31日至6月2日: a range across months
    # The 2025 preamble ("国庆节自10月1日起放假调休7天") arranges nothing by itself.
    n2023 = parse_notice(text_of(2023))
    assert n2023.clauses[0].holidays == (D("2022-12-31"), D("2023-01-01"), D("2023-01-02"))  # across years
    n2024 = parse_notice(text_of(2024))
    assert D("2024-02-09") not in n2024.holidays  # "鼓励……安排职工在除夕(2月9日)休息" gives no day off
    assert n2024.clauses[0].holidays == (D("2024-01-01"),)  # 1月1日放假,与周末连休
    # An older wording: 补休 is a day off too.
    old = text_of(2026).replace("一、元旦：1月1日（周四）至3日（周六）放假调休，共3天。1月4日（周日）上班。",
                                "一、元旦：1月1日放假，1月2日（星期五）补休。")
    assert parse_notice(old).clauses[0].holidays == (D("2026-01-01"), D("2026-01-02"))


def test_full_width_and_half_width_read_alike():
    full = text_of(2026)
    half = unicodedata.normalize("NFKC", full)
    assert "（" in full and "（" not in half
    assert parse_notice(full) == parse_notice(half)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("1月1日（周四）", "1月1日（周五）", r"第一条\(元旦\):1月1日标注为周五,实为周四"),
        ("至23日（农历正月初七、周一）", "至23日（农历正月初七、周二）", r"第二条\(春节\):2月23日标注为周二,实为周一"),
        ("放假调休，共5天", "放假调休，共4天", r"第四条\(劳动节\):写明共4天,但所列日期为5天"),
        ("5月9日（周六）上班", "5月8日上班", r"第四条\(劳动节\):5月8日是工作日,不能作为调休上班日"),
        ("10月1日（周四）至7日（周三）", "10月7日至1日", r"第七条\(国庆节\):10月7日至10月1日:结束早于开始"),
        ("6月19日（周五）至21日", "6月31日至21日", r"第五条\(端午节\):2026年6月31日不是真实的日期"),
        ("五、端午节：6月19日（周五）至21日（周日）放假，共3天。\n", "", r"条款编号不连续:应为第五条"),
        ("六、中秋节：9月25日（周五）至27日（周日）放假，共3天。", "六、中秋节：9月25日（周五）至27日（周日），共3天。",
         r"第六条\(中秋节\):无法判断"),
    ],
)
def test_a_notice_that_contradicts_itself_is_refused_naming_the_clause(old, new, message):
    text = text_of(2026)
    assert old in text
    with pytest.raises(NoticeInvalid, match=message):
        parse_notice(text.replace(old, new))


def test_a_partial_or_unrelated_text_is_refused():
    with pytest.raises(NoticeInvalid, match="没有找到通知的条款"):
        parse_notice("国务院办公厅关于2026年部分节假日安排的通知")
    first_three = "\n".join(text_of(2026).splitlines()[:11])  # up to the Spring Festival's clause
    with pytest.raises(NoticeInvalid, match="没有清明节、劳动节、端午节、中秋节、国庆节的安排"):
        parse_notice(first_three)
    with pytest.raises(NoticeInvalid, match="指定的年份 2027 与通知所写的 2026 年不一致"):
        parse_notice(text_of(2026), year=2027)
    untitled = text_of(2026).replace("2026年", "")
    with pytest.raises(NoticeInvalid, match="请用 --year 指定"):
        parse_notice(untitled)
    assert parse_notice(untitled, year=2026).holidays == parse_notice(text_of(2026)).holidays


def test_a_gb18030_page_is_read():
    assert parse_notice(decode(text_of(2025).encode("gb18030"))).year == 2025
