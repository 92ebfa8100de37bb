"""Administrative regions a citizen picks from (province → prefecture; the four municipalities → districts).

Shipped in `chunfeng/data/regions.json` with its source and what is still to be checked; the picker offers these
codes, and routing (`services.unit_for_region`) reads a code's city and province prefixes, so a prefecture code
reaches the city's bureau where one is known and the province's otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Province:
    code: str
    name: str
    cities: tuple[tuple[str, str], ...]


@cache
def regions() -> tuple[Province, ...]:
    doc = json.loads(resources.files("chunfeng").joinpath("data/regions.json").read_text(encoding="utf-8"))
    return tuple(Province(p["code"], p["name"], tuple(map(tuple, p["cities"]))) for p in doc["provinces"])


def region_name(code: str) -> str:
    """The picker's name for a code ("河北省 石家庄市"), or "" for a code it does not offer."""
    for province in regions():
        if code == province.code:
            return province.name
        if code[:2] == province.code[:2]:
            return next((f"{province.name} {name}" for c, name in province.cities if c == code), "")
    return ""
