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
    assert data.totals == {"red": 1, "yellow": 0, "green": 3}
    assert [c[0] for c in data.categories] == ["智慧办理更便捷"]
    assert [(a.unit.code, days) for a, days in data.overdue] == [("110101", 97), ("110102", 97), ("110100", 66), ("110000", 5)]
    assert [(i.name, n, ok) for i, n, ok in data.indicators] == [("办理天数", 1, 1)]
    assert data.level == "municipal" and data.standings[0].unit.code == "110100"
    assert "国家税务总局北京市税务局春风行动进展简报" in html and "<svg" in html and '/static/briefing.css' in html
    assert pdf.startswith(b"%PDF") and b"WenQuanYi" in pdf_objects(pdf)  # the CJK font is embedded, not boxes


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
