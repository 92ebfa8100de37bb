"""From the bytes of a notice to clean lines: encoding, HTML, page chrome, table cells."""

from __future__ import annotations

import re
import unicodedata
from html.parser import HTMLParser

from chunfeng.plan.errors import NoticeError
from chunfeng.tabular import TableError, decode_text

_BLOCK_TAGS = {
    "p", "div", "br", "tr", "td", "th", "li", "ul", "ol", "table", "tbody", "thead", "section", "article",
    "h1", "h2", "h3", "h4", "h5", "h6", "header", "footer", "nav", "dd", "dt", "dl", "blockquote", "pre", "hr",
}
_SKIPPED_TAGS = {"script", "style", "head", "title", "noscript", "template", "iframe", "svg", "select"}
_HTML_SIGN = re.compile(r"<\s*(!doctype|html|body|p|div|table|td|br)\b", re.I)


class _TextExtractor(HTMLParser):
    """HTML to text with one line per block and per table cell; scripts, styles and the head skipped."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in _SKIPPED_TAGS:
            self.skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_startendtag(self, tag, attrs):
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in _SKIPPED_TAGS:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    return "".join(extractor.parts)


def decode_notice(data: bytes) -> str:
    """The text of a notice file: refuses empty and binary files, reads UTF-8 or GB18030, strips HTML."""
    if not data.strip():
        raise NoticeError("文件为空")
    if b"\x00" in data[:65536] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise NoticeError("不是文本文件(含有二进制内容),请提供通知的网页(HTML)或纯文本")
    try:
        text = decode_text(data)
    except TableError as exc:
        raise NoticeError(f"无法识别文件编码:{exc}") from None
    controls = sum(1 for ch in text[:65536] if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f")
    if controls > max(8, len(text[:65536]) // 200):
        raise NoticeError("不是文本文件(含有大量控制字符),请提供通知的网页(HTML)或纯文本")
    if _HTML_SIGN.search(text[:200000]):
        text = html_to_text(text)
    if not text.strip():
        raise NoticeError("文件中没有文字内容")
    return text


_CELL_SPLIT = re.compile(r"\t+|\s+\|\s+|^\||\|$")
_RULE_CELL = re.compile(r"^[\s\-:|=+]*$")


def notice_lines(text: str) -> list[str]:
    """Non-empty lines, whitespace trimmed; a table row written on one line (tabs or pipes) becomes one line per cell."""
    lines = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        raw = raw.replace("\u3000", " ").replace("\xa0", " ").replace("\ufeff", "").strip()
        if not raw:
            continue
        cells = _CELL_SPLIT.split(raw) if ("\t" in raw or "|" in raw) else [raw]
        lines.extend(c.strip() for c in cells if c.strip() and not _RULE_CELL.match(c))
    return lines


def squeeze(text: str) -> str:
    """Only the letters, digits and CJK characters: for comparing texts that lost punctuation."""
    return "".join(ch for ch in text if ch.isalnum())
