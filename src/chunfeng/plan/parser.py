"""Parse a notice like 税总纳服函〔2022〕32号 into its plan, and check it against its own counts.

The notice states its structure three times: section 一 lists the new measures in three groups
with their counts, section 二 lists each category with its items and its counts ("4项29条"),
and the attachment table lists every measure by 序号. The parser reads all three and refuses a
notice whose parts disagree, naming the category (or measure) and both numbers.

Scraped pages lose characters — "()" for "（一）", "2022331" for 2022年3月31日, "[2022]" for
〔2022〕, "429条" for "4项29条" — so every pattern below accepts the damaged form too.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date
from difflib import SequenceMatcher

from chunfeng.plan.errors import NoticeError
from chunfeng.plan.text import decode_notice, notice_lines, squeeze

NUMERALS = {ch: i for i, ch in enumerate("一二三四五六七八九十", start=1)}


def chinese_number(text: str) -> int | None:
    """一 … 九十九 (enough for section, category and item numbers); digits pass through."""
    if not text:
        return None
    if text.isdigit():
        return int(text)
    if any(ch not in NUMERALS for ch in text):
        return None
    if "十" not in text:
        return NUMERALS[text] if len(text) == 1 else None
    tens, _, ones = text.partition("十")
    return (NUMERALS.get(tens, 0) if tens else 1) * 10 + (NUMERALS.get(ones, 0) if ones else 0)


@dataclass
class Measure:
    no: int
    text: str


@dataclass
class Item:
    no: int
    name: str
    measures: list[Measure] = field(default_factory=list)


@dataclass
class Category:
    no: int
    name: str
    stated_items: int
    stated_measures: int
    items: list[Item] = field(default_factory=list)


@dataclass
class NewMeasure:
    no: int
    group: int
    title: str
    text: str
    table_no: int


@dataclass
class Notice:
    title: str
    doc_number: str
    issued: date
    categories: list[Category]
    new_measures: list[NewMeasure]

    def measures(self) -> list[tuple[Category, Item, Measure]]:
        return [(c, i, m) for c in self.categories for i in c.items for m in i.measures]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["issued"] = self.issued.isoformat()
        return data


# --- the header: title, document number, date -------------------------------------------------

_TITLE = re.compile(r"^.{0,60}关于.{2,200}的(通知|意见|公告|决定|方案)$")
_DOC_NUMBER = re.compile(r"(税总[\u4e00-\u9fff]{0,10}?[函发])\s*[\[〔［【(（]?\s*(\d{4})\s*[\]〕］】)）]?\s*(\d{1,4})\s*号")
_STATED_DATE = re.compile(r"(?:颁布|发布|成文|印发)(?:时间|日期)\s*[:：]?\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})")
_DATE_LINE = re.compile(r"^(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日?$|^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")
_COMPACT_DATE_LINE = re.compile(r"^(\d{4})(\d{2,4})$")


def _date(y: str | int, m: str | int, d: str | int) -> date | None:
    try:
        return date(int(y), int(m), int(d))
    except ValueError:
        return None


def _compact_dates(year: str, rest: str) -> list[date]:
    """'2022' + '331' → [2022-03-31]: every reading of the run of digits that is a real date."""
    found = []
    for cut in (1, 2):
        if cut < len(rest) and len(rest) - cut <= 2:
            found.append(_date(year, rest[:cut], rest[cut:]))
    return [d for d in found if d]


def _read_issued(body: list[str]) -> date:
    stated = None
    for line in body:
        if m := _STATED_DATE.search(line):
            stated = _date(*m.groups())
            break
    signed: list[date] = []
    # The signature date stands on its own line near the end of the body.
    for line in reversed(body):
        if m := _DATE_LINE.match(line):
            g = [x for x in m.groups() if x]
            signed = [d for d in [_date(*g)] if d]
        elif m := _COMPACT_DATE_LINE.match(line):
            signed = _compact_dates(*m.groups())
        if signed:
            break
    if stated and (not signed or stated in signed):
        return stated
    if len(signed) == 1:
        return signed[0]
    if signed:
        raise NoticeError(f"成文日期“{''.join(map(str, signed[0].timetuple()[:3]))}”有多种读法,无法确定")
    if stated:
        return stated
    raise NoticeError("找不到通知的成文日期(如“2022年3月31日”或“颁布时间:2022-03-31”)")


def _read_header(body: list[str]) -> tuple[str, str]:
    title = next((line for line in body if _TITLE.match(line)), None)
    if title is None:
        raise NoticeError("找不到通知标题(形如“……关于……的通知”的一行)")
    for line in body:
        if m := _DOC_NUMBER.search(line):
            return title, f"{m[1]}〔{m[2]}〕{m[3]}号"
    raise NoticeError("找不到发文字号(如“税总纳服函〔2022〕32号”)")


# --- sections of the body ---------------------------------------------------------------------

_SECTION = re.compile(r"^([一二三四五六七八九十]{1,3})、\s*(.*)$")
_PAREN_HEAD = re.compile(r"^[(（]\s*([一二三四五六七八九十]{0,3})\s*[)）]\s*(.*)$")
_NEW_MEASURE = re.compile(r"^(\d{1,3})\s*[.．、]\s*(.+)$")


def _sections(body: list[str]) -> dict[int, tuple[str, list[str]]]:
    sections: dict[int, tuple[str, list[str]]] = {}
    current = None
    for line in body:
        m = _SECTION.match(line)
        if m and (n := chinese_number(m[1])) == len(sections) + 1:
            current = n
            sections[n] = (m[2], [])
        elif current is not None:
            sections[current][1].append(line)
    return sections


def _split_title(sentence: str) -> tuple[str, str]:
    head, sep, rest = sentence.partition("。")
    return (head, rest.strip()) if sep and rest.strip() else (sentence, "")


def _read_new_measures(heading: str, lines: list[str]) -> list[tuple[int, int, str, str]]:
    """Section 一: (no, group, title, text) per new measure, checked against the counts it states."""
    groups: list[tuple[int | None, int]] = []  # (stated count, parsed count) per 聚焦 paragraph
    found = []
    for line in lines:
        if m := _PAREN_HEAD.match(line):
            stated = re.search(r"新推出\s*(\d+)\s*条", m[2])
            groups.append((int(stated[1]) if stated else None, 0))
        elif (m := _NEW_MEASURE.match(line)) and int(m[1]) == len(found) + 1:
            if not groups:
                raise NoticeError(f"第一部分:新增措施第 {m[1]} 条出现在第一个“（一）”段落之前")
            stated, parsed = groups[-1]
            groups[-1] = (stated, parsed + 1)
            title, text = _split_title(m[2].strip())
            found.append((int(m[1]), len(groups), title, text))
    for g, (stated, parsed) in enumerate(groups, start=1):
        if stated is not None and stated != parsed:
            raise NoticeError(f"第一部分第 {g} 段说明新推出 {stated} 条措施,实际列出 {parsed} 条")
    total = re.search(r"新增\s*(\d+)\s*条", heading)
    if total and int(total[1]) != len(found):
        raise NoticeError(f"第一部分标题说明新增 {total[1]} 条措施,实际列出 {len(found)} 条")
    return found


_CATEGORY_SUMMARY = re.compile(r"^(?:[(（]\s*[一二三四五六七八九十]{0,3}\s*[)）])?\s*(.+?)。\s*包括(.+?)等?(\d+)\s*(?:项\s*(\d+))?\s*条具体措施")
_TOTALS = re.compile(r"共计\s*(\d+)\s*条")
_SHAPE = re.compile(r"分为\s*([一二三四五六七八九十\d]+)\s*大?类\s*(\d+)\s*项")


@dataclass
class _Stated:
    name: str
    items: int
    measures: int
    item_names: list[str]


def _read_stated_counts(lines: list[str]) -> tuple[list[_Stated], int | None, tuple[int, int] | None]:
    """Section 二: per category its name, item names and the counts "4项29条" (or the damaged "429条")."""
    stated = []
    for line in lines:
        m = _CATEGORY_SUMMARY.match(line)
        if not m:
            continue
        name, names_text, first, second = m.groups()
        item_names = [n.strip() for n in re.split(r"[、,，;；]", names_text) if n.strip()]
        if second is not None:
            items, measures = int(first), int(second)
        else:
            # "429条": the 项 was lost. Split after the number of items the line itself names,
            # or else after the first digit.
            k = str(len(item_names))
            cut = len(k) if first.startswith(k) and len(first) > len(k) else 1
            if len(first) <= cut:
                raise NoticeError(f"第二部分类别“{name}”:无法从“{first}条”读出项数和条数")
            items, measures = int(first[:cut]), int(first[cut:])
        stated.append(_Stated(name.strip(), items, measures, item_names))
    total = int(m[1]) if (m := next(filter(None, map(_TOTALS.search, lines)), None)) else None
    shape = None
    if m := next(filter(None, map(_SHAPE.search, lines)), None):
        shape = (chinese_number(m[1]) or 0, int(m[2]))
    return stated, total, shape


# --- the attachment table -----------------------------------------------------------------------

_ROW_NUMBER = re.compile(r"^(\d{1,3})(?:[\s.、．:：]+(.*))?$")


def _find_table(lines: list[str]) -> int:
    """Index of the first line after the table header 序号 / 任务类别 / 任务事项 / 具体措施."""
    for i, line in enumerate(lines):
        if line.startswith("序号"):
            window = "".join(lines[i:i + 4])
            if "具体措施" in window and "任务" in window:
                j = i
                while "具体措施" not in lines[j]:
                    j += 1
                return j + 1
    raise NoticeError("找不到附件中的工作任务安排表(应有“序号、任务类别、任务事项、具体措施”表头)")


@dataclass
class _Row:
    no: int
    lines: list[str]


def _table_rows(lines: list[str]) -> list[_Row]:
    rows: list[_Row] = []
    for line in lines:
        m = _ROW_NUMBER.match(line)
        if m and int(m[1]) == len(rows) + 1:
            rows.append(_Row(int(m[1]), [m[2].strip()] if m[2] and m[2].strip() else []))
        elif m and not m[2] and rows and len(rows) + 1 < int(m[1]) <= len(rows) + 3:
            # A bare 序号 a little ahead of the next expected one: rows are missing, and the ones after
            # them would otherwise be read as part of the row before.
            expected = len(rows) + 1
            missing = "、".join(str(n) for n in range(expected, int(m[1])))
            raise NoticeError(f"附件的工作任务安排表缺少第 {missing} 行(第 {expected - 1} 行之后是第 {m[1]} 行)")
        elif rows:
            rows[-1].lines.append(line)
    if not rows:
        raise NoticeError("附件的工作任务安排表中没有找到序号为 1 的行")
    # Whatever follows the last row's measure is the page around the table, not the table.
    rows[-1].lines = _cut_after_measure(rows[-1].lines)
    return rows


_ENDS_SENTENCE = re.compile(r"[。！？!?；;…”」》）)]$")
_CATEGORY_CELL = re.compile(r"^([一二三四五六七八九十]{1,3})、\s*(.+)$")


def _cut_after_measure(lines: list[str]) -> list[str]:
    for i, line in enumerate(lines):
        if not (_CATEGORY_CELL.match(line) or _PAREN_HEAD.match(line)) and len(line) >= 6:
            return lines[: i + 1]
    return lines


def _read_table(lines: list[str], stated: list[_Stated]) -> list[Category]:
    known_items = {squeeze(n) for s in stated for n in s.item_names}
    by_name = {squeeze(s.name): s for s in stated}
    categories: list[Category] = []
    item_no = 0
    for row in _table_rows(lines):
        cells = list(row.lines)
        while cells:
            head = cells[0]
            if (m := _CATEGORY_CELL.match(head)) and (chinese_number(m[1]) == len(categories) + 1
                                                      or squeeze(m[2]) in by_name):
                s = by_name.get(squeeze(m[2]))
                categories.append(Category(len(categories) + 1, m[2].strip(), s.items if s else -1,
                                           s.measures if s else -1))
                cells.pop(0)
            elif (m := _PAREN_HEAD.match(head)) or squeeze(head) in known_items:
                cells.pop(0)
                name = m[2].strip() if m else head
                if m and not name and cells:
                    name = cells.pop(0)  # "(一)" on one line, the item's name on the next
                if not categories:
                    raise NoticeError(f"附件第 {row.no} 行:任务事项“{name}”之前没有任务类别")
                item_no += 1
                categories[-1].items.append(Item(item_no, name))
            else:
                break
        if not cells:
            raise NoticeError(f"附件第 {row.no} 行:没有具体措施的内容")
        if not categories or not categories[-1].items:
            raise NoticeError(f"附件第 {row.no} 行:具体措施之前没有任务类别或任务事项")
        text = "".join(cells)
        if text and not _ENDS_SENTENCE.search(text):
            text += "。"  # every measure is a sentence; the scrape dropped the full stop of a few (5, 8, 69)
        categories[-1].items[-1].measures.append(Measure(row.no, text))
    return categories


# --- agreement of the three parts ----------------------------------------------------------------


def _check_counts(categories: list[Category], stated: list[_Stated], total: int | None,
                  shape: tuple[int, int] | None) -> None:
    if not stated:
        raise NoticeError("第二部分找不到各类别的项数和条数说明(如“包括……4项29条具体措施”)")
    table_names = {squeeze(c.name) for c in categories}
    for s in stated:
        if squeeze(s.name) not in table_names:
            raise NoticeError(f"第二部分列出的类别“{s.name}”({s.items}项{s.measures}条)在附件中不存在")
    for c in categories:
        if c.stated_measures < 0:
            raise NoticeError(f"附件中的类别“{c.name}”在第二部分没有项数和条数说明")
        parsed_measures = sum(len(i.measures) for i in c.items)
        if c.stated_items != len(c.items):
            raise NoticeError(f"类别“{c.name}”:正文说明 {c.stated_items} 项任务事项,附件中有 {len(c.items)} 项")
        if c.stated_measures != parsed_measures:
            raise NoticeError(f"类别“{c.name}”:正文说明 {c.stated_measures} 条具体措施,附件中有 {parsed_measures} 条")
        names = next(s.item_names for s in stated if squeeze(s.name) == squeeze(c.name))
        if [squeeze(n) for n in names] != [squeeze(i.name) for i in c.items]:
            raise NoticeError(f"类别“{c.name}”:正文列出的任务事项({'、'.join(names)})"
                              f"与附件({'、'.join(i.name for i in c.items)})不一致")
    all_measures = sum(len(i.measures) for c in categories for i in c.items)
    if total is not None and total != all_measures:
        raise NoticeError(f"正文说明共计 {total} 条措施,附件中有 {all_measures} 条")
    all_items = sum(len(c.items) for c in categories)
    if shape is not None and shape != (len(categories), all_items):
        raise NoticeError(f"正文说明分为 {shape[0]} 大类 {shape[1]} 项,附件中有 {len(categories)} 类 {all_items} 项")


def _bigrams(text: str) -> set[str]:
    return {text[i:i + 2] for i in range(len(text) - 1)}


def _best_row(candidate: str, rows: list[tuple[int, str, set[str]]]) -> tuple[float, int]:
    """The most similar row to `candidate`: rows are ranked by shared character pairs, and only
    the closest few are compared in full (difflib's ratio is the slow part)."""
    pairs = _bigrams(candidate)
    ranked = sorted(rows, key=lambda r: len(pairs & r[2]) / (len(pairs | r[2]) or 1), reverse=True)[:3]
    return max((SequenceMatcher(None, row, candidate, autojunk=False).ratio(), row_no) for row_no, row, _ in ranked)


def _match_new_measures(found: list[tuple[int, int, str, str]], categories: list[Category]) -> list[NewMeasure]:
    """Each new measure of section 一 to the table row that states it, by text: the best match, one to one."""
    rows = [(m.no, text, _bigrams(text)) for c in categories for i in c.items for m in i.measures
            for text in [squeeze(m.text)]]
    taken: dict[int, int] = {}
    result = []
    for no, group, title, text in found:
        candidates = {squeeze(text), squeeze(title + text)} - {""}
        score, row_no = max(_best_row(c, rows) for c in candidates)
        if score < 0.8:
            raise NoticeError(f"第一部分新增措施第 {no} 条“{title}”在附件中找不到对应的具体措施"
                              f"(最接近的是第 {row_no} 条,相似度 {score:.0%})")
        if row_no in taken:
            raise NoticeError(f"第一部分新增措施第 {taken[row_no]} 条和第 {no} 条对应附件中同一条措施(第 {row_no} 条)")
        taken[row_no] = no
        row = next(m for c in categories for i in c.items for m in i.measures if m.no == row_no)
        # The two statements of one sentence lost different characters in the scrape: the table its
        # quotes (一把手走流程), the body a bracket's content (办税()人员). Each restores the other.
        row.text = restore_lost(row.text, text)
        result.append(NewMeasure(no, group, restore_lost(title, row.text), restore_lost(text, row.text), row_no))
    return result


# What a scrape drops without changing the words: quotation marks, the full stop, a bracket's content.
_DROPPABLE = set("“”‘’\"'「」『』《》。")
_OPEN_BRACKETS, _CLOSE_BRACKETS = "(（", ")）"


def restore_lost(text: str, other: str) -> str:
    """``text`` with the characters that ``other`` — the same sentence stated elsewhere in the notice —
    still has where ``text`` lost them: quotation marks, full stops, and the content of an empty bracket."""
    sm = SequenceMatcher(None, text, other, autojunk=False)
    if sm.ratio() < 0.5:
        return text
    out = []
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        out.append(text[i1:i2])
        if op != "insert":
            continue
        segment = other[j1:j2]
        in_empty_bracket = (i1 > 0 and text[i1 - 1] in _OPEN_BRACKETS and i1 < len(text) and text[i1] in _CLOSE_BRACKETS)
        if in_empty_bracket and not any(ch in _OPEN_BRACKETS + _CLOSE_BRACKETS for ch in segment):
            out.append(segment)
        elif all(ch in _DROPPABLE for ch in segment):
            out.append(segment)
    return "".join(out)


def parse_notice(data: bytes | str) -> Notice:
    """Parse a notice (HTML or text, UTF-8 or GB18030, any line endings) and check it against itself."""
    text = decode_notice(data if isinstance(data, bytes) else data.encode("utf-8"))
    lines = notice_lines(text)
    start = _find_table(lines)
    body, table = lines[:start], lines[start:]
    title, doc_number = _read_header(body)
    issued = _read_issued(body)
    sections = _sections(body)
    if 2 not in sections:
        raise NoticeError("找不到正文第二部分(各类别的项数和条数说明)")
    stated, total, shape = _read_stated_counts(sections[2][1])
    categories = _read_table(table, stated)
    _check_counts(categories, stated, total, shape)
    found = _read_new_measures(*sections[1]) if 1 in sections else []
    return Notice(title, doc_number, issued, categories, _match_new_measures(found, categories))
