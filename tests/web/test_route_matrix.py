"""The route matrix: every role × every route of the application, each cell expected allow or deny,
generated from one table (route → permission) and the role table, over a real HTTP server; the CI runs it
on SQLite and on PostgreSQL.

A denied cell must answer 403 before the route reads anything; an allowed one anything but 401/403 or the
way to the login page (404 for the made-up ids, 400/422 for the empty forms) — and never a 500.
"""

from __future__ import annotations

import httpx
import pytest

from chunfeng.org.roles import PERMISSIONS, ROLES
from tests.conftest import csrf_from, login

PUBLIC, SIGNED_IN = "public", "signed-in"

# (method, path) → who may use it: PUBLIC, SIGNED_IN, a permission, or any of several permissions.
ROUTES: dict[tuple[str, str], str | tuple[str, ...]] = {
    ("GET", "/"): PUBLIC, ("GET", "/healthz"): PUBLIC, ("GET", "/api/openapi.json"): PUBLIC,
    ("GET", "/login"): PUBLIC, ("POST", "/login"): PUBLIC,
    ("GET", "/password"): SIGNED_IN, ("POST", "/password"): SIGNED_IN, ("GET", "/totp"): SIGNED_IN, ("POST", "/totp"): SIGNED_IN,
    ("POST", "/totp/secret"): SIGNED_IN,
    ("GET", "/sessions"): SIGNED_IN, ("POST", "/sessions/{session_id}/end"): SIGNED_IN, ("POST", "/logout"): SIGNED_IN,
    ("GET", "/plan"): "plan.view", ("GET", "/plan/items/{no}"): "plan.view", ("GET", "/plan/measures/{no}"): "plan.view",
    ("GET", "/plan/search"): "plan.view", ("GET", "/plan/export.xlsx"): "plan.view", ("POST", "/plan/import"): "plan.import",
    ("GET", "/org"): "org.unit.view", ("GET", "/org/units/{code}"): "org.unit.view",
    ("GET", "/org/unit-picker"): "org.unit.view",
    ("GET", "/org/units/{code}/export.xlsx"): "org.unit.view", ("POST", "/org/units/{code}/import"): "org.unit.import",
    ("POST", "/org/units/{code}/users"): "org.user.manage", ("POST", "/org/users/{username}/active"): "org.user.manage",
    ("GET", "/security"): "org.user.roles", ("POST", "/security/users/{username}/roles"): "org.user.roles",
    ("POST", "/security/users/{username}/unlock"): "org.user.roles",
    ("POST", "/security/users/{username}/totp-reset"): "org.user.roles",
    ("GET", "/audit"): "audit.view", ("GET", "/audit/export.xlsx"): "audit.view", ("GET", "/audit/archive"): "audit.view",
    ("GET", "/ledger"): "ledger.view", ("GET", "/ledger/units/{code}"): "ledger.view", ("GET", "/ledger/measures"): "ledger.view",
    ("GET", "/ledger/assignments/{assignment_id}"): "ledger.view",
    ("POST", "/ledger/assignments/{assignment_id}/reports"): "ledger.report",
    ("GET", "/ledger/evidence/{evidence_id}"): "ledger.view", ("POST", "/ledger/reports/{report_id}/review"): "ledger.review",
    ("POST", "/ledger/assignments/{assignment_id}/break-down"): "ledger.assign", ("GET", "/ledger/todo"): "ledger.view",
    ("POST", "/ledger/todo/upload"): "ledger.report", ("GET", "/ledger/review"): "ledger.review", ("POST", "/ledger/review/batch"): "ledger.review",
    ("GET", "/ledger/assign"): "ledger.assign", ("POST", "/ledger/assign"): "ledger.assign",
    ("POST", "/ledger/export.xlsx"): "ledger.view",
    ("POST", "/ledger/assignments/{assignment_id}/notices"): "ledger.supervise",
    ("POST", "/ledger/assignments/{assignment_id}/remind"): "ledger.supervise",
    ("POST", "/ledger/assignments/{assignment_id}/deadline"): "ledger.assign",
    ("GET", "/ledger/notices"): "ledger.view", ("GET", "/ledger/notices/{notice_id}"): ("ledger.answer", "ledger.supervise"),
    ("POST", "/ledger/notices/{notice_id}/answer"): "ledger.answer",
    ("POST", "/ledger/notices/{notice_id}/close"): "ledger.supervise",
    ("GET", "/ledger/league"): "ledger.view", ("GET", "/ledger/briefing"): "ledger.view",
    ("GET", "/inbox"): "inbox.read", ("POST", "/inbox/{message_id}/read"): "inbox.read",
    ("POST", "/inbox/channels"): "inbox.channel",
    ("GET", "/ask"): PUBLIC, ("POST", "/ask/feedback"): PUBLIC, ("POST", "/ask/handoff"): PUBLIC, ("GET", "/ask/followup/{query_id}/{token}"): PUBLIC,
    ("GET", "/api/consult"): PUBLIC, ("POST", "/api/consult/handoff"): PUBLIC,
    ("GET", "/consult/queue"): "consult.agent", ("POST", "/consult/handoffs/{handoff_id}/answer"): "consult.agent",
    ("POST", "/consult/handoffs/{handoff_id}/promote"): "consult.kb.edit",
    ("POST", "/consult/handoffs/{handoff_id}/demand"): "appeals.enter",
    ("GET", "/consult/kb"): "consult.agent", ("GET", "/consult/kb/export.{fmt}"): "consult.agent",
    ("POST", "/consult/kb/import"): "consult.kb.edit", ("GET", "/consult/kb/new"): "consult.kb.edit",
    ("GET", "/consult/kb/{key}"): "consult.kb.edit", ("POST", "/consult/kb"): "consult.kb.edit",
    ("GET", "/consult/analytics"): "consult.analytics",
    ("GET", "/consult/review"): "consult.agent", ("POST", "/consult/review/{key}"): "consult.kb.edit",
    ("GET", "/push/policies"): "push.policy.view", ("GET", "/push/policies/export.xlsx"): "push.policy.view",
    ("GET", "/push/policies/{policy_id}"): "push.policy.view", ("POST", "/push/rules/check"): "push.policy.view",
    ("POST", "/push/policies/{policy_id}/rule"): "push.policy.edit",
    ("GET", "/push/policies/{policy_id}/match"): "push.match", ("GET", "/push/policies/{policy_id}/taxpayers"): "push.match",
    ("POST", "/push/policies/{policy_id}/taxpayers/export"): "push.match",
    ("GET", "/push/campaigns"): "push.campaign", ("POST", "/push/campaigns"): "push.campaign",
    ("GET", "/push/campaigns/{campaign_id}"): "push.campaign", ("POST", "/push/campaigns/{campaign_id}/run"): "push.campaign",
    ("POST", "/push/campaigns/{campaign_id}/requeue"): "push.campaign",
    ("GET", "/push/campaigns/{campaign_id}/preview"): "push.campaign",
    ("POST", "/push/campaigns/{campaign_id}/stages/{stage}/approve"): "push.stage.approve",
    ("POST", "/push/campaigns/{campaign_id}/stages/{stage}/withdraw"): "push.stage.approve",
    ("POST", "/push/campaigns/{campaign_id}/retry"): "push.campaign",
    ("POST", "/push/campaigns/{campaign_id}/edit"): "push.campaign", ("POST", "/push/campaigns/{campaign_id}/pause"): "push.campaign",
    ("POST", "/push/campaigns/{campaign_id}/resume"): "push.campaign", ("POST", "/push/campaigns/{campaign_id}/cancel"): "push.campaign",
    ("GET", "/push/inbox"): "push.inbox", ("GET", "/push/inbox/{message_id}"): "push.inbox",
    ("POST", "/push/inbox/{message_id}/read"): "push.inbox", ("GET", "/push/bill"): "push.inbox",
    ("GET", "/push/bills/{credit_code}"): ("push.bill.view", "push.inbox"), ("POST", "/push/bills/send"): "push.campaign",
    ("GET", "/appeals/new"): PUBLIC, ("POST", "/appeals/new"): PUBLIC, ("POST", "/api/appeals"): PUBLIC,
    ("GET", "/appeals/track/{token}"): PUBLIC, ("POST", "/appeals/track/{token}/rate"): PUBLIC,
    ("POST", "/appeals/track/{token}/reopen"): PUBLIC,
    ("GET", "/appeals/find"): PUBLIC, ("POST", "/appeals/find"): PUBLIC,
    ("GET", "/appeals"): "appeals.view", ("GET", "/appeals/enter"): "appeals.enter", ("POST", "/appeals/enter"): "appeals.enter",
    ("POST", "/appeals/import"): "appeals.enter", ("GET", "/appeals/attachments/{attachment_id}"): "appeals.view",
    ("GET", "/appeals/analysis"): "appeals.analysis", ("GET", "/appeals/{appeal_id}"): "appeals.view",
    ("POST", "/appeals/{appeal_id}/contact"): "appeals.contact", ("POST", "/appeals/{appeal_id}/act"): "appeals.handle",
    ("POST", "/appeals/{appeal_id}/override"): "appeals.handle",
    ("GET", "/calendar"): "calendar.view",
    ("GET", "/jobs"): "jobs.view", ("GET", "/jobs/runs/{run_id}"): SIGNED_IN,
    ("GET", "/jobs/runs/{run_id}/progress"): SIGNED_IN, ("GET", "/jobs/runs/{run_id}/download"): SIGNED_IN,
    ("GET", "/deliveries"): ("outbox.view", "push.campaign"), ("GET", "/deliveries/export.xlsx"): ("outbox.view", "push.campaign"),
    ("GET", "/credit"): "credit.view", ("POST", "/credit/a-list.xlsx"): "credit.view", ("POST", "/credit/import"): "credit.import", ("GET", "/credit/mine"): "credit.self",
    ("GET", "/credit/taxpayers/{credit_code}"): ("credit.view", "credit.self"), ("GET", "/credit/rules"): PUBLIC,
    ("GET", "/credit/violators"): PUBLIC, ("GET", "/credit/catalogue"): PUBLIC, ("GET", "/credit/catalogue.xlsx"): PUBLIC,
    ("GET", "/credit/violators/export.xlsx"): PUBLIC,
    ("GET", "/credit/violators/manage"): "credit.violators.manage", ("POST", "/credit/violators"): "credit.violators.manage",
    ("POST", "/credit/violators/{violator_id}/remove"): "credit.violators.manage",
    ("GET", "/credit/repairs/new"): "credit.repair.apply", ("POST", "/credit/repairs"): "credit.repair.apply",
    ("GET", "/credit/repairs/mine"): "credit.self", ("GET", "/credit/repairs"): "credit.view",
    ("GET", "/credit/repairs/{repair_id}"): ("credit.view", "credit.self"),
    ("POST", "/credit/repairs/{repair_id}/decide"): "credit.repair.decide",
    ("GET", "/credit/repairs/evidence/{evidence_id}"): ("credit.view", "credit.self"),
    ("GET", "/credit/evaluations"): ("credit.evaluate", "credit.self"), ("POST", "/credit/evaluations"): ("credit.evaluate", "credit.self"),
    ("POST", "/credit/evaluations/{evaluation_id}/evaluate"): "credit.evaluate", ("GET", "/credit/incentives"): PUBLIC,
    ("GET", "/credit/risk"): "credit.view", ("POST", "/credit/risk/compute"): "credit.risk",
    ("POST", "/credit/evaluate-year"): "credit.evaluate",
    ("POST", "/credit/risk/export.xlsx"): "credit.view",
    ("GET", "/api/credit/violators"): PUBLIC, ("GET", "/api/credit/taxpayers/{credit_code}"): ("credit.view", "credit.self"),
    ("GET", "/api/credit/repairs"): ("credit.view", "credit.self"),
    ("GET", "/api/credit/repairs/{repair_id}"): ("credit.view", "credit.self"), ("GET", "/api/credit/risk"): "credit.view",
    ("GET", "/s/{token}"): PUBLIC, ("POST", "/s/{token}"): PUBLIC,
    ("GET", "/survey"): "survey.view", ("POST", "/survey/import"): "survey.manage", ("GET", "/survey/{survey_id}"): "survey.view",
    ("POST", "/survey/{survey_id}/publish"): "survey.manage", ("POST", "/survey/{survey_id}/invitations"): "survey.manage",
    ("POST", "/survey/{survey_id}/invitations/units"): "survey.manage",
    ("POST", "/survey/{survey_id}/invitations/units/remind"): "survey.manage",
    ("GET", "/survey/{survey_id}/qr.{kind}"): "survey.view", ("GET", "/survey/{survey_id}/poster"): "survey.view",
    ("GET", "/api/surveys/{survey_id}/crosstab"): "survey.view", ("GET", "/api/surveys/{survey_id}/themes"): "survey.view",
    ("POST", "/survey/{survey_id}/findings"): "ledger.assign",
    ("GET", "/survey/{survey_id}/results"): "survey.view",
    ("GET", "/survey/{survey_id}/analysis"): "survey.view", ("POST", "/survey/{survey_id}/population"): "survey.manage",
    ("POST", "/survey/{survey_id}/themes"): "survey.manage",
    ("POST", "/survey/drafts"): "survey.manage", ("GET", "/survey/{survey_id}/build"): "survey.manage",
    ("POST", "/survey/{survey_id}/title"): "survey.manage", ("POST", "/survey/{survey_id}/questions"): "survey.manage",
    ("POST", "/survey/{survey_id}/questions/{question_id}"): "survey.manage",
    ("POST", "/survey/{survey_id}/questions/{question_id}/move"): "survey.manage",
    ("POST", "/survey/{survey_id}/questions/{question_id}/delete"): "survey.manage",
    ("POST", "/survey/{survey_id}/next-version"): "survey.manage", ("GET", "/survey/{survey_id}/preview"): "survey.view",
    ("GET", "/direct-reports"): ("survey.view", "survey.report"), ("POST", "/direct-reports"): "survey.manage",
    ("GET", "/direct-reports/{form_id}"): "survey.view", ("POST", "/direct-reports/{form_id}/remind"): "survey.manage",
    ("GET", "/direct-reports/{form_id}/report"): "survey.report", ("POST", "/direct-reports/{form_id}/report"): "survey.report",
    ("GET", "/survey/{survey_id}/sample"): "survey.manage", ("POST", "/survey/{survey_id}/samples"): "survey.manage",
    ("POST", "/survey/{survey_id}/sample/list"): "survey.manage",
    ("POST", "/survey/{survey_id}/samples/list"): "survey.manage",
    ("GET", "/survey/samples/{sample_id}"): "survey.view", ("GET", "/survey/samples/{sample_id}/strata.xlsx"): "survey.view",
    ("POST", "/survey/samples/{sample_id}/invite"): "survey.manage",
    ("GET", "/survey/samples/{sample_id}/reminders"): "survey.manage",
    ("POST", "/survey/samples/{sample_id}/reminders"): "survey.manage",
    ("GET", "/survey/invited/{member_id}"): "push.inbox", ("GET", "/s/{token}/stop"): PUBLIC, ("POST", "/s/{token}/stop"): PUBLIC,
    ("GET", "/api/surveys"): "survey.view", ("GET", "/api/surveys/{survey_id}"): "survey.view",
    ("GET", "/api/surveys/{survey_id}/results"): "survey.view", ("GET", "/api/s/{token}"): PUBLIC,
    ("POST", "/api/s/{token}"): PUBLIC,
}

# Values for path parameters: ids that do not exist (an allowed user gets 404), codes that do.
SAMPLE = {"no": "1", "code": "000000", "fmt": "xlsx", "key": "kb-9999", "token": "no-such-token", "policy_id": "no-such-policy",
          "credit_code": "91110000000000000X", "username": "nobody-here", "stage": "first"}


def url(path: str) -> str:
    for name in path.split("{")[1:]:
        name = name.split("}")[0]
        path = path.replace("{" + name + "}", SAMPLE.get(name, "999999"))
    return path


def may(role: str, rule: str | tuple[str, ...]) -> bool:
    """Every probing user sits at the national unit, so the role alone decides."""
    if rule in (PUBLIC, SIGNED_IN):
        return True
    return any(role in PERMISSIONS[permission] for permission in ((rule,) if isinstance(rule, str) else rule))


def application_routes(server: str) -> set[tuple[str, str]]:
    schema = httpx.get(f"{server}/api/openapi.json").json()
    found = {(method.upper(), path) for path, item in schema["paths"].items() for method in item}
    return found | {("GET", "/"), ("GET", "/healthz"), ("GET", "/api/openapi.json")}


def test_the_table_names_every_route_of_the_application(server):
    routes = application_routes(server)
    assert routes - set(ROUTES) == set(), "routes missing from the matrix"
    assert set(ROUTES) - routes == set(), "the matrix names routes the application no longer has"


def needs_login(response: httpx.Response) -> bool:
    redirected = response.status_code in (303, 307) and response.headers.get("location", "").startswith("/login")
    return redirected or (response.status_code == 401 and "请先登录" in response.text)


def call(client: httpx.Client, method: str, path: str, token: str) -> httpx.Response:
    if method == "GET":
        return client.get(url(path))
    return client.post(url(path), data={"csrf_token": token})


def test_anonymous_visitors_reach_only_public_routes(server, with_plan):
    with httpx.Client(base_url=server) as client:
        token = csrf_from(client.get("/login").text)
        for (method, path), rule in ROUTES.items():
            response = call(client, method, path, token)
            assert response.status_code < 500, (method, path, response.status_code)
            if rule == PUBLIC:  # the home page sends visitors to the login page: that is its job
                assert response.status_code != 403 and (path == "/" or not needs_login(response)), (method, path)
            else:
                assert needs_login(response), (method, path, response.status_code)


@pytest.mark.parametrize("role", sorted(ROLES))
def test_route_matrix(server, with_plan, add_users, role):
    add_users({f"matrix_{role}": ("000000", [role])})
    client = login(server, f"matrix_{role}")
    token = csrf_from(client.get("/sessions").text)
    wrong = []
    for (method, path), rule in ROUTES.items():
        if (method, path) == ("POST", "/logout"):
            continue  # below: it ends the session the rest of the matrix runs in
        response = call(client, method, path, token)
        assert response.status_code < 500, (method, path, response.status_code, response.text[:300])
        if may(role, rule):
            if response.status_code == 403 or needs_login(response):
                wrong.append(f"{method} {path}: expected allow, got {response.status_code}")
        elif response.status_code != 403:
            wrong.append(f"{method} {path}: expected 403, got {response.status_code}")
    assert wrong == []
    assert call(client, "POST", "/logout", token).status_code == 303
    assert needs_login(client.get("/sessions"))
