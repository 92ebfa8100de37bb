"""Schemathesis over the whole OpenAPI schema, as an anonymous visitor and as a user of each role, against
the real HTTP server: no 5xx anywhere, and no response outside what the schema (or, for pages, the
application) declares.

How it runs. For each role a fresh database with the plan and one user of that role at the national unit
(000000), logged in through the real login form. Then every operation of /api/openapi.json gets
`EXAMPLES` generated requests (schemathesis's positive generation from the operation's parameters and
body schema; Hypothesis derandomized, so every run sends the same requests and CI is reproducible), each
sent with the user's session cookie and the CSRF token in the `X-CSRF-Token` header, which `csrf_protect`
accepts for every state-changing request whatever its body (form, multipart or JSON). Redirects are not
followed: a 303 is the answer under test. Every failing operation is collected and reported together, each
with schemathesis's reproducing curl command. Only POST /logout is left out, and the run's own session id
in POST /sessions/{session_id}/end (both would log the run out; see below).

What is checked where.
- The JSON API (paths under /api/, which answers JSON whatever the Accept header says): schemathesis's
  not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance and
  response_schema_conformance. Its schema declares its bodies exactly (no other keys) and its errors
  (`chunfeng.web.contract.API_ERRORS`): every status, media type and body must be one it declares.
- Pages and forms (every other path): FastAPI's schema declares `200 application/json` (and 422) for them,
  while they answer HTML pages, file downloads, 303 redirects (after a form, or to the login page) and HTML
  error pages: what the schema says of their responses is not meant to be true, and the conformance checks
  would only report that. They get not_a_server_error and `page_status` below: the status must be one the
  application gives on purpose (success, redirect, or one of its own 4xx error pages), which catches 500s,
  FastAPI's raw 422 (a parameter error that escaped the application's handler) and any other status.
  Their parameters and bodies are fuzzed like the API's, and the numbers among them are bounded in the
  schema (`chunfeng.web.contract`), so out-of-range ones are the application's 400, not the database's 500.

The bound: EXAMPLES requests per operation per role (about 100 operations × 10 runs), no shrinking (the
first failing request is reported, with its curl command), a request timeout, and no Hypothesis deadline
(a slow machine must not make the run flaky). The file takes about two minutes on a 2-core machine, on
SQLite or PostgreSQL; CHUNFENG_FUZZ_EXAMPLES=40 (a quarter of an hour) digs deeper by hand.
"""

from __future__ import annotations

import os
import time

import httpx
import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err
from sqlalchemy import select

from chunfeng.org.models import User, UserSession
from chunfeng.org.roles import ROLES
from chunfeng.web.security import ANON_COOKIE, CSRF_HEADER, SESSION_COOKIE
from tests.conftest import csrf_from, login

EXAMPLES = int(os.environ.get("CHUNFENG_FUZZ_EXAMPLES", "6"))  # generated requests per operation, per role
REQUEST_TIMEOUT = 30  # seconds for one request
ANONYMOUS = "anonymous"

# POST /logout ends the session the run uses: every later request would be anonymous and the run would
# silently stop testing the role. Logging out is covered by tests/web/test_auth.py and the route matrix.
EXCLUDED = {("POST", "/logout")}

API_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
              response_schema_conformance]

# What pages and forms answer on purpose: the page or file, a redirect (after a form, or to the login page),
# and the application's own error pages (bad parameters, login needed, refused, not found, edited meanwhile).
PAGE_STATUSES = {200, 303, 400, 401, 403, 404, 409}


def page_status(ctx, response, case):
    """A page or form answers only with a status the application gives on purpose (5xx: not_a_server_error)."""
    status = response.status_code
    assert status >= 500 or status in PAGE_STATUSES, f"answered {status}, not one of {sorted(PAGE_STATUSES)}"


PAGE_CHECKS = [not_a_server_error, page_status]

SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES, derandomize=True, database=None, deadline=None, phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
                           HealthCheck.large_base_example], print_blob=False)


def signed_in(server: str, role: str) -> tuple[dict[str, str], str]:
    """Cookies and CSRF token of a fresh session: the role's user logged in, or an anonymous visitor."""
    if role == ANONYMOUS:
        with httpx.Client(base_url=server) as client:
            token = csrf_from(client.get("/login").text)
            return {ANON_COOKIE: client.cookies[ANON_COOKIE]}, token
    client = login(server, f"fuzz_{role}")
    token = csrf_from(client.get("/sessions").text)
    cookies = {SESSION_COOKIE: client.cookies[SESSION_COOKIE]}
    client.close()
    return cookies, token


def fuzz_operation(operation, *, server: str, http: requests.Session, cookies: dict[str, str], token: str,
                   keep_session: int | None) -> None:
    """EXAMPLES requests to one operation; raises on the first one that fails a check."""
    checks = API_CHECKS if operation.path.startswith("/api/") else PAGE_CHECKS
    strategy = operation.as_strategy()
    if operation.path == "/sessions/{session_id}/end" and keep_session is not None:
        # Ending other sessions (any id, existing or not) is fuzzed; ending the run's own would log it out,
        # as /logout would.
        strategy = strategy.filter(lambda case: case.path_parameters.get("session_id") != keep_session)

    @SETTINGS
    @hypothesis.given(case=strategy)
    def run(case):
        case.call_and_validate(base_url=server, session=http, headers={CSRF_HEADER: token}, cookies=cookies,
                               checks=checks, allow_redirects=False, timeout=REQUEST_TIMEOUT)

    run()


@pytest.fixture(scope="module")
def api_schema(server):
    return schemathesis.openapi.from_url(f"{server}/api/openapi.json")


@pytest.mark.parametrize("role", [ANONYMOUS, *sorted(ROLES)])
def test_openapi_fuzz(server, with_plan, add_users, api_schema, role):
    if role != ANONYMOUS:
        add_users({f"fuzz_{role}": ("000000", [role])})
    cookies, token = signed_in(server, role)
    keep_session = None
    if role != ANONYMOUS:
        with with_plan.read() as session:
            keep_session = session.scalar(select(UserSession.id).join(User).where(User.username == f"fuzz_{role}"))

    failures, tested = [], 0
    started = time.monotonic()
    with requests.Session() as http:
        for result in api_schema.get_all_operations():
            if isinstance(result, Err):
                failures.append(f"the schema has an operation schemathesis cannot read: {result.err()}")
                continue
            operation = result.ok()
            if (operation.method.upper(), operation.path) in EXCLUDED:
                continue
            tested += 1
            try:
                fuzz_operation(operation, server=server, http=http, cookies=cookies, token=token,
                               keep_session=keep_session)
            except (Exception, FailureGroup) as exc:  # every failing operation is reported, not only the first
                failures.append(f"{operation.label}:\n{exc}")
    elapsed = time.monotonic() - started

    assert tested > 90, f"only {tested} operations in the schema"
    if failures:
        pytest.fail(f"{len(failures)} of {tested} operations failed as {role}:\n\n" + "\n\n".join(failures), pytrace=False)
    if role != ANONYMOUS:  # the run tested the role to the end, not a visitor logged out half-way
        response = httpx.get(f"{server}/sessions", cookies=cookies)
        assert response.status_code == 200, "the run's session ended during the run"
    print(f"{role}: {tested} operations × {EXAMPLES} examples in {elapsed:.1f}s")
