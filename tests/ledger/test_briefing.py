"""The briefing's content, and its PDF with the CJK font embedded."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zlib
from datetime import date

from sqlalchemy import update

from chunfeng.charts import bar_chart, light_bars
from chunfeng.ledger import briefing
from chunfeng.ledger import services as ledger
from chunfeng.ledger.models import Assignment
from chunfeng.org.services import find_unit
from tests.conftest import person
from tests.ledger.test_services import chain, report, review


def pdf_objects(pdf: bytes) -> bytes:
    """The PDF's bytes with every compressed stream inflated (font names live in object streams)."""
    parts = [pdf]
    for match in re.finditer(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        try:
            parts.append(zlib.decompress(match.group(1)))
        except zlib.error:
            pass
    return b"".join(parts)


def pdf_text(pdf: bytes) -> str:
    """The text a reader sees: every hex-encoded glyph run in the content streams, mapped back through the fonts'
    ToUnicode tables (WeasyPrint writes CJK text as glyph ids, so the plain bytes hold no Chinese)."""
    streams = [s for s in (_inflate(m.group(1)) for m in re.finditer(rb"stream\r?\n(.*?)endstream", pdf, re.S)) if s]
    glyphs: dict[int, str] = {}
    for s in streams:
        for block in re.findall(rb"beginbfchar(.*?)endbfchar", s, re.S):
            for src, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
                glyphs[int(src, 16)] = bytes.fromhex(dst.decode()).decode("utf-16-be")
        for block in re.findall(rb"beginbfrange(.*?)endbfrange", s, re.S):
            for lo, hi, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
                glyphs.update({g: chr(int(dst, 16) + i) for i, g in enumerate(range(int(lo, 16), int(hi, 16) + 1))})
    runs = [h.decode() for s in streams if b"BT" in s and b"begincmap" not in s for h in re.findall(rb"<([0-9A-Fa-f]+)>", s)]
    return "".join(glyphs.get(int(h[i:i + 4], 16), "?") for h in runs for i in range(0, len(h), 4))


def _inflate(data: bytes) -> bytes:
    try:
        return zlib.decompress(data)
    except zlib.error:
        return b""


def test_charts_escape_and_scale():
    svg = bar_chart(["<b>类别</b>", "二"], [50, 150])
    assert "&lt;b&gt;类别&lt;/b&gt;" in svg and "<script" not in svg
    assert 'width="215.0"' in svg and 'width="430.0"' in svg  # half, and capped at the whole bar
    assert "3/1/0" in light_bars(["单位"], [{"red": 3, "yellow": 1, "green": 0}])


def test_briefing_content_and_pdf(bureau, tmp_path):
    bj, city, c1, c2 = chain(bureau)
    with bureau.write() as s:
        iid = ledger.define_indicator(session=s, actor=person(s, "nat_office"), measure_no=54, name="办理天数", target=6,
                                      direction="down").id
    rid, _ = report(bureau, "county_reporter", c1, "in_progress", 60, values={iid: 5})
    review(bureau, "city_office", rid)
    with bureau.write() as s:
        s.execute(update(Assignment).where(Assignment.id == c2).values(light="red"))
    with bureau.read() as s:
        data = briefing.build(session=s, actor=person(s, "bj_office"), unit=find_unit(session=s, code="110000"),
                              today=date(2023, 1, 5))
        html = briefing.render_html(data)
        pdf = briefing.render_pdf(data)
    assert data.totals.lights == {"red": 1, "yellow": 0, "green": 3, "idle": 0}
    assert [c[0] for c in data.categories] == ["智慧办理更便捷"]
    assert [(a.unit.code, days) for a, days in data.overdue] == [("110101", 97), ("110102", 97), ("110100", 66), ("110000", 5)]
    assert [(i.name, n, ok) for i, n, ok in data.indicators] == [("办理天数", 1, 1)]
    assert data.level == "municipal" and data.standings[0].unit.code == "110100"
    assert "国家税务总局北京市税务局春风行动进展简报" in html and "<svg" in html and '/static/briefing.css' in html
    assert pdf.startswith(b"%PDF") and b"WenQuanYi" in pdf_objects(pdf)  # the CJK font is embedded, not boxes
    assert "&#34;" not in briefing.render_html(data, inline_css=True)  # the inline stylesheet is not HTML-escaped
    assert "第 1 页" in pdf_text(pdf)  # so its page footer (and font-family) reach the PDF


def test_a_not_started_green_is_counted_apart_in_the_briefing(bureau):
    """Issue 14 §11: the briefing splits the lights as the dashboard does: a task nobody has started (0 %, no
    warning) is "未开始·暂无预警", not 绿灯, in the totals, the category table and the PDF."""
    bj, city, c1, c2 = chain(bureau)
    with bureau.write() as s:
        s.execute(update(Assignment).values(light="green", status="in_progress"))
        s.execute(update(Assignment).where(Assignment.id == c1).values(status="not_started"))
        s.execute(update(Assignment).where(Assignment.id == c2).values(light="yellow", status="not_started"))
    with bureau.read() as s:
        data = briefing.build(session=s, actor=person(s, "bj_office"), unit=find_unit(session=s, code="110000"),
                              today=date(2022, 6, 1))
        pdf = briefing.render_pdf(data)
    text = pdf_text(pdf)
    assert "绿灯 2 项" in text and "未开始·暂无预警 1 项" in text, text[:400]
    assert data.totals.lights == {"red": 0, "yellow": 1, "green": 2, "idle": 1}
    assert [(name, cell.lights) for name, _, cell in data.categories] == [
        ("智慧办理更便捷", {"red": 0, "yellow": 1, "green": 2, "idle": 1})]
    assert "未开始·暂无预警" in text.split("二、分类别进展")[1].split("三、")[0]  # the category table's column


def test_briefing_cli_and_refusal(bureau, tmp_path):
    chain(bureau)
    env = {**os.environ, "CHUNFENG_DATABASE_URL": bureau.url}
    out = tmp_path / "brief.html"
    done = subprocess.run([sys.executable, "-m", "chunfeng", "--as", "bj_office", "ledger", "briefing", str(out),
                           "--unit", "110000"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    text = out.read_text(encoding="utf-8")
    assert "<style>" in text and "briefing.css" not in text  # a saved file stands alone
    refused = subprocess.run([sys.executable, "-m", "chunfeng", "--as", "gd_office", "ledger", "briefing", str(out),
                              "--unit", "110000"], env=env, capture_output=True, text=True)
    assert refused.returncode == 1 and "无权" in refused.stderr
