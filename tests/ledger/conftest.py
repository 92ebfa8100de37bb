"""A small bureau tree with a plan and people at each level.

000000 国家税务总局 ── 110000 北京 ──┬─ 110100 市 ──┬─ 110101 县
                                     │               └─ 110102 县
                                     └─ 110200 市
                    └─ 440000 广东
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from chunfeng.org import services as org
from chunfeng.org.models import User

TODAY = date(2022, 5, 17)

PEOPLE = {
    "nat_office": ("000000", ["action_office"]),
    "bj_office": ("110000", ["action_office"]),
    "bj_reporter": ("110000", ["unit_reporter"]),
    "city_office": ("110100", ["action_office"]),
    "city_reporter": ("110100", ["unit_reporter"]),
    "city2_reporter": ("110200", ["unit_reporter"]),
    "county_reporter": ("110101", ["unit_reporter"]),
    "county2_reporter": ("110102", ["unit_reporter"]),
    "gd_office": ("440000", ["action_office"]),
    "viewer": ("110000", ["viewer"]),
}


@pytest.fixture
def bureau(with_plan, system, add_users, tmp_path):
    csv = tmp_path / "units.csv"
    csv.write_text("代码,上级代码,名称,层级\n110100,110000,北京甲市税务局,市级\n110200,110000,北京乙市税务局,市级\n"
                   "110101,110100,甲市一县税务局,县级\n110102,110100,甲市二县税务局,县级\n", encoding="utf-8")
    with with_plan.write() as s:
        org.import_units(session=s, actor=system, path=csv)
    add_users(PEOPLE)
    return with_plan


def person(session, username: str) -> User:
    return session.scalar(select(User).where(User.username == username))
