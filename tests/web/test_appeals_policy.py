"""Who may move on, reassign, and see the contact of which demand or complaint (appeals/policy.py): the item's
page offers each action exactly to those the service lets do it, over the real HTTP server, for officers of the
responsible unit, its parent and grandparent, its child, a sibling and another province, and for the other
roles that read items.

Four items sit with 甲市 (110100) in each state an official moves one through — received, in progress, replied,
and closed with its contact erased after the retention period — and one with 一县 (110101), below it.
"""

from __future__ import annotations

from sqlalchemy import func, select

from chunfeng.appeals import intake
from chunfeng.appeals import services as appeals
from chunfeng.appeals.errors import AppealError
from chunfeng.appeals.models import Appeal
from chunfeng.org.access import SystemActor
from chunfeng.org.models import AuditEntry
from tests.web.policy_matrix import Cell, check

OFFICERS = {"nat_officer": "000000", "bj_officer": "110000", "city_officer": "110100", "county_officer": "110101",
            "county2_officer": "110102", "city2_officer": "110200", "gd_officer": "440000"}
# Roles that read items but do not handle them: the bureau's viewer and action office (tests/conftest.py), an agent.
READERS = ["viewer", "bj_office", "bj_agent"]


def _snapshot(db):
    with db.read() as s:
        items = s.execute(select(Appeal.id, Appeal.state, Appeal.unit_id, Appeal.measures, Appeal.overridden_by)
                          .order_by(Appeal.id)).all()
        viewed = s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "appeals.contact.viewed"))
    return [tuple(map(str, row)) for row in items], viewed


def _item(session, region: str, moves: list[str]) -> Appeal:
    appeal, _ = intake.submit(session=session, submission=intake.Submission(
        kind="complaint", title="出口退税慢", text="出口退税申报后等了十几个工作日还没有到账", region=region,
        submitter="张三", phone="13812345678"))
    for move in moves:
        appeals.act(session=session, actor=SystemActor(), appeal_id=appeal.id, action=move, note="已处理")
    return appeal


def test_moves_reassignment_and_contacts_are_offered_exactly_where_the_service_allows(bureau, add_users, server):
    add_users({name: (code, ["service_officer"]) for name, code in OFFICERS.items()} | {"bj_agent": ("110000", ["agent"])})
    with bureau.write() as s:
        received = _item(s, "110100", []).id
        working = _item(s, "110100", ["accept", "start"]).id
        replied = _item(s, "110100", ["accept", "start", "reply"]).id
        closed = _item(s, "110100", ["accept", "start", "reply", "close"])
        closed.submitter = closed.phone = closed.email = closed.phone_digest = ""  # retention erased it
        closed = closed.id
        below = _item(s, "110101", []).id
    cells = []
    for who in [*OFFICERS, *READERS]:
        for item in (received, working, replied, closed, below):
            page = f"/appeals/{item}"
            for move in appeals.MOVES:
                cells.append(Cell(who, page, f"{page}/act", lambda s, u, i=item, m=move: appeals.act(
                    session=s, actor=u, appeal_id=i, action=m, note="已答复"), {"action": move, "note": "已答复"},
                    name=f"{page}/{move}", marker=f'name="action" value="{move}"'))
            cells.append(Cell(who, page, f"{page}/override", lambda s, u, i=item: appeals.override(
                session=s, actor=u, appeal_id=i, measures=[54]), {"measures": "54"}))
            cells.append(Cell(who, page, f"{page}/contact", lambda s, u, i=item: appeals.contact(
                session=s, actor=u, appeal_id=i, masked=False)))
    handlers = {"nat_officer", "bj_officer", "city_officer"}
    by_state = {received: "accept", working: "reply", replied: "close"}
    expected = {(who, f"/appeals/{item}/{move}") for item, move in by_state.items() for who in handlers}
    expected |= {(who, f"/appeals/{below}/accept") for who in handlers | {"county_officer"}}
    expected |= {(who, f"/appeals/{item}/override") for item in (received, working, replied, closed) for who in handlers}
    expected |= {(who, f"/appeals/{below}/override") for who in handlers | {"county_officer"}}
    # nothing left to see on the erased item: the button is not offered and the service says why
    expected |= {(who, f"/appeals/{item}/contact") for item in (received, working, replied) for who in handlers}
    expected |= {(who, f"/appeals/{below}/contact") for who in handlers | {"county_officer"}}
    check(bureau, server, cells, expected, (AppealError,), _snapshot)
