"""A policy's life: campaigns, stages and matches outside its validity are refused; messages name the period and
deadline of the return the policy is claimed on, on the shipped 2026 calendar (issue 12)."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import func, select

from chunfeng.org.access import SystemActor
from chunfeng.org.models import AuditEntry
from chunfeng.push import campaigns, periods, schedule, services, stages
from chunfeng.push.errors import PushInvalid
from chunfeng.push.models import Campaign, CampaignStage, Policy, PushMessage
from chunfeng.workdays import load_calendar

SYSTEM = SystemActor()


@pytest.mark.parametrize(("kind", "filing", "month", "period", "label", "deadline"), [
    # December: November's monthly return by the 15th (a Tuesday, the STA's date)
    ("month", "增值税", 12, "2026-11", "2026年11月", date(2026, 12, 15)),
    # May: April's return, the period extended by 劳动节 to the 22nd
    ("month", "增值税", 5, "2026-04", "2026年4月", date(2026, 5, 22)),
    # October files the third quarter, 国庆 extending it to the 26th
    ("quarter", "增值税", 10, "2026Q3", "2026年第3季度", date(2026, 10, 26)),
    # August files no quarter: the message is about the third quarter, filed in October
    ("quarter", "增值税", 8, "2026Q3", "2026年第3季度", date(2026, 10, 26)),
    # February: the first quarter, filed in April by the 20th (清明)
    ("quarter", "附加税费", 2, "2026Q1", "2026年第1季度", date(2026, 4, 20)),
    # enterprise income tax annual return: 2025's, by 31 May 2026, a Sunday, so Monday 1 June
    ("year", "企业所得税", 3, "2025", "2025年度", date(2026, 6, 1)),
    ("year", "企业所得税", 5, "2025", "2025年度", date(2026, 6, 1)),
    # 经营所得 annual return: 2025's by 31 March 2026, a Tuesday
    ("year", "个人所得税经营所得", 1, "2025", "2025年度", date(2026, 3, 31)),
    ("year", "个人所得税经营所得", 3, "2025", "2025年度", date(2026, 3, 31)),
])
def test_the_return_a_message_names_in_2026(kind, filing, month, period, label, deadline):
    due = periods.return_due(period_kind=kind, filing=filing, year=2026, month=month, cal=load_calendar())
    assert (due.period, due.label, due.deadline) == (period, label, deadline)


@pytest.mark.parametrize(("kind", "filing", "month", "period"), [
    ("quarter", "增值税", 12, "2026Q4"),  # filed in January 2027, never "by 12月15日"
    ("year", "企业所得税", 6, "2026"),  # 2025's was due 1 June; next is 2026's, due in 2027
    ("year", "企业所得税", 12, "2026"),
    ("year", "个人所得税经营所得", 4, "2026"),
])
def test_a_return_due_next_year_is_named_and_needs_next_years_calendar(kind, filing, month, period):
    assert periods.return_period(period_kind=kind, filing=filing, year=2026, month=month) == period
    with pytest.raises(Exception, match="2027年的工作日历尚未导入"):
        periods.return_due(period_kind=kind, filing=filing, year=2026, month=month, cal=load_calendar())


def test_deadline_text_names_the_year_only_when_it_is_not_the_campaigns():
    due = periods.ReturnDue("2026Q4", "2026年第4季度", date(2027, 1, 20))
    assert due.deadline_text(2026) == "2027年1月20日" and due.deadline_text(2027) == "1月20日"


def _create(db, policy_ids, year, month):
    with db.write() as session:
        c = campaigns.create_campaign(session=session, actor=SYSTEM, name="测试", unit_code="110000",
                                      policy_ids=policy_ids, channels=["inapp"], year=year, month=month)
        session.flush()
        return c.id


def test_a_campaign_for_an_ended_policy_is_refused_with_its_dates(policies):
    """Issue 12: a December 2026 campaign for XWQY-CIT-2019 (ended 2021-12-31) was accepted."""
    with pytest.raises(PushInvalid) as caught:
        _create(policies, ["XWQY-CIT-2019", "XGM-VAT-2021"], 2026, 12)
    text = str(caught.value)
    assert "XWQY-CIT-2019" in text and "2019年1月1日至2021年12月31日" in text and "所属期2026年度" in text
    assert "XGM-VAT-2021" in text and "已于2022年12月31日到期" in text
    with pytest.raises(PushInvalid, match="2023年1月1日起才施行"):  # before it began: July 2022 files 2022Q2
        _create(policies, ["LSLF-FJ-2023"], 2022, 7)
    with policies.read() as session:
        assert session.scalar(select(func.count()).select_from(Campaign)) == 0
    assert _create(policies, ["LSLF-FJ-2023"], 2026, 10)  # in force: accepted


def test_an_edit_cannot_add_an_ended_policy(policies):
    cid = _create(policies, ["XGM-VAT-2027"], 2026, 10)
    with pytest.raises(PushInvalid, match="无法修改推送活动:政策 SBQJ-2021"), policies.write() as session:
        campaigns.edit_campaign(session=session, actor=SYSTEM, campaign_id=cid, name="改", policy_ids=["SBQJ-2021"],
                                channels=["inapp"], audience="")
    with policies.read() as session:
        assert session.get(Campaign, cid).policies == ["XGM-VAT-2027"]


def test_a_stage_whose_policy_has_since_ended_fails_with_the_dates(policies, duck):
    from tests.push.test_schedule import approve_all

    cid = _create(policies, ["XGM-VAT-2027"], 2026, 10)
    approve_all(policies, duck, cid, now=datetime(2026, 9, 30, 2))
    with policies.write() as session:  # the catalogue later says the relief ended in June 2026
        session.get(Policy, "XGM-VAT-2027").effective_until = date(2026, 6, 30)
    schedule.run_due(policies, duck, today=date(2026, 10, 31), campaign_id=cid)
    with policies.read() as session:
        campaign = session.get(Campaign, cid)
        assert campaign.state == "failed" and "已于2026年6月30日到期" in campaign.last_error
        assert session.scalar(select(func.count()).select_from(PushMessage)) == 0


def test_messages_name_the_annual_return_and_its_deadline(policies, duck):
    """Issue 12: "请在12月15日前办理2026Q4申报"; a CIT policy's message names 2025年度 and 6月1日 in May 2026."""
    cid = _create(policies, ["XWQY-CIT-2027"], 2026, 5)
    with policies.write() as session:
        stage = session.scalar(select(CampaignStage).where(CampaignStage.campaign_id == cid,
                                                           CampaignStage.stage == "first"))
        stages.plan_stage(session=session, conn=duck, campaign=session.get(Campaign, cid), stage=stage,
                             now=datetime(2026, 5, 6, 9))
        bodies = [m.body for m in session.scalars(select(PushMessage).where(PushMessage.role == "办税人员"))]
    assert bodies and all("办理2025年度纳税申报" in b and "截止日期为6月1日" in b for b in bodies)


def test_matching_a_period_outside_the_validity_is_refused(policies, duck):
    """Issue 12: a period before the policy began reported everyone as eligible but not claimed."""
    from chunfeng.push import matching

    engine = matching.DuckDBEngine(duck)
    with policies.read() as session:
        with pytest.raises(PushInvalid, match="LSLF-FJ-2023.*所属期2022年第2季度不在适用期内"):
            services.match_policy(session=session, actor=SYSTEM, policy_id="LSLF-FJ-2023", period="2022Q2",
                                  engine=engine)
        with pytest.raises(PushInvalid, match="已于2021年12月31日到期"):
            services.match_policy(session=session, actor=SYSTEM, policy_id="XWQY-CIT-2019", period="2026",
                                  engine=engine)
        assert services.match_policy(session=session, actor=SYSTEM, policy_id="LSLF-FJ-2023", period="2023Q1",
                                     engine=engine).period == "2023Q1"


def test_a_shipped_policy_is_refreshed_from_the_catalogue_but_an_officials_rule_stands(policies):
    with policies.write() as session:
        p = session.get(Policy, "XGM-VAT-2027")
        p.effective_until, p.basis = date(2030, 1, 1), "旧依据"
        q = session.get(Policy, "XGM-VAT1-2027")
        q.rule, q.updated_by, q.basis = "vat_type == \"小规模\"", "officer", "旧依据"
    with policies.write() as session:
        services.seed_policies(session)
    with policies.read() as session:
        p, q = session.get(Policy, "XGM-VAT-2027"), session.get(Policy, "XGM-VAT1-2027")
        assert p.effective_until == date(2027, 12, 31) and p.basis != "旧依据"
        assert q.basis != "旧依据" and q.rule == "vat_type == \"小规模\""
        refreshed = session.scalars(select(AuditEntry).where(AuditEntry.action == "push.policy.refreshed")).all()
        assert {e.object_id for e in refreshed} == {"XGM-VAT-2027", "XGM-VAT1-2027"}
