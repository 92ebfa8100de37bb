"""Who may answer which hand-off and add which answer to the knowledge base (consult/policy.py): the agents' queue
offers each action exactly to those the service lets do it, over the real HTTP server, for agents of the
national administration, of the hand-off's bureau and of another province, and for a service officer (who answers
but does not edit the knowledge base).

Hand-offs of 北京 (110000): one waiting, one answered, and one answered that an older release logged under a
district code (110105) rather than its bureau's; one answered hand-off of 广东 (440000).
"""

from __future__ import annotations

from sqlalchemy import func, select

from chunfeng.consult import knowledge
from chunfeng.consult import services as consult
from chunfeng.consult.errors import ConsultError
from chunfeng.consult.models import ConsultQuery, Handoff, KbEntry
from chunfeng.org.models import Unit
from tests.consult.test_services import kb  # noqa: F401  (the fixture)
from tests.web.policy_matrix import Cell, check

ACTORS = ["agent", "bj_agent", "gd_agent", "officer", "viewer"]


def _snapshot(db):
    with db.read() as s:
        return (s.execute(select(Handoff.id, Handoff.state, Handoff.answer, Handoff.promoted_key).order_by(Handoff.id)).all(),
                s.scalar(select(func.count()).select_from(KbEntry)))


def _handoff(session, region: str, unit: str, answer: str = "") -> int:
    query = ConsultQuery(text=f"{region}的问题:小规模纳税人怎么申报", region=region, channel="web", handoff=True)
    session.add(query)
    session.flush()
    item = Handoff(query_id=query.id, text=query.text, region=region, answer=answer,
                   unit_id=session.scalar(select(Unit.id).where(Unit.code == unit)),
                   state="answered" if answer else "waiting", agent="agent" if answer else None)
    session.add(item)
    session.flush()
    return item.id


def test_answers_and_promotions_are_offered_exactly_where_the_service_allows(kb, add_users, server):  # noqa: F811
    add_users({"gd_agent": ("440000", ["agent"])})
    with kb.write() as s:
        waiting = _handoff(s, "110000", "110000")
        answered = _handoff(s, "110000", "110000", answer="按季申报。")
        district = _handoff(s, "110105", "110000", answer="按季申报。")
        guangdong = _handoff(s, "440000", "440000", answer="按季申报。")
    cells = []
    for who in ACTORS:
        cells.append(Cell(who, "/consult/queue", f"/consult/handoffs/{waiting}/answer", lambda s, u: consult.answer_handoff(
            session=s, actor=u, handoff_id=waiting, answer="按季申报。"), {"answer": "按季申报。"}))
        for item in (answered, district, guangdong):
            cells.append(Cell(who, "/consult/queue?state=answered", f"/consult/handoffs/{item}/promote",
                              lambda s, u, item=item: knowledge.promote_handoff(session=s, actor=u, handoff_id=item)))
    expected = {(who, f"/consult/handoffs/{waiting}/answer") for who in ("agent", "bj_agent", "officer")}
    expected |= {(who, f"/consult/handoffs/{item}/promote") for item in (answered, district) for who in ("agent", "bj_agent")}
    expected |= {(who, f"/consult/handoffs/{guangdong}/promote") for who in ("agent", "gd_agent")}
    check(kb, server, cells, expected, (ConsultError,), _snapshot)
