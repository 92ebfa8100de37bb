"""Demo data: the shipped notice, a synthetic lower-level organisation and demo users.

Everything synthetic is marked so (`Unit.synthetic`, "（演示）" in the name) and generated from a
fixed seed, so two demo databases are the same.
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from chunfeng import crypto
from chunfeng.appeals import intake
from chunfeng.appeals import services as appeals
from chunfeng.appeals.models import Appeal
from chunfeng.appeals.services import DEFAULT_RULES, AppealRules
from chunfeng.calendar.errors import CalendarNotCovered
from chunfeng.consult import transfer
from chunfeng.ledger import reporting, supervision, warnings
from chunfeng.ledger import services as ledger
from chunfeng.ledger.models import Assignment
from chunfeng.ledger.periods import period_of
from chunfeng.ledger.services import Terms
from chunfeng.org import services as org
from chunfeng.org.access import SystemActor
from chunfeng.org.builtin import PROVINCES
from chunfeng.org.models import Unit, User
from chunfeng.plan import services as plan
from chunfeng.plan.models import PlanNotice
from chunfeng.push import bills, campaigns, periods, rules, stages, store, synthetic
from chunfeng.push import services as push_services
from chunfeng.push.models import CampaignStage, Policy
from chunfeng.settings import DEFAULTS, Settings
from chunfeng.workdays import WorkCalendar, configured_calendar

SEED = 2022
_SYLLABLES = "安宁平和兴华东西南北中新清江河山川林泉云阳明光长永福德嘉禾丰泰康盛"
DEMO_PASSWORD = "Chunfeng2022!"


@dataclass
class DemoLogin:
    username: str
    unit: str
    roles: str
    purpose: str = ""


def _place(rng: random.Random, taken: set[str]) -> str:
    while True:
        name = rng.choice(_SYLLABLES) + rng.choice(_SYLLABLES)
        if name[0] != name[1] and name not in taken:
            taken.add(name)
            return name


def synthetic_units(*, session: Session, municipal_per_province: int = 3, county_per_municipal: int = 3) -> int:
    """Municipal and county bureaus under every provincial bureau, plus branches under the first counties."""
    if session.scalar(select(Unit.id).where(Unit.synthetic.is_(True)).limit(1)):
        return 0
    rng = random.Random(SEED)
    taken: set[str] = set()
    added = 0
    for p_code, _ in PROVINCES:
        province = session.scalar(select(Unit).where(Unit.code == p_code))
        for m in range(1, municipal_per_province + 1):
            m_code = f"{p_code[:4]}{m:02d}"
            city = Unit(code=m_code, name=f"{province.name.removesuffix('税务局')}{_place(rng, taken)}市税务局（演示）",
                        level="municipal", parent=province, path=province.path + m_code + "/", sort=m, synthetic=True)
            session.add(city)
            added += 1
            for c in range(1, county_per_municipal + 1):
                c_code = f"{m_code}{c:02d}"
                county = Unit(code=c_code, name=f"{_place(rng, taken)}县税务局（演示）", level="county", parent=city,
                              path=city.path + c_code + "/", sort=c, synthetic=True)
                session.add(county)
                added += 1
                if c == 1:
                    b_code = f"{c_code}01"
                    session.add(Unit(code=b_code, name=f"{_place(rng, taken)}税务分局（演示）", level="branch",
                                     parent=county, path=county.path + b_code + "/", sort=1, synthetic=True))
                    added += 1
    session.flush()
    return added


DEMO_USERS = [  # username, name, unit, roles, what the account is for (printed by `make demo`, listed in the README)
    ("office", "总局春风办(演示)", "000000", ["action_office"],
     "总局春风办:向省局分配尚未分配的措施(第112–121条)、审核各省报告、下发督办单"),
    ("beijing", "北京市局春风办(演示)", "110000", ["action_office", "unit_reporter", "service_officer"],
     "北京市局:把总局分配的措施分解到市局、审核市局报告、向总局报告进展、办理诉求、推送政策"),
    ("city_office", "北京演示市局春风办(演示)", "110001", ["action_office"],
     "演示市局:审核县局报告(一份待审)、督办县局"),
    ("county", "北京演示县局填报员(演示)", "11000101", ["unit_reporter"],
     "演示县局:待办、填报进展、重新提交被退回的报告、答复督办单"),
    ("guangdong", "广东省局查看(演示)", "440000", ["viewer"], "只读:看广东省局的台账"),
    ("agent", "12366坐席(演示)", "000000", ["agent"], "12366坐席:转人工队列、知识库、复核"),
    ("service", "总局纳税服务专员(演示)", "000000", ["service_officer"], "纳税服务:优惠政策与适用条件、匹配、推送活动、诉求"),
    ("admin", "系统管理员(演示)", "000000", ["admin"], "系统管理员:单位、账户、工作日历(三员之一,首次登录绑定动态口令)"),
    ("security", "安全管理员(演示)", "000000", ["security_admin"], "安全管理员:授予业务角色、解锁、重置动态口令(三员之一)"),
    ("auditor", "审计管理员(演示)", "000000", ["audit_admin"], "审计管理员:审计日志(三员之一)"),
    ("bj_office", "北京市局春风办(演示,旧)", "110000", ["action_office"], "同 beijing 的春风办部分(早期版本的账户,保留)"),
]
# Left for the action office to assign in the demo: "assign a measure to the provinces" has something to do.
UNASSIGNED_MEASURES = range(112, 122)
DEMO_TAXPAYERS = 20_000


def living_ledger(*, session: Session, today: date | None = None) -> int:
    """Assignments down to the demo county, reports in every state, indicators and lights: a ledger to click through."""
    if session.scalar(select(Assignment.id).limit(1)):
        return 0
    today = today or date.today()
    rng = random.Random(SEED)
    system = SystemActor(username="demo")
    early, late, deadline = today - timedelta(days=100), today.replace(day=1), today + timedelta(days=120)

    def bulk(measures, start, until):
        return ledger.assign_bulk(session=session, actor=system, level="province", measure_nos=list(measures),
                                  terms=Terms(owner="春风办", deadline=until, start_date=start))

    # Three measures already past their deadline, category 4 running since the summer (reports due),
    # the rest started this month.
    created = bulk(range(1, 4), early, today - timedelta(days=5)) + bulk(range(82, 102), early, deadline)
    created += bulk(range(1, UNASSIGNED_MEASURES.start), late, deadline)
    ledger.define_indicator(session=session, actor=system, measure_no=54, name="出口退税平均办理时间",
                            unit_label="个工作日", baseline=7, target=6, direction="down")
    beijing = org.find_unit(session=session, code="110000")
    for measure_no in range(30, 57):  # category 2 in 北京, down to its demo cities and the demo county
        parent = session.scalar(select(Assignment).where(Assignment.measure_no == measure_no,
                                                         Assignment.unit_id == beijing.id))
        cities = ledger.break_down(session=session, actor=system, assignment_id=parent.id,
                                   unit_codes=["110001", "110002", "110003"],
                                   terms=Terms(deadline=deadline - timedelta(days=15), start_date=late))
        ledger.break_down(session=session, actor=system, assignment_id=cities[0].id, unit_codes=["11000101", "11000102"],
                          terms=Terms(owner="县局办公室", deadline=deadline - timedelta(days=30),
                                      start_date=early if measure_no < 36 else late))
        created += 5
    last_end = today.replace(day=1) - timedelta(days=1)
    last = period_of(last_end, "monthly")
    # Reports for last month from most provinces on category 4, most of them approved.
    for code, _ in PROVINCES[:30]:
        unit = org.find_unit(session=session, code=code)
        for measure_no in rng.sample(range(82, 102), 14):
            a = session.scalar(select(Assignment).where(Assignment.measure_no == measure_no, Assignment.unit_id == unit.id))
            status = rng.choice(["in_progress", "in_progress", "in_progress", "done"])
            percent = 100 if status == "done" else rng.choice([20, 35, 50, 60, 75, 90])
            # The narrative says what the status says: "全部完成" only on a report that is done.
            narrative = "已全部完成并通过验收。" if status == "done" else rng.choice(
                ["按计划推进,已召开专题会议部署。", "已完成前期调研,正在制定方案。", "已上线相关功能,持续跟踪纳税人反馈。"])
            report = reporting.submit_report(session=session, actor=system, assignment_id=a.id, status=status, percent=percent,
                                          narrative=narrative,
                                          period=last, today=last_end + timedelta(days=rng.choice([2, 5, 8, 9, 16])))
            if rng.random() < 0.85:
                reporting.review_report(session=session, actor=system, report_id=report.id, approve=True)
    # The demo county: one report waiting for review, one returned, one approved.
    county = org.find_unit(session=session, code="11000101")
    held = list(session.scalars(select(Assignment).where(Assignment.unit_id == county.id).order_by(Assignment.measure_no)))
    reporting.submit_report(session=session, actor=system, assignment_id=held[0].id, status="in_progress",
                                   percent=40, narrative="已梳理网上办事项清单,待上线。", period=last, today=today)
    returned = reporting.submit_report(session=session, actor=system, assignment_id=held[1].id, status="in_progress",
                                    percent=30, narrative="正在推进。", period=last, today=today)
    reporting.review_report(session=session, actor=system, report_id=returned.id, approve=False,
                         comment="请写明已完成的具体事项和数量。")
    approved = reporting.submit_report(session=session, actor=system, assignment_id=held[2].id, status="in_progress",
                                    percent=70, narrative="已完成增值税申报比对功能测试。", period=last, today=today)
    reporting.review_report(session=session, actor=system, report_id=approved.id, approve=True)
    # A demo city's report waiting for 北京's review (beijing approves or returns it).
    city2 = org.find_unit(session=session, code="110002")
    city_held = session.scalar(select(Assignment).where(Assignment.unit_id == city2.id).order_by(Assignment.measure_no))
    reporting.submit_report(session=session, actor=system, assignment_id=city_held.id, status="in_progress", percent=45,
                         narrative="已在全市推广,完成培训两场,下月开展效果回访。", period=last, today=today)
    # Supervision: one notice waiting for the demo county's answer, one answered, one escalated upwards.
    city = org.find_unit(session=session, code="110001")
    bj_office = SystemActor(username="bj_office", unit_code="110000")
    city_office = SystemActor(username="city_office", unit_code=city.code)
    supervision.issue_notice(session=session, actor=city_office, assignment_id=held[3].id, subject="请加快推进",
                             text="该项进度明显滞后,请说明原因并提出整改措施。", respond_by=today + timedelta(days=5), today=today)
    answered = supervision.issue_notice(session=session, actor=bj_office, assignment_id=held[4].id, subject="请报送进展",
                                        text="请报送本月进展及佐证材料。", respond_by=today + timedelta(days=3), today=today)
    supervision.answer_notice(session=session, actor=SystemActor(username="county", unit_code=county.code),
                              notice_id=answered.id, text="已于本周完成系统调试,佐证材料已随报告上传。")
    supervision.issue_notice(session=session, actor=city_office, assignment_id=held[5].id, subject="逾期未报告",
                                    text="上月报告未按期报送,请尽快补报。", respond_by=today - timedelta(days=2),
                                    today=today - timedelta(days=9))
    supervision.escalate_overdue(session=session, today=today)
    supervision.remind(session=session, actor=city_office, assignment_id=held[6].id, text="请于本周五前报送进展。")
    warnings.scan(session=session, today=today, rules=warnings.WarningRules())
    return created


def fill(*, session: Session, store_file: Path | None = None, settings: Settings = DEFAULTS) -> list[DemoLogin]:
    """Import the notice, the synthetic organisation and the demo users, each only if missing, under the
    deployment's `settings` (appeal limits and routes, the push cap)."""
    system = SystemActor(username="demo")
    if not session.scalar(select(PlanNotice.id).limit(1)):
        plan.import_notice(session=session, actor=system, data=plan.shipped_notice(),
                           source_name="税总纳服函〔2022〕32号(随包附带)")
    synthetic_units(session=session)
    living_ledger(session=session)
    transfer.load_starter(session=session, actor=system)
    logins = []
    for username, name, unit_code, roles, purpose in DEMO_USERS:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            user = org.add_user(session=session, actor=system, username=username, display_name=name,
                                unit_code=unit_code, roles=roles, password=DEMO_PASSWORD)
            user.must_change_password = False  # local demo accounts with a documented password; see the README
        logins.append(DemoLogin(username, user.unit.name, ",".join(roles), purpose))
    appeals_demo(session=session, appeal_rules=AppealRules.from_settings(settings))
    if store_file is not None:
        taxpayer = push_demo(session=session, store_file=store_file, cap=settings.push_cap_per_week)
        if taxpayer is not None:
            logins.append(DemoLogin(taxpayer.username, f"{taxpayer.display_name}({taxpayer.taxpayer_role})", "taxpayer",
                                    "纳税人:消息中心里的征期提醒、2022年红利账单"))
        survey_demo(session=session, store_file=store_file, base_url=f"http://{settings.host}:{settings.port}/")
    return logins


DEMO_APPEALS = [  # kind, region, topic, text, how far it has come
    ("complaint", "110101", "出口退税", "出口退税申报后等了十几个工作日还没有到账,希望加快审核。", "rated"),
    ("complaint", "110101", "办税服务厅", "办税服务厅排队两个多小时,取号机还经常坏。", "replied"),
    ("complaint", "110102", "办税服务厅", "周一上午去办税服务厅排队时间太长,窗口只开了两个。", "in_progress"),
    ("demand", "110000", "电子税务局", "电子税务局申报增值税时总提示系统繁忙,申报期最后两天根本登不上。", "accepted"),
    ("demand", "110105", "发票", "数电发票开具额度不够用,想申请调整额度不知道怎么办。", "received"),
    ("suggestion", "110101", "纳税缴费服务", "建议办税服务厅周末也开放半天,上班族工作日请假不方便。", "received"),
    ("demand", "110000", "社保费", "灵活就业人员社保费缴费基数怎么选,网上没找到说明。", "rated"),
    ("complaint", "440300", "12366热线", "12366热线打了好几次都占线,等了二十分钟没人接。", "received"),
]


def demo_appeals_day(cal: WorkCalendar, today: date, appeal_rules: AppealRules = DEFAULT_RULES) -> date:
    """The day the demo files its items: today, unless their time limits would reach a year the calendar does not
    cover — late in a year whose successor's holiday notice is not yet imported — in which case the latest week
    before it from which they do not, so that the demo runs and no limit is counted on a guess."""
    longest = max(max(appeal_rules.limits_of(kind).values()) for kind, *_ in DEMO_APPEALS)
    day = today
    while day.year >= min(cal.years):
        try:
            cal.add_working_days(day, longest)
            return day
        except CalendarNotCovered:
            day -= timedelta(days=7)
    return today  # no covered day at all: intake itself refuses, naming the year


def appeals_demo(*, session: Session, appeal_rules: AppealRules = DEFAULT_RULES) -> int:
    """A few demands and complaints in 北京 and 深圳 at every stage, some overdue, one rated."""
    if session.scalar(select(Appeal.id).limit(1)):
        return 0
    system = SystemActor(username="demo")
    today = demo_appeals_day(configured_calendar(session), date.today(), appeal_rules)
    for n, (kind, region, topic, text, stage) in enumerate(DEMO_APPEALS):
        appeal, token = intake.submit(session=session, today=today - timedelta(days=2 * n), submission=intake.Submission(
            kind=kind, text=text, region=region, topic=topic, submitter="演示用户", phone=f"1380000{n:04d}"),
            rules=appeal_rules)
        steps = {"accepted": ["accept"], "in_progress": ["accept", "start"], "replied": ["accept", "start", "reply"],
                 "rated": ["accept", "start", "reply"]}.get(stage, [])
        for action in steps:
            appeals.act(session=session, actor=system, appeal_id=appeal.id, action=action,
                        note="已核实情况并协调解决,感谢您的反馈。" if action == "reply" else "")
        if stage == "rated":
            appeals.rate(session=session, token=token, rating=5 - n % 2)
    return len(DEMO_APPEALS)


def push_demo(*, session: Session, store_file: Path, cap: int = DEFAULTS.push_cap_per_week) -> User | None:
    """The shipped policies, a synthetic extract of 20,000 taxpayers imported as the store, a taxpayer's
    account, and a July 2022 campaign in Beijing whose first notice has gone out, plus 2022's bills."""
    system = SystemActor(username="demo")
    push_services.seed_policies(session)
    if not store_file.exists():
        with tempfile.TemporaryDirectory() as tmp:
            synthetic.generate(Path(tmp), taxpayers=DEMO_TAXPAYERS, seed=SEED, claim_rules=push_services.synthetic_claim_rules())
            store.import_extract(Path(tmp), store_file)
    user = session.scalar(select(User).where(User.username == "taxpayer"))
    if user is not None and crypto.PREFIX in user.display_name:  # a demo built before the name was fixed
        with store.connect_store(store_file) as conn:
            user.display_name = conn.execute("SELECT name FROM registry WHERE credit_code = ?",
                                             [user.taxpayer_code]).fetchall()[0][0]
    if user is not None:
        return user
    with store.connect_store(store_file) as conn:
        row = conn.execute("""
            SELECT r.credit_code, r.name, k.person FROM registry r
            JOIN contacts k ON k.credit_code = r.credit_code AND k.role = '法定代表人' AND k.channel = 'inapp'
                           AND NOT k.opted_out
            JOIN claims c ON c.credit_code = r.credit_code AND c.period LIKE '2022%'
            WHERE r.region LIKE '11%' AND r.size IN ('小型', '微型') AND r.vat_type = '小规模'
            GROUP BY r.credit_code, r.name, k.person ORDER BY count(DISTINCT c.policy) DESC, r.credit_code LIMIT 1""").fetchall()
        row = row[0] if row else None
        if row is None:
            return None
        code, name, _ = row
        # The account is named by the registry's company name: the contact's own name is SM4 ciphertext in the
        # store (personal data), and neither it nor its decryption belongs in every page header and the audit log.
        user = org.add_user(session=session, actor=system, username="taxpayer", display_name=name,
                            unit_code="110000", roles=["taxpayer"], password=DEMO_PASSWORD, taxpayer_code=code,
                            taxpayer_role="法定代表人")
        user.must_change_password = False
        eligible = [p.id for p in session.scalars(select(Policy).order_by(Policy.id))
                    if periods.validity_problem(p, periods.return_period(
                        period_kind=p.period_kind, filing=p.filing, year=2022, month=7)) is None
                    and conn.execute(f"SELECT count(*) FROM registry WHERE credit_code = ? AND "
                                    f"{rules.parse(p.rule).sql('duckdb')}", [code]).fetchall()[0][0]]
        campaign = campaigns.create_campaign(session=session, actor=system, name="2022年7月征期政策提醒(演示)",
                                             unit_code="110000", policy_ids=eligible[:3] or ["XWQY-CIT-2022"],
                                             channels=["inapp", "sms"], year=2022, month=7)
        session.flush()
        for stage in session.scalars(select(CampaignStage).where(CampaignStage.campaign_id == campaign.id,
                                                                 CampaignStage.stage == "first")):
            stages.plan_stage(session=session, conn=conn, campaign=campaign, stage=stage, cap=cap)
        bills.push_bills(conn, session=session, actor=system, unit_code="110000", year=2022)
    return user


DEMO_SURVEY = [  # code, kind, text, options, required, shown if (question, answers)
    ("Q1", "single", "近一年您是否到办税服务厅办理过业务?", ["是", "否"], True, "", []),
    ("Q2", "scale", "您对办税服务厅的服务是否满意?", [], True, "Q1", ["是"]),
    ("Q3", "multi", "您通常通过哪些渠道办税缴费?", ["电子税务局", "手机App", "12366热线", "办税服务厅"], False, "", []),
    ("Q4", "nps", "您有多大可能向其他纳税人推荐电子税务局?", [], False, "", []),
    ("Q5", "text", "您对改进纳税缴费服务还有什么需求和建议?", [], False, "", []),
]
DEMO_MATRIX = ("Q6", "您对以下各项服务的满意度(1–5 分)", ["办税服务厅", "12366 热线", "电子税务局", "手机 App"])
_DEMO_SUGGESTIONS = ["希望电子税务局申报期不要卡顿。", "政策更新后能及时推送解读。", "办税服务厅午间也能办理业务就好了。",
                     "12366热线高峰期很难打通。", "希望发票额度调整更快一些。"]


def survey_demo(*, session: Session, store_file: Path, base_url: str) -> int:
    """One published needs survey of 北京 with a stratified sample drawn from the demo taxpayers, invited through the
    message centre, and answers from about two thirds of them: a survey a new user sees working. Returns the
    answers made (0 if the demo already has a survey)."""
    from chunfeng.survey import answering, invitations, sampling
    from chunfeng.survey import services as surveys
    from chunfeng.survey.models import Survey, row_code
    from chunfeng.survey.sample_models import SurveySampleMember

    if session.scalar(select(Survey.id).limit(1)) or not store_file.exists():
        return 0
    actor = SystemActor(username="demo", unit_code="110000")
    questions = [surveys.QuestionSpec(code, kind, text, options, required, show_if, shown)
                 for code, kind, text, options, required, show_if, shown in DEMO_SURVEY]
    matrix, text, rows = DEMO_MATRIX
    questions.append(surveys.QuestionSpec(matrix, "matrix", text, rows=rows))
    survey = surveys.import_questionnaire(session=session, actor=actor, title="2022年纳税人缴费人需求调查(演示)",
                                          questions=questions, unit_code="110000",
                                          intro="了解您在办税缴费中的需求和建议,约 2 分钟。")
    surveys.publish(session=session, actor=actor, survey_id=survey.id)
    with store.connect_store(store_file) as conn:
        sample = sampling.draw(session=session, conn=conn, actor=actor, survey_id=survey.id,
                               dimensions=["size", "type"], allocation="proportional", size=120, seed=SEED)
        invitations.invite(session=session, conn=conn, actor=actor, sample_id=sample.id, channels=["inapp"],
                           roles=["法定代表人", "财务负责人", "办税人员"], personal_data=[], base_url=base_url,
                           configured=["inapp"])
    rng, rates = random.Random(SEED), random.Random(SEED + 1)  # the matrix's own stream keeps the others' answers
    tokens = [m.token for m in session.scalars(select(SurveySampleMember).where(
        SurveySampleMember.sample_id == sample.id, SurveySampleMember.invitation_id.is_not(None))
        .order_by(SurveySampleMember.id))]
    answered = 0
    for token in tokens:
        if rng.random() > 0.65:
            continue
        hall = rng.random() < 0.6
        raw = {"Q1": ["是" if hall else "否"], "Q3": rng.sample(DEMO_SURVEY[2][3], rng.randint(1, 3)),
               "Q4": [str(rng.choice([6, 7, 8, 8, 9, 9, 10, 10]))]}
        if hall:
            raw["Q2"] = [str(rng.choice([3, 4, 4, 5, 5]))]
        if rng.random() < 0.4:
            raw["Q5"] = [rng.choice(_DEMO_SUGGESTIONS)]
        for n, _ in enumerate(DEMO_MATRIX[2], start=1):
            raw[row_code(matrix, n)] = [str(rates.choice([2, 3, 4, 4, 5, 5]))]
        answering.submit(session=session, token=token, raw=raw)
        answered += 1
    return answered
