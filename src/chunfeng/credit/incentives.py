"""What each credit level earns (measures 119 and 121): the conveniences of A and B, the treatment of M and C and
the restrictions of D, as data (credit/data/incentives.json) with each item's source or its review mark, for the
taxpayer's credit page, the public page and the consultation's answers."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files

from chunfeng.credit.models import LEVELS
from chunfeng.credit.services import rules as credit_rules


@cache
def data() -> dict:
    return json.loads(files("chunfeng.credit").joinpath("data/incentives.json").read_text(encoding="utf-8"))


def for_level(level: str) -> dict:
    """{kind, items: [{text, area, source, review}], note} for one level."""
    return data()["levels"][level]


def measures() -> dict:
    """Measure 119's areas and measure 121's partner departments, as the notice states them (rules.json)."""
    incentives = credit_rules()["incentives"]
    return {"areas": incentives["areas"], "partners": incentives["partner_departments"]}


def answer(level: str) -> str:
    """One level's conveniences as a consultation answer, each item marked where it awaits review."""
    entry = for_level(level)
    lines = [f"{n}. {i['text']}" + ("(待复核)" if i["review"] else "") for n, i in enumerate(entry["items"], 1)]
    if not lines:
        return (f"{level}级纳税人适用的{entry['kind']}措施尚未能从《纳税缴费信用管理办法》原文核实,系统暂不列出,"
                "请以主管税务机关答复为准。")
    return (f"据现有资料,纳税缴费信用{level}级纳税人适用以下{entry['kind']}措施(均未能从国家税务总局公告2025年第12号原文核实,"
            "标注待复核,以主管税务机关答复为准):\n" + "\n".join(lines))


def consult_documents() -> list[dict]:
    """One consultation document per level that lists something: its title, the answer, the basis, the phrasings
    people ask with. The consult domain indexes them beside the plan's measures."""
    docs = []
    for level in LEVELS:
        entry = for_level(level)
        if not entry["items"]:
            continue
        word = {"激励": "好处", "限制": "限制"}.get(entry["kind"], "措施")
        docs.append({"ref": f"credit-incentives:{level}", "level": level,
                     "title": f"纳税缴费信用{level}级纳税人有哪些{entry['kind']}措施",
                     "answer": answer(level),
                     "basis": "《纳税缴费信用管理办法》(国家税务总局公告2025年第12号)(待复核);税总纳服函〔2022〕32号 附件第119、121条",
                     "phrasings": [f"{level}级纳税人有什么{word}", f"信用等级{level}级有哪些{entry['kind']}",
                                   f"纳税信用{level}级有什么{word}", f"纳税缴费信用评为{level}级能享受什么",
                                   f"{level}级纳税人{entry['kind']}措施"]})
    return docs
