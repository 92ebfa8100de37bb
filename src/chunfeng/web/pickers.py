"""The region picker's options, built once per process.

The picker lists every province, prefecture and county (some 3,200 options): rendered by a Jinja loop on each
request it cost ~50 ms of the complaint form, the public page most often loaded, so the rows are escaped and joined
once and only the chosen one is marked per request.
"""

from __future__ import annotations

from functools import cache

from markupsafe import Markup, escape

from chunfeng.org.regions import Province


def _whole(name: str) -> str:
    return "市" if name.endswith("市") else "区" if name.endswith("区") else "省"


@cache
def _options(regions: tuple[Province, ...]) -> str:
    rows = []
    for p in regions:
        rows.append(f'<optgroup label="{escape(p.name)}"><option value="{escape(p.code)}" >{escape(p.name)}'
                    f'(全{_whole(p.name)})</option>')
        for code, name in p.cities:
            rows.append(f'<option value="{escape(code)}" >{escape(p.name)} {escape(name)}</option>')
            rows.extend(f'<option value="{escape(county)}" >{escape(p.name)} {escape(name)} {escape(county_name)}</option>'
                        for county, county_name in p.counties_of(code))
        rows.append("</optgroup>")
    return "\n".join(rows)


def region_options(regions, value: str = "") -> Markup:
    """The <optgroup>s of `regions` with `value` (a code the user sent back) selected."""
    html = _options(tuple(regions))
    if value:
        mark = f'<option value="{escape(value)}" >'
        html = html.replace(mark, mark[:-1] + "selected>", 1)
    return Markup(html)
