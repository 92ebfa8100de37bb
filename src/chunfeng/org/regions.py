"""Administrative regions a citizen picks from: province → prefecture → county (the four municipalities → districts;
county-level places directly under a province, such as 仙桃市 or 济源市, listed beside its prefectures).

Shipped in `chunfeng/data/regions.json` with its source, the date it is right on, the changes applied since its base
list and what is still to be checked; the picker offers these codes, and routing (`services.unit_for_region`) reads a
code's city and province prefixes, so a county code reaches the city's bureau where one is known and the province's
otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Province:
    code: str
    name: str
    cities: tuple[tuple[str, str], ...]
    # city code → its counties; a city without any is absent. Left out of the hash: the list stays a cache key.
    counties: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict, hash=False)

    def counties_of(self, city: str) -> tuple[tuple[str, str], ...]:
        return self.counties.get(city, ())


@cache
def document() -> dict:
    return json.loads(resources.files("chunfeng").joinpath("data/regions.json").read_text(encoding="utf-8"))


@cache
def regions() -> tuple[Province, ...]:
    return tuple(Province(p["code"], p["name"], tuple(map(tuple, p["cities"])),
                          {city: tuple(map(tuple, rows)) for city, rows in p.get("counties", {}).items()})
                 for p in document()["provinces"])


@cache
def _names() -> dict[str, str]:
    names = {}
    for p in regions():
        names[p.code] = p.name
        for code, name in p.cities:
            names[code] = f"{p.name} {name}"
            for county, county_name in p.counties_of(code):
                names[county] = f"{p.name} {name} {county_name}"
    return names


def region_name(code: str) -> str:
    """The picker's name for a code ("河北省 石家庄市 长安区"), or "" for a code it does not offer."""
    return _names().get(code, "")
