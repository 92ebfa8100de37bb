"""Demo accounts share a documented password: the demo refuses to create them outside a local environment."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date

from sqlalchemy import func, select

from chunfeng.org.models import User


def test_demo_refuses_outside_a_local_environment(db, tmp_path):
    env = {**os.environ, "CHUNFENG_DATABASE_URL": db.url, "CHUNFENG_ENVIRONMENT": "production",
           "CHUNFENG_SECRET_KEY": "s" * 64, "CHUNFENG_DATA_KEY": "0123456789abcdef" * 2,
           "CHUNFENG_PUSH_STORE": str(tmp_path / "t.duckdb")}
    run = subprocess.run([sys.executable, "-m", "chunfeng", "demo", "--no-serve"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode != 0 and "只能在本地环境中创建" in run.stderr
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(User)) == 0


def test_demo_taxpayer_is_named_in_clear(db, tmp_path, monkeypatch):
    """The taxpayer's account was named from the store's contact name, which is SM4 ciphertext: `sm4gcm:…(公司)`
    showed in every page header and in the audit entry. It is named by the registry's company name."""
    import json

    from chunfeng import crypto, demo
    from chunfeng.org import services as org
    from chunfeng.org.access import SystemActor
    from chunfeng.org.errors import ValidationFailed
    from chunfeng.org.models import AuditEntry
    from chunfeng.push import store

    monkeypatch.setattr(demo, "DEMO_TAXPAYERS", 800)  # enough for a small 北京 enterprise with a claim
    with db.write() as s:
        user = demo.push_demo(session=s, store_file=tmp_path / "t.duckdb")
        assert user is not None
    with store.connect_store(tmp_path / "t.duckdb") as conn:
        company = conn.execute("SELECT name FROM registry WHERE credit_code = ?", [user.taxpayer_code]).fetchall()[0][0]
    with db.read() as s:
        user = s.scalar(select(User).where(User.username == "taxpayer"))
        created = s.scalar(select(AuditEntry).where(AuditEntry.action == "org.user.created"))
    assert user.display_name == company and crypto.PREFIX not in user.display_name
    assert json.loads(created.after)["display_name"] == company
    with db.write() as s:  # and no caller can name an account with a ciphertext
        try:
            org.add_user(session=s, actor=SystemActor(), username="cipher", display_name=crypto.encrypt("张三"),
                         unit_code="110000", roles=["viewer"], password="Start-2022-pw")
            raise AssertionError("a ciphertext display name was accepted")
        except ValidationFailed as exc:
            assert "明文" in str(exc)


def test_demo_items_stay_inside_the_covered_calendar():
    """Late in a year whose successor is not imported, the demo's time limits would reach an uncovered year and
    intake would refuse them: the demo files them early enough instead (and on other days, today)."""
    from chunfeng.demo import demo_appeals_day
    from chunfeng.workdays import load_calendar

    cal = load_calendar()
    last = max(cal.years)
    assert demo_appeals_day(cal, date(last, 6, 1)) == date(last, 6, 1)
    late = demo_appeals_day(cal, date(last, 12, 28))
    assert late < date(last, 12, 28) and late.year == last
    cal.add_working_days(late, 15)  # within the covered year: no error


def test_the_demo_leaves_work_for_each_account(with_plan):
    """Issue 14.9: the README's `beijing` could neither break down nor approve, and every province already held
    all 121 measures. Each ledger account of the demo now has its main step to do — done here as that account."""
    from chunfeng import demo
    from chunfeng.ledger import reporting, reviews
    from chunfeng.ledger import services as ledger
    from chunfeng.ledger.models import Assignment
    from chunfeng.ledger.services import Terms
    from chunfeng.org.models import Unit

    db = with_plan
    with db.write() as s:
        demo.synthetic_units(session=s)
        demo.living_ledger(session=s)
        for username, name, unit_code, roles, _ in demo.DEMO_USERS:
            from chunfeng.org import services as org
            from chunfeng.org.access import SystemActor
            org.add_user(session=s, actor=SystemActor(), username=username, display_name=name, unit_code=unit_code,
                         roles=roles, password="Demo-password-1")
    with db.write() as s:
        users = {u.username: u for u in s.scalars(select(User))}
        beijing = s.scalar(select(Unit).where(Unit.code == "110000"))
        held = {a.measure_no for a in s.scalars(select(Assignment).where(Assignment.unit_id == beijing.id))}
        assert set(demo.UNASSIGNED_MEASURES).isdisjoint(held)
        # office: assign a measure no province holds yet
        assert ledger.assign_bulk(session=s, actor=users["office"], level="province", measure_nos=[121],
                                  terms=Terms(owner="春风办", deadline=date.today().replace(year=date.today().year + 1)))
        # beijing: review its city's report, and break down a measure it holds
        queue = reviews.review_queue(session=s, actor=users["beijing"]).items
        assert queue, "nothing for beijing to review"
        reporting.review_report(session=s, actor=users["beijing"], report_id=queue[0].id, approve=True)
        whole = next(a for a in s.scalars(select(Assignment).where(Assignment.unit_id == beijing.id,
                                                                   Assignment.measure_no == 10)))
        ledger.break_down(session=s, actor=users["beijing"], assignment_id=whole.id, unit_codes=["110002"],
                          terms=Terms(deadline=whole.deadline))
        # city_office: the county's report waits for it
        assert reviews.review_queue(session=s, actor=users["city_office"]).items
        # county: a returned report and things on its to-do list
        todo = ledger.todo(session=s, actor=users["county"])
        assert todo


def test_the_demo_holds_a_published_survey_with_a_drawn_sample_and_answers(db, tmp_path, monkeypatch):
    """Issue 18: a new user finds one survey working: published, a stratified sample drawn from the demo taxpayers
    (its seed recorded), invited through the message centre, and some answers; a second fill adds nothing."""
    from chunfeng import demo
    from chunfeng.push.models import PushMessage
    from chunfeng.survey.models import Survey, SurveyResponse
    from chunfeng.survey.sample_models import SurveySample

    monkeypatch.setattr(demo, "DEMO_TAXPAYERS", 3000)
    with db.write() as s:
        demo.push_demo(session=s, store_file=tmp_path / "t.duckdb")
        answered = demo.survey_demo(session=s, store_file=tmp_path / "t.duckdb", base_url="http://127.0.0.1:8000/")
    assert answered > 0
    with db.read() as s:
        survey = s.scalar(select(Survey))
        sample = s.scalar(select(SurveySample))
        assert survey.state == "published" and sample.seed == demo.SEED and sample.state == "invited"
        assert s.scalar(select(func.count()).select_from(SurveyResponse)) == answered
        assert survey.questions[-1].kind == "matrix"  # each answer rates its rows, counted row by row
        assert all(len([k for k in r.answers if k.startswith("Q6.")]) == 4 for r in s.scalars(select(SurveyResponse)))
        assert s.scalar(select(func.count()).select_from(PushMessage).where(
            PushMessage.campaign_id == sample.campaign_id)) > 0
    with db.write() as s:
        assert demo.survey_demo(session=s, store_file=tmp_path / "t.duckdb", base_url="http://x/") == 0
