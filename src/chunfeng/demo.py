"""Demo data: the shipped notice, a synthetic lower-level organisation and demo users.

Everything synthetic is marked so (`Unit.synthetic`, "（演示）" in the name) and generated from a
fixed seed, so two demo databases are the same.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from chunfeng.org import services as org
from chunfeng.org.access import SystemActor
from chunfeng.org.builtin import PROVINCES
from chunfeng.org.models import Unit, User
from chunfeng.plan import services as plan
from chunfeng.plan.models import PlanNotice

SEED = 2022
_SYLLABLES = "安宁平和兴华东西南北中新清江河山川林泉云阳明光长永福德嘉禾丰泰康盛"
DEMO_PASSWORD = "Chunfeng2022!"


@dataclass
class DemoLogin:
    username: str
    unit: str
    roles: str


def _place(rng: random.Random, taken: set[str]) -> str:
    while True:
        name = rng.choice(_SYLLABLES) + rng.choice(_SYLLABLES)
        if name[0] != name[1] and name not in taken:
            taken.add(name)
            return name


def synthetic_units(*, session: Session, municipal_per_province: int = 3, county_per_municipal: int = 3) -> int:
    """Municipal and county bureaus under every provincial bureau, plus branches under the first counties."""
    if session.scalar(select(Unit.id).where(Unit.synthetic.is_(True)).limit(1)):
        return 0
    rng = random.Random(SEED)
    taken: set[str] = set()
    added = 0
    for p_code, _ in PROVINCES:
        province = session.scalar(select(Unit).where(Unit.code == p_code))
        for m in range(1, municipal_per_province + 1):
            m_code = f"{p_code[:4]}{m:02d}"
            city = Unit(code=m_code, name=f"{province.name.removesuffix('税务局')}{_place(rng, taken)}市税务局（演示）",
                        level="municipal", parent=province, path=province.path + m_code + "/", sort=m, synthetic=True)
            session.add(city)
            added += 1
            for c in range(1, county_per_municipal + 1):
                c_code = f"{m_code}{c:02d}"
                county = Unit(code=c_code, name=f"{_place(rng, taken)}县税务局（演示）", level="county", parent=city,
                              path=city.path + c_code + "/", sort=c, synthetic=True)
                session.add(county)
                added += 1
                if c == 1:
                    b_code = f"{c_code}01"
                    session.add(Unit(code=b_code, name=f"{_place(rng, taken)}税务分局（演示）", level="branch",
                                     parent=county, path=county.path + b_code + "/", sort=1, synthetic=True))
                    added += 1
    session.flush()
    return added


DEMO_USERS = [
    ("admin", "系统管理员(演示)", "000000", ["admin"]),
    ("office", "总局春风办(演示)", "000000", ["action_office"]),
    ("beijing", "北京市局填报员(演示)", "110000", ["unit_reporter", "service_officer"]),
    ("county", "北京演示县局填报员(演示)", "11000101", ["unit_reporter"]),
    ("guangdong", "广东省局查看(演示)", "440000", ["viewer"]),
    ("agent", "12366坐席(演示)", "000000", ["agent"]),
]


def fill(*, session: Session) -> list[DemoLogin]:
    """Import the notice, the synthetic organisation and the demo users, each only if missing."""
    system = SystemActor(username="demo")
    if not session.scalar(select(PlanNotice.id).limit(1)):
        plan.import_notice(session=session, actor=system, data=plan.shipped_notice(),
                           source_name="税总纳服函〔2022〕32号(随包附带)")
    synthetic_units(session=session)
    logins = []
    for username, name, unit_code, roles in DEMO_USERS:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            user = org.add_user(session=session, actor=system, username=username, display_name=name,
                                unit_code=unit_code, roles=roles, password=DEMO_PASSWORD)
        logins.append(DemoLogin(username, user.unit.name, ",".join(roles)))
    return logins
