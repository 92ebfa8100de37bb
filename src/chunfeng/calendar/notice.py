"""Reading the State Council's holiday notice (国务院办公厅关于YYYY年部分节假日安排的通知) as it is published.

The notice is read in its own words, clause by clause ("一、元旦：1月1日（周四）至3日（周六）放假调休，共3天。
1月4日（周日）上班。"), from its text or its web page, in full-width or half-width punctuation. Every date is checked
against the weekday the notice prints beside it and every span against its stated day count (共N天, 放假N天), so a
mistyped or mis-copied notice is refused naming the clause rather than becoming a wrong calendar. A sentence
with dates that is neither a day off (放假, 补休) nor a day worked (上班) is refused too, except the notice's
encouragements (2024: "鼓励各单位……安排职工在除夕（2月9日）休息"), which give no day off.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

from chunfeng.calendar.errors import NoticeInvalid

# The festivals of 全国年节及纪念日放假办法 that every yearly notice arranges.
FESTIVALS = ("元旦", "春节", "清明节", "劳动节", "端午节", "中秋节", "国庆节")
_NUMERALS = "一二三四五六七八九十"
_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_WEEKDAY_NAMES = "一二三四五六日"

_FESTIVAL = "|".join(FESTIVALS)
# After NFKC: "一、元旦:" / "六、国庆节、中秋节:" (several festivals in one clause).
_CLAUSE = re.compile(rf"([{_NUMERALS}]{{1,3}})、\s*((?:{_FESTIVAL})(?:\s*、\s*(?:{_FESTIVAL}))*)\s*:")
_DATE = re.compile(r"(?:(\d{4})\s*年\s*)?(?:(\d{1,2})\s*月\s*)?(\d{1,2})\s*日(?:\s*\(([^()]*)\))?")
_RANGE_JOIN = re.compile(r"\s*(?:至|到|-|~|—)\s*")
_COUNT = re.compile(r"(?:共|放假)\s*(\d+)\s*天")
_WEEKDAY = re.compile(r"(?:周|星期)([一二三四五六日天])")
_YEAR = (re.compile(r"关于\s*(\d{4})\s*年\s*部分节假日安排"), re.compile(r"现将\s*(\d{4})\s*年"))
_NUMBER = re.compile(r"国办发明电\s*[〔\[【(]\s*(\d{4})\s*[〕\]】)]\s*(\d+)\s*号")
# Where the last clause ends when the page runs on without a line break.
_TAIL = re.compile(r"节假日期间|鼓励单位和个人|国务院办公厅")


@dataclass(frozen=True)
class Clause:
    no: str  # "一", "二", …
    festivals: str  # "国庆节、中秋节"
    text: str
    holidays: tuple[date, ...]
    makeup_days: tuple[date, ...]


@dataclass(frozen=True)
class Notice:
    year: int
    number: str  # 国办发明电〔2025〕7号, or "" when the copy does not carry it
    clauses: tuple[Clause, ...]

    @property
    def holidays(self) -> list[date]:
        return sorted({d for c in self.clauses for d in c.holidays})

    @property
    def makeup_days(self) -> list[date]:
        return sorted({d for c in self.clauses for d in c.makeup_days})

    @property
    def title(self) -> str:
        return f"国务院办公厅关于{self.year}年部分节假日安排的通知" + (f"({self.number})" if self.number else "")


def decode(data: bytes) -> str:
    """A saved notice: UTF-8 (with or without BOM), else GB18030 (older government pages)."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise NoticeInvalid("无法识别文件编码:请保存为 UTF-8 文本或网页")


def plain_text(text: str) -> str:
    """The notice's words, whether pasted as text or saved as the web page, with punctuation made half-width."""
    if re.search(r"<(?:p|div|br|span|html|body|td)\b", text, re.IGNORECASE):
        text = re.sub(r"(?is)<(script|style)\b.*?</\1\s*>", "", text)
        text = re.sub(r"(?i)<br\s*/?>|</(?:p|div|li|h\d|tr|td|section)\s*>", "\n", text)
        text = html.unescape(re.sub(r"<[^>]+>", "", text))
    return unicodedata.normalize("NFKC", text).replace("\u3000", " ")


def parse_notice(text: str, *, year: int | None = None) -> Notice:
    """The arrangement a notice publishes; NoticeInvalid names the clause and what is wrong with it."""
    text = plain_text(text)
    year = _notice_year(text, year)
    number = ""
    if m := _NUMBER.search(text):
        number = f"国办发明电〔{m.group(1)}〕{m.group(2)}号"
    starts = list(_CLAUSE.finditer(text))
    if not starts:
        raise NoticeInvalid("没有找到通知的条款(如“一、元旦:1月1日……放假”):请提供国务院办公厅节假日安排通知的全文")
    clauses = []
    for i, m in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        body = text[m.end():end]
        body = body.lstrip().split("\n", 1)[0]
        if tail := _TAIL.search(body):
            body = body[:tail.start()]
        clauses.append(_clause(m.group(1), re.sub(r"\s*、\s*", "、", m.group(2)), body.strip(), year))
    _check_whole(clauses, year)
    return Notice(year, number, tuple(clauses))


def _notice_year(text: str, given: int | None) -> int:
    found = next((int(m.group(1)) for pattern in _YEAR if (m := pattern.search(text))), None)
    if given is not None and found is not None and given != found:
        raise NoticeInvalid(f"指定的年份 {given} 与通知所写的 {found} 年不一致")
    year = given if given is not None else found
    if year is None:
        raise NoticeInvalid("通知中没有找到年份(“关于YYYY年部分节假日安排的通知”或“现将YYYY年……”):请用 --year 指定")
    if not 2000 <= year <= 2100:
        raise NoticeInvalid(f"年份 {year} 不在 2000–2100 之间")
    return year


def _clause(no: str, festivals: str, body: str, year: int) -> Clause:
    where = f"第{no}条({festivals})"

    def bad(message: str) -> NoticeInvalid:
        return NoticeInvalid(f"{where}:{message}。原文:“{body}”")

    holidays: list[date] = []
    makeup: list[date] = []
    for sentence in (s.strip() for s in re.split(r"[。;]", body)):
        if not sentence or "鼓励" in sentence:  # an encouragement, not a day off
            continue
        days = _dates(sentence, year, bad)
        if not days:
            continue
        if "上班" in sentence:
            for d in days:
                if d.weekday() < 5:
                    raise bad(f"{_name(d)}是工作日,不能作为调休上班日")
            makeup += days
        elif "放假" in sentence or "补休" in sentence:
            count = _COUNT.search(sentence)
            if count and int(count.group(1)) != len(days):
                raise bad(f"写明共{count.group(1)}天,但所列日期为{len(days)}天"
                          f"({_name(days[0])}至{_name(days[-1])})")
            holidays += days
        else:
            raise bad(f"无法判断“{sentence}”中的日期是放假还是上班")
    if not holidays:
        raise bad("没有找到放假日期")
    if both := set(holidays) & set(makeup):
        raise bad(f"{_name(min(both))}既是放假日又是上班日")
    return Clause(no, festivals, body, tuple(sorted(set(holidays))), tuple(sorted(set(makeup))))


def _dates(sentence: str, year: int, bad) -> list[date]:
    """Every day a sentence names, ranges expanded ("2月15日(……)至23日(……)", "5月31日至6月2日",
    "2022年12月31日至2023年1月2日"); a day without a month or year takes the one written before it."""
    days: list[date] = []
    context_year, context_month = year, None
    tokens = list(_DATE.finditer(sentence))
    previous: date | None = None
    previous_end = -1
    for token in tokens:
        y, mo, d, note = token.groups()
        context_year = int(y) if y else context_year
        if mo:
            context_month = int(mo)
        elif context_month is None:
            raise bad(f"“{token.group(0)}”没有写月份")
        try:
            day = date(context_year, context_month, int(d))
        except ValueError:
            raise bad(f"{context_year}年{context_month}月{d}日不是真实的日期") from None
        if note and (weekday := _WEEKDAY.search(note)):
            if _WEEKDAYS[weekday.group(1)] != day.weekday():
                raise bad(f"{_name(day)}标注为{weekday.group(0)},实为周{_WEEKDAY_NAMES[day.weekday()]}")
        if previous is not None and _RANGE_JOIN.fullmatch(sentence[previous_end:token.start()]):
            if day < previous:
                raise bad(f"{_name(previous)}至{_name(day)}:结束早于开始")
            span = previous + timedelta(days=1)
            while span <= day:
                days.append(span)
                span += timedelta(days=1)
        else:
            days.append(day)
        previous, previous_end = day, token.end()
    return days


def _check_whole(clauses: list[Clause], year: int) -> None:
    numbers = [c.no for c in clauses]
    expected = [_numeral(i) for i in range(1, len(clauses) + 1)]
    if numbers != expected:
        missing = next((e for e, n in zip(expected, numbers, strict=True) if e != n), expected[-1])
        raise NoticeInvalid(f"条款编号不连续:应为第{missing}条,却是 {'、'.join(numbers)};请核对是否缺漏了条款")
    named = "、".join(c.festivals for c in clauses)
    if missing := [f for f in FESTIVALS if f not in named]:
        raise NoticeInvalid(f"通知中没有{'、'.join(missing)}的安排:请提供通知全文")
    seen: dict[date, str] = {}
    for c in clauses:
        for d in c.holidays + c.makeup_days:
            if d.year not in (year, year - 1) or (d.year == year - 1 and d.month != 12):
                raise NoticeInvalid(f"第{c.no}条({c.festivals}):{d.isoformat()} 不在{year}年(或上一年年末)")
            if d in seen:
                raise NoticeInvalid(f"{d.isoformat()} 同时出现在第{seen[d]}条和第{c.no}条")
            seen[d] = c.no


def _numeral(n: int) -> str:
    if n <= 10:
        return _NUMERALS[n - 1]
    return ("" if n < 20 else _NUMERALS[n // 10 - 1]) + "十" + (_NUMERALS[n % 10 - 1] if n % 10 else "")


def _name(d: date) -> str:
    return f"{d.month}月{d.day}日"
