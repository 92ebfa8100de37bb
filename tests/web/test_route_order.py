"""The routers are included with the public front door first (`web/app.ROUTERS`): Starlette tries a request's path
against every route in turn, so a question or a filing used to be matched against the officials' hundred-odd routes
before its own (issue 16: a quarter of a millisecond of the event loop's CPU each). That order may change only while
it changes no answer: no route of one router may match a path written for another router's route."""

from __future__ import annotations

import re

from fastapi import APIRouter

from chunfeng.web.app import ROUTERS


def _example(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)  # a value every converter of this application accepts


def clashes(routers) -> list[tuple[str, str]]:
    """(a route, a path of another router's route it would take), for every pair where the order would matter."""
    found = []
    for i, first in enumerate(routers):
        for second in routers[i + 1:]:
            for a in first.routes:
                for b in second.routes:
                    for x, y in ((a, b), (b, a)):
                        if set(x.methods or ()) & set(y.methods or ()) and x.path_regex.match(_example(y.path)):
                            found.append((x.path, y.path))
    return found


def test_no_router_takes_a_path_written_for_another():
    assert clashes(ROUTERS) == []


def test_a_clash_is_seen_when_there_is_one():
    survey, drafts = APIRouter(), APIRouter()
    survey.add_api_route("/survey/{survey_id}", lambda survey_id: None, methods=["GET"])
    drafts.add_api_route("/survey/drafts", lambda: None, methods=["GET"])
    assert clashes([survey, drafts]) == [("/survey/{survey_id}", "/survey/drafts")]
    drafts.routes[0].methods = {"POST"}  # another method: no clash
    assert clashes([survey, drafts]) == []


def test_the_public_front_door_is_matched_first():
    paths = [route.path for router in ROUTERS[:4] for route in router.routes]
    assert {"/api/consult", "/api/appeals", "/s/{token}"} <= set(paths)
