"""The documents the 12366 benchmarks index: the shipped starter knowledge base and the plan's 121 measures, as
`consult.services.documents` builds them from a database."""

from __future__ import annotations

import json
from datetime import date

from chunfeng.consult.index import Doc
from chunfeng.consult.services import measure_phrasings
from chunfeng.consult.transfer import starter_path
from chunfeng.plan.parser import parse_notice
from chunfeng.plan.services import shipped_notice


def measure_docs() -> list[Doc]:
    """The plan's measures as the system indexes them (see consult.services.documents)."""
    notice = parse_notice(shipped_notice())
    titles = {n.table_no: n.title for n in notice.new_measures}
    asked = measure_phrasings(notice.doc_number)
    return [Doc(f"measure:{m.no}", "measure", f"春风行动2.0版第{m.no}条措施:{i.name}", m.text, measure_no=m.no,
                tags=[c.name, i.name],
                phrasings=[m.text] + ([titles[m.no]] if m.no in titles else []) + asked.get(str(m.no), []))
            for c, i, m in notice.measures()]


def starter_docs() -> list[Doc]:
    data = json.loads(starter_path().read_text(encoding="utf-8"))
    return [Doc(e["id"], "kb", e["question"], e["answer"], basis=e.get("basis", ""), region=e.get("region", "national"),
                effective_from=date.fromisoformat(e["effective_from"]) if e.get("effective_from") else None,
                effective_until=date.fromisoformat(e["effective_until"]) if e.get("effective_until") else None,
                tags=e.get("tags", []), phrasings=e.get("phrasings", []))
            for e in data["entries"]]
