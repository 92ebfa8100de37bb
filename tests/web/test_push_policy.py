"""Who may run, edit, pause, resume, cancel and re-send which campaign (push/policy.py): the campaign's page offers
each action exactly to those the service lets do it, over the real HTTP server, for service officers of the
owning unit (北京), above it (national), below it (a city) and elsewhere (广东), and for roles without campaigns.

Campaigns of 北京 in each state a campaign can be in: active, paused, failed, cancelled, active with every stage
already run, and a dividend-bill campaign; the active and the cancelled one hold a message whose delivery is
uncertain (a crash between sending and recording).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from chunfeng import outbox
from chunfeng.org.access import SystemActor
from chunfeng.push import campaigns, services
from chunfeng.push.errors import PushError
from chunfeng.push.models import Campaign, CampaignStage, PushMessage
from tests.web.policy_matrix import Cell, check

ACTORS = {"nat_officer": ("000000", ["service_officer"]), "bj_officer": ("110000", ["service_officer"]),
          "city_officer": ("110100", ["service_officer"]), "gd_officer": ("440000", ["service_officer"]),
          "bj_viewer": ("110000", ["viewer"]), "bj_office": ("110000", ["action_office"])}


def _snapshot(db):
    with db.read() as s:
        return (s.execute(select(Campaign.id, Campaign.state, Campaign.name, Campaign.audience)
                          .order_by(Campaign.id)).all(),
                s.execute(select(outbox.Delivery.id, outbox.Delivery.state).order_by(outbox.Delivery.id)).all())


def _uncertain(session, campaign: Campaign) -> None:
    message = PushMessage(campaign_id=campaign.id, stage="first", credit_code="91110000000000000X", role="法定代表人",
                          channel="sms", address="13800000000", title="政策提醒", body="提醒")
    session.add(message)
    session.flush()
    delivery = outbox.enqueue(session, origin=campaigns.ORIGIN, origin_id=message.id, scope="/", channel="sms",
                              target="13800000000", title="政策提醒", body="提醒")
    delivery.state, delivery.attempts = "uncertain", 1


def test_campaign_actions_are_offered_exactly_where_the_service_allows(db, county, add_users, server):
    add_users(ACTORS)
    made = {}
    with db.write() as s:
        services.seed_policies(s)
        for state in ("active", "paused", "failed", "cancelled", "planned"):
            c = campaigns.create_campaign(session=s, actor=SystemActor(), name=f"7月征期提醒({state})", unit_code="110000",
                                          policy_ids=["XGM-VAT-2021"], channels=["inapp"], year=2022, month=7)
            s.flush()
            c.state = "active" if state == "planned" else state
            c.last_error = "政策提醒(2022-07-01):补充条件超出范围" if state == "failed" else ""
            if state == "planned":
                for stage in s.scalars(select(CampaignStage).where(CampaignStage.campaign_id == c.id)):
                    stage.planned_at = datetime(2022, 7, 1)
            if state in ("active", "cancelled"):
                _uncertain(s, c)
            made[state] = c.id
        bill = Campaign(name="2022年度红利账单", kind="bill", unit_id=c.unit_id, policies=[], channels=["inapp"], year=2022,
                        month=12, created_by="system")
        s.add(bill)
        s.flush()
        made["bill"] = bill.id
    actions = {
        "run": (lambda s, u, c: campaigns.runnable(session=s, actor=u, campaign_id=c), {"stage": "first", "code": "0"}),
        "edit": (lambda s, u, c: campaigns.edit_campaign(session=s, actor=u, campaign_id=c, name="改",
                                                         policy_ids=["XGM-VAT-2021"], channels=["inapp"], audience=""),
                 {"name": "改", "policies": ["XGM-VAT-2021"], "channels": ["inapp"], "audience": ""}),
        "pause": (lambda s, u, c: campaigns.pause_campaign(session=s, actor=u, campaign_id=c), {}),
        "resume": (lambda s, u, c: campaigns.resume_campaign(session=s, actor=u, campaign_id=c), {}),
        "cancel": (lambda s, u, c: campaigns.cancel_campaign(session=s, actor=u, campaign_id=c), {}),
        "requeue": (lambda s, u, c: campaigns.requeue_uncertain(session=s, actor=u, campaign_id=c), {}),
    }
    cells = [Cell(who, f"/push/campaigns/{cid}", f"/push/campaigns/{cid}/{action}",
                  lambda s, u, call=call, cid=cid: call(s, u, cid), form,
                  # the next stage is offered as its preview, where the confirmation posts to /run
                  marker=f'href="/push/campaigns/{cid}/preview"' if action == "run" else "")
             for who in ACTORS for cid in made.values() for action, (call, form) in actions.items()]
    allowed = {"run": ("active",), "edit": ("active", "paused", "failed"), "pause": ("active", "planned"),
               "resume": ("paused", "failed"), "cancel": ("active", "paused", "failed", "planned", "bill"),
               "requeue": ("active",)}
    expected = {(who, f"/push/campaigns/{made[state]}/{action}") for action, states in allowed.items()
                for state in states for who in ("nat_officer", "bj_officer")}
    check(db, server, cells, expected, (PushError,), _snapshot)
