"""The shipped starter knowledge base against the law in force: time-bound entries, replaced entries, the
repealed VAT regulations and credit rules, and the everyday questions it must answer."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from chunfeng.consult import knowledge, services, transfer
from chunfeng.consult.evaluation import evaluate_answers, read_phrasings
from chunfeng.consult.models import KbEntry
from tests.conftest import person

STARTER = json.loads(transfer.starter_path().read_text(encoding="utf-8"))["entries"]
BY_KEY = {e["id"]: e for e in STARTER}


@pytest.fixture
def starter(with_plan, system):
    with with_plan.write() as s:
        transfer.load_starter(session=s, actor=system)
    return with_plan


def top(db, query, day):
    with db.read() as s:
        return services.ask(session=s, query=query, today=day, log=False).hits[0]


def assert_first(session, pairs, day, *, clear=True):
    """Each (question, entry) of `pairs` is answered first by that entry — and, with `clear`, without a hand-off."""
    for query, ref in pairs:
        answer = services.ask(session=session, query=query, today=day, log=False)
        assert (not clear or not answer.handoff) and answer.hits[0].doc.ref == ref, query


def test_an_entry_that_states_its_end_answers_through_that_day_and_after_it_only_as_past(starter):
    on_the_day = top(starter, "2023年生活性服务业增值税加计抵减比例是多少", date(2023, 12, 31))
    assert on_the_day.doc.ref == "kb-0100" and on_the_day.current
    after = top(starter, "2023年生活性服务业增值税加计抵减比例是多少", date(2026, 12, 6))
    assert after.doc.ref == "kb-0100" and not after.current  # answers, saying it is past
    with starter.read() as s:
        answer = services.ask(session=s, query="2021年小规模纳税人月销售额15万元以下免征增值税吗", today=date(2026, 12, 6),
                              log=False).as_dict()
    past = [a for a in answer["answers"] if a["id"] == "kb-0102"]
    assert past and past[0]["current"] is False and past[0]["effective_until"] == "2022-12-31"


def test_no_entry_says_it_has_ended_in_its_own_words():
    # "该政策已于…到期" is true only after the end date, when the page says so from the dates itself.
    assert [e["id"] for e in STARTER if re.search(r"已于.{0,12}到期", e["answer"])] == []


def test_every_entry_stating_a_time_bound_relief_has_its_end_date():
    bound = re.compile(r"(?:执行至|延续执行至|至)(20\d\d)年(\d{1,2})月(\d{1,2})日")
    missing = [e["id"] for e in STARTER if bound.search(e["answer"]) and not e["effective_until"]]
    assert missing == []


REPEALED_VAT = re.compile(r"(?<!土地)增值税暂行条例")  # not the 土地增值税暂行条例, another tax's
REPEALED_CREDIT = ("2014年第40号", "2018年第8号", "2019年第37号")


def test_no_current_entry_rests_on_the_repealed_vat_regulations_or_credit_rules():
    for e in STARTER:
        if REPEALED_VAT.search(e["basis"]):
            assert e["effective_until"] and e["effective_until"] <= "2025-12-31", e["id"]
        if any(doc in e["basis"] for doc in REPEALED_CREDIT):
            assert e["effective_until"] and e["effective_until"] <= "2025-06-30", e["id"]


def test_replaced_entries_stay_and_their_successors_answer_today(starter):
    for old, query in (("kb-0082", "个人临时经营，增值税起征点是多少"), ("kb-0086", "增值税每月几号前申报"),
                       ("kb-0199", "纳税信用扣分了怎么修复"), ("kb-0075", "小规模纳税人增值税征收率是多少")):
        assert old in BY_KEY  # closed, never deleted
        hit = top(starter, query, date(2026, 12, 6))
        assert hit.current and hit.doc.ref != old, (query, hit.doc.ref)
        assert "暂行条例" not in hit.doc.basis and "2014年第40号" not in hit.doc.basis
    # Before the VAT law, the old entry was the current answer.
    assert top(starter, "个人临时经营，增值税起征点是多少", date(2025, 12, 31)).doc.ref == "kb-0082"


def test_unconfirmed_facts_are_marked_for_review():
    for e in STARTER:
        if "待审核" in e["article"]:
            assert e["effective_from"] >= "2025-07-01", e["id"]
    assert sum("待审核" in e["answer"] + e["article"] for e in STARTER) >= 5


# VAT notices made before the VAT law whose carrying-over into 2026 could not be confirmed from a published text.
PRE_LAW_VAT_NOTICES = ("国家税务总局公告2023年第1号", "财政部 税务总局公告2022年第14号", "财政部 税务总局公告2023年第43号",
                       "国家税务总局公告2016年第17号", "财税〔2016〕36号")


def test_a_current_entry_on_a_pre_law_vat_notice_states_the_law_or_marks_the_gap():
    for e in STARTER:
        current = e["effective_until"] is None or e["effective_until"] >= "2026-01-01"
        if current and any(doc in e["basis"] for doc in PRE_LAW_VAT_NOTICES):
            assert "增值税法" in e["basis"] or "待审核" in e["answer"] + e["article"], e["id"]
    # The 育儿补贴 exemption's announcement was confirmed (财政部 税务总局公告2025年第6号, in force from 2025-01-01).
    assert "2025年第6号" in BY_KEY["kb-0348"]["basis"] and "待审核" not in BY_KEY["kb-0348"]["answer"]


def test_everyday_questions_have_an_entry(starter):
    assert "人工" in top(starter, "12366几点有人工服务", date(2026, 12, 6)).doc.answer
    assert "2026年1月1日" in top(starter, "增值税法什么时候开始施行", date(2026, 12, 6)).doc.answer


def test_review_queue_names_what_to_look_at(starter, system, add_users):
    add_users({"agent": ("000000", ["agent"])})
    today = date(2026, 12, 6)

    def queue(day, **kw):
        with starter.read() as s:
            page = knowledge.review_queue(session=s, actor=system, today=day, per_page=1000, **kw)
        return {i.entry.key: {code for code, _ in i.reasons} for i in page.items}, page

    reasons, page = queue(today)
    assert "ended" in reasons["kb-0100"]                        # its basis ended on 2023-12-31
    assert all("stale" in r for r in reasons.values())          # sample content was never reviewed
    assert page.total == len(reasons) == len(page.items)
    assert not any("repealed" in r for r in reasons.values())   # every entry on the old regulations is closed
    assert "ending" in queue(date(2027, 10, 15))[0]["kb-0240"]  # the 起征点 of 2026年第10号 ends 2027-12-31
    assert "ending" not in queue(today)[0].get("kb-0240", set())
    # An official keeps a current answer on the repealed regulations: the VAT law entries list them as repealed.
    with starter.write() as s:
        knowledge.save_entry(session=s, actor=person(s, "agent"), values={
            "question": "增值税视同销售有哪些情形", "answer": "按暂行条例实施细则第四条……",
            "basis": "《中华人民共和国增值税暂行条例实施细则》", "effective_from": date(2009, 1, 1)})
        added = s.scalars(select(KbEntry.key).order_by(KbEntry.id.desc())).first()
    reasons, _ = queue(today)
    assert reasons[added] == {"repealed"}  # just saved, so reviewed today; the repealed basis remains
    # Confirming an entry takes it off the queue until the next reason arises; saving does too.
    with starter.write() as s:
        knowledge.mark_reviewed(session=s, actor=person(s, "agent"), key="kb-0100")
    assert "kb-0100" not in queue(date.today())[0]


def test_real_questions_asking_another_thing_than_the_entry_go_to_a_person(starter):
    # From bench/data/real_phrasings_dev.jsonl: before issue 15's third round these were answered with the entry on
    # their subject that asks something else (when to pay 居民医保; "买二手房需要交多少税" got who pays 契税 until
    # kb-0266 on the taxes of a home sale answered it).
    day = date(2026, 12, 6)
    with starter.read() as s:
        # Since issue 15's seventh round the amount has an entry of its own (kb-0342: where each year's amount is
        # published), which answers it; the entry on when to pay still does not.
        answer = services.ask(session=s, query="北京市居民医保缴费标准是多少钱一年", today=day, log=False)
        assert answer.hits[0].doc.ref == "kb-0342"
        answer = services.ask(session=s, query="车船税网上怎么缴纳", today=day, log=False)
        assert not answer.handoff and answer.hits[0].doc.ref == "kb-0171"


def test_the_subjects_real_askers_missed_are_answered_by_their_entry(starter):
    # Real questions (bench/data/real_phrasings_dev.jsonl) that had no right entry before issue 15's fourth round.
    day = date(2026, 12, 6)
    with starter.read() as s:
        for query, ref in (("满二唯一二手房要交什么税", "kb-0266"), ("企业原始凭证保管期限为多少年", "kb-0267"),
                           ("企业退税时间一般要多久", "kb-0268"), ("固定资产折旧公式", "kb-0269"),
                           ("收到处罚决定书几日内申请复议", "kb-0270"), ("开增值税专票和普票有什么区别", "kb-0271")):
            answer = services.ask(session=s, query=query, today=day, log=False)
            assert not answer.handoff and answer.hits[0].doc.ref == ref, query
        # The home-sale entry rests on the 2026 rule that replaced the pilot's (5 % and the 北上广深 split are gone).
        sale = services.ask(session=s, query="满二卖房要交多少税", today=day, log=False).hits[0].doc
        assert "2025年第17号" in sale.basis and "5%" not in sale.answer and "非普通住房" not in sale.answer
        # A personal income tax refund is still the 年度汇算 entry's, not the one on refunds of overpaid tax.
        assert services.ask(session=s, query="个人所得税退税审核需要多长时间", today=day, log=False).hits[0].doc.ref == "kb-0257"


def test_the_fifth_rounds_subjects_are_answered_by_their_entry(starter):
    # Real questions (bench/data/real_phrasings_dev.jsonl) with no right entry before issue 15's fifth round, and the
    # subjects the last closing note named (欠税, 土地增值税 deadlines, export refund formulas, property tax reliefs).
    day = date(2026, 12, 6)
    with starter.read() as s:
        for query, ref in (("欠税罚款怎么算", "kb-0273"), ("土地增值税纳税义务申报时间", "kb-0274"),
                           ("契税什么时候可以退税", "kb-0275"), ("返聘工资怎么交个税", "kb-0276"),
                           ("外贸企业出口退税计算公式", "kb-0277"), ("哪些房子不用交房产税", "kb-0278"),
                           ("未达起征点免税额和小微企业免税额有什么区别", "kb-0279"), ("注销公司税务流程需要多久?", "kb-0280"),
                           ("插混车能免购置税吗", "kb-0281"), ("营业税附加税税率", "kb-0282"), ("新农合是什么", "kb-0283"),
                           ("税局怎么知道个人的收入呢", "kb-0285")):
            answer = services.ask(session=s, query=query, today=day, log=False)
            assert not answer.handoff and answer.hits[0].doc.ref == ref, query
        # Spending without an invoice: the entry on late invoices and the one on small purchases from persons both
        # answer it rightly (the development set's label accepts either).
        answer = services.ask(session=s, query="无票支出可以税前扣除吗", today=day, log=False)
        assert not answer.handoff and answer.hits[0].doc.ref in {"kb-0284", "kb-0148"}
        # How the deregistration goes is still the process entry's; how long it takes is the new one's.
        assert services.ask(session=s, query="公司一般注销的税务流程是什么", today=day, log=False).hits[0].doc.ref == "kb-0205"
        # Ranked first, though "计算成本" is one word to the tokenizer that the entry does not use, so it goes to a person.
        assert services.ask(session=s, query="个体工商户怎么计算成本", today=day, log=False).hits[0].doc.ref == "kb-0286"
        # The everyday name finds the entry on when to pay, not only the one saying what the name means.
        assert services.ask(session=s, query="每年几月份交农村合作医疗保险", today=day, log=False).hits[0].doc.ref == "kb-0188"
        # A one-off 劳务 fee is still the 劳务报酬 entries', not the one on re-employed retirees.
        assert services.ask(session=s, query="临时劳务报酬该怎么交税", today=day, log=False).hits[0].doc.ref != "kb-0276"
    # The fine for unpaid tax is the 征管法's 50 % to five times, on top of the daily 万分之五.
    arrears = BY_KEY["kb-0273"]
    assert "第六十八条" in arrears["basis"] and "50%以上5倍以下" in arrears["answer"] and "万分之五" in arrears["answer"]


def test_the_sixth_rounds_personal_and_social_insurance_subjects_are_answered_by_their_entry(starter):
    # The subjects of personal income tax, 个体户, social insurance and the 个税App that real askers raise and the base
    # did not answer before issue 15's sixth round: the first four are real questions of bench/data/real_phrasings_dev
    # .jsonl that had no right entry, the rest everyday wordings of each new subject (none of them an entry's phrasing).
    day = date(2026, 12, 6)
    with starter.read() as s:
        for query, ref in (("每年退税能退多少", "kb-0287"), ("代开其他加工劳务的个税怎么计算", "kb-0291"),
                           ("个体工商户多久报税一次", "kb-0298"), ("个体工商户怎么报税多久报一次", "kb-0298"),
                           ("个税汇算退的钱是怎么算的", "kb-0287"), ("汇算申报能不能作废", "kb-0289"),
                           ("代开劳务费后单位还扣个税吗", "kb-0291"), ("劳务报酬跟工资薪金的区别", "kb-0292"),
                           ("公司辞退给的补偿金交不交个税", "kb-0294"), ("两个单位都发工资专项附加扣除怎么扣", "kb-0295"),
                           ("只有劳务报酬怎么享受专项附加扣除", "kb-0296"), ("换工作了个税会多扣吗", "kb-0297"),
                           ("个体户要交哪些税", "kb-0298"), ("定期定额户超过定额怎么办", "kb-0299"),
                           ("个体户需要建账吗", "kb-0300"), ("工资和经营所得能合并计税吗", "kb-0301"),
                           ("养老保险交多少年可以领退休金", "kb-0302"), ("失业期间医保谁交", "kb-0304"),
                           ("残疾人交居民医保有补助吗", "kb-0305"), ("单位发过节费要扣个税吗", "kb-0306"),
                           ("个税手续费返还怎么申请", "kb-0307"), ("公司怎么给员工申报个税", "kb-0308")):
            answer = services.ask(session=s, query=query, today=day, log=False)
            assert not answer.handoff and answer.hits[0].doc.ref == ref, query
        # Ranked first but not clear enough to answer alone: the asker is offered a person beside the entry.
        for query, ref in (("去年个税汇算忘记办了还能补吗", "kb-0288"), ("个税系统三方协议缴税怎么签署", "kb-0290"),
                           ("一个月拿了三笔劳务费怎么扣个税", "kb-0293"), ("退休后医保还要不要交", "kb-0303")):
            assert services.ask(session=s, query=query, today=day, log=False).hits[0].doc.ref == ref, query
        # The new entries leave their neighbours' questions alone: how to get a 劳务 invoice is still 代开's entry,
        # a company's 三方协议 the e-tax bureau's, and 灵活就业 contributions the entry on them.
        for query, ref in (("个人劳务发票怎么开", "kb-0259"), ("签订三方协议电子税务局怎么操作", "kb-0260"),
                           ("没单位的人社保怎么交,交多少钱", "kb-0184")):
            assert services.ask(session=s, query=query, today=day, log=False).hits[0].doc.ref == ref, query
    # Severance pay: three times the local average wage is exempt and the rest taxed on its own, not with the wages.
    severance = BY_KEY["kb-0294"]
    assert "164号" in severance["basis"] and "3倍" in severance["answer"] and "不并入当年综合所得" in severance["answer"]
    # The minimum years of pension contributions rise from 2030: the entry says so and when it took effect.
    assert "2030年1月1日" in BY_KEY["kb-0302"]["answer"] and BY_KEY["kb-0302"]["effective_from"] == "2025-01-01"


def test_the_sixth_rounds_tax_subjects_are_answered_by_their_entry(starter):
    # Subjects of invoices, VAT, enterprise income tax, the property taxes and export refunds that real askers found
    # no answer to (bench/data/real_phrasings_*.jsonl) or that bureaus' 热点问答 ask most: each colloquial question
    # is answered, and by its own entry.
    day = date(2026, 12, 6)
    with starter.read() as s:
        for query, ref in (("车船税一年多少钱", "kb-0320"), ("既有劳务又有货物如何开发票", "kb-0321"),
                           ("当天开的发票为什么查验不到", "kb-0322"), ("出租门面交哪些税", "kb-0323"),
                           ("招残疾人企业所得税有什么优惠", "kb-0324"), ("坏账损失能税前扣除吗", "kb-0325"),
                           ("新买的厂房什么时候开始交房产税", "kb-0326"), ("房产原值包括土地吗", "kb-0327"),
                           ("所得税优惠要备案吗", "kb-0328"), ("亏损了还要汇算清缴吗", "kb-0329"),
                           ("自产产品送客户交增值税吗", "kb-0330"), ("存款利息交增值税吗", "kb-0331"),
                           ("出口退税备案单证", "kb-0332"), ("留抵税额能退吗", "kb-0333"),
                           ("税前扣除凭证有哪些", "kb-0334"), ("非正常户如何解除", "kb-0335"),
                           ("前年漏扣的费用今年能扣吗", "kb-0336"), ("补充医疗保险税前扣除比例", "kb-0337"),
                           ("车被偷了车船税能退吗", "kb-0338"), ("免租期要交房产税吗", "kb-0339"),
                           ("向股东借款的利息能税前扣除吗", "kb-0340"),
                           ("个体户定额超了怎么办", "kb-0299")):
            answer = services.ask(session=s, query=query, today=day, log=False)
            assert not answer.handoff and answer.hits[0].doc.ref == ref, query
        # The new entries on neighbouring subjects do not take the older entries' own questions.
        for query, ref in (("无票支出可以税前扣除吗", "kb-0148"), ("房产税的计税依据是房产原值还是房产余值", "kb-0163"),
                           ("车船税网上怎么缴纳", "kb-0171"), ("研究开发费用税前加计扣除比例", "kb-0133")):
            assert services.ask(session=s, query=query, today=day, log=False).hits[0].doc.ref == ref, query
        # A 劳务 fee's invoice rate is not the goods-and-services entry's, nor a general refund the vehicle tax's.
        assert services.ask(session=s, query="劳务发票多少个点开", today=day, log=False).hits[0].doc.ref != "kb-0321"
        assert services.ask(session=s, query="税要交一年才可以退吗怎么退", today=day, log=False).hits[0].doc.ref != "kb-0338"
    # The vehicle tax is the statute's band per displacement; the amount in force is the province's, not guessed.
    vehicle = BY_KEY["kb-0320"]
    assert "360元至660元" in vehicle["answer"] and "3600元至5400元" in vehicle["answer"] and "待审核" in vehicle["answer"]
    # The VAT law's rules, not the provisional regulations' (视同销售 lists of 实施细则第四条 are not restated).
    assert all("增值税法" in BY_KEY[key]["basis"] for key in ("kb-0321", "kb-0330", "kb-0331", "kb-0333"))


def test_the_seventh_rounds_personal_and_social_insurance_subjects_are_answered_by_their_entry(starter):
    # People and small businesses: what real askers of the three development files (bench/data/real_phrasings_*.jsonl)
    # found no entry for — the first six are their questions word for word — and the exemptions, contributions and
    # withdrawals bureaus' 热点问答 ask most; each is answered, and by its own entry (none of these is an entry's phrasing).
    day = date(2026, 12, 6)
    with starter.read() as s:
        assert_first(s, (("城乡医保一年多少", "kb-0342"), ("社保员工和公司各承担多少的比例各是多少", "kb-0343"),
                         ("直播平台税收标准有哪些", "kb-0346"), ("个人所得减免税额是什么意思", "kb-0350"),
                         ("残保金上年在职职工人数怎么算", "kb-0351"), ("城乡居民基本养老保险怎么交明年的", "kb-0344"),
                         ("居民养老保险有几个档次", "kb-0344"), ("农民养猪卖猪的钱要交个税吗", "kb-0345"),
                         ("专利许可费个人怎么交个税", "kb-0347"), ("育儿补贴要交税吗", "kb-0348"),
                         ("生育津贴交个税吗", "kb-0349"), ("个人养老金什么条件可以取出来", "kb-0352"),
                         ("公积金超过部分要交个税吗", "kb-0353"), ("拆迁补偿款要交个税吗", "kb-0354"),
                         ("炒股赚钱交个税吗", "kb-0355"), ("领失业金要扣税吗", "kb-0356"),
                         ("企业发的网络红包要交个税吗", "kb-0357"), ("两个个体户的经营所得怎么合并申报", "kb-0358"),
                         ("工伤赔偿要扣个税吗", "kb-0359"), ("领取职业年金怎么交个税", "kb-0360"),
                         ("提前退休的一次性补贴怎么交个税", "kb-0361"), ("医保断了两年再交要等多久", "kb-0362"),
                         ("零元转让股权要交个税吗", "kb-0363")), day)
        # The neighbours keep their own questions: dividends, the 残保金 formula, the employer's pension share, when to
        # pay 居民医保, the tax on a 个人养老金 withdrawal, insurance payouts, lottery wins, VAT on farm produce,
        # severance pay, annuity contributions and a missed 居民医保 payment.
        assert_first(s, (("持有股票分红要交个税吗", "kb-0030"), ("残疾人就业保障金怎么计算", "kb-0226"),
                         ("养老保险单位交多少", "kb-0185"), ("居民医保一般几月份交", "kb-0188"),
                         ("领取个人养老金要交多少税", "kb-0026"), ("保险赔款要交个税吗", "kb-0009"),
                         ("彩票中奖要交税吗", "kb-0265"), ("农民卖自己种的农产品要交增值税吗", "kb-0245"),
                         ("公司裁员给的补偿金怎么交税", "kb-0294"), ("企业年金个人缴费能扣个税吗", "kb-0028"),
                         ("居民医保过了缴费期还能补吗", "kb-0188")), day,
                     clear=False)
        # A 代通知金 is not unemployment benefit: the stray bigram 金要 once matched them; now it goes to a person.
        answer = services.ask(session=s, query="通知金要交个税吗怎么交", today=day, log=False)
        assert answer.handoff or answer.hits[0].doc.ref != "kb-0356"
    # Local amounts are not guessed: the contribution entries name no city's figure and say where it is published.
    for key in ("kb-0342", "kb-0343"):
        assert "待审核" in BY_KEY[key]["answer"] and "不列出具体" in BY_KEY[key]["answer"]
    assert not re.search(r"(北京|上海|广州|深圳|杭州|郑州)", BY_KEY["kb-0342"]["answer"] + BY_KEY["kb-0343"]["answer"])
    # Rules that began recently carry their start: platform withholding (公告2025年第16号, 2025-10-01), the 育儿补贴
    # exemption (2025-01-01) and the 个人养老金 withdrawal cases added on 2025-09-01.
    assert "810号" in BY_KEY["kb-0346"]["basis"] and "2025年第16号" in BY_KEY["kb-0346"]["basis"]
    assert BY_KEY["kb-0346"]["effective_from"] == "2025-10-01" and "2025年10月1日" in BY_KEY["kb-0346"]["answer"]
    assert BY_KEY["kb-0348"]["effective_from"] == "2025-01-01"
    assert BY_KEY["kb-0352"]["effective_from"] == "2025-09-01" and "2025年9月1日" in BY_KEY["kb-0352"]["answer"]
    # The waiting periods of 居民医保 are the national rule of 2025 (国办发〔2024〕38号), not "as local rules say".
    assert "3个月" in BY_KEY["kb-0362"]["answer"] and "38号" in BY_KEY["kb-0362"]["basis"]
    assert "等待期等按当地规定" not in BY_KEY["kb-0188"]["answer"]
    # The worked example of the early-retirement subsidy adds up: 18万 over 2 years, 9万 - 6万 at 3 %, twice.
    assert "3万元×3%×2＝1800元" in BY_KEY["kb-0361"]["answer"]


def test_a_question_on_a_subject_its_first_entry_is_not_about_is_handed_off(starter):
    # Development questions (the retired parts) answered wrongly and confidently before the subject and local-amount
    # signals: each now goes to a person, and the question its entry does answer is still answered by it.
    day = date(2026, 12, 7)
    with starter.read() as s:
        for query, wrong in (("自产农产品免征个税吗为什么", "kb-0245"), ("劳务开几个点的发票", "kb-0018"),
                             ("深圳社保缴纳基数及比例怎么算", "kb-0184")):
            # Never answered by the entry it got wrongly (later content may give it a right one, answered or not).
            answer = services.ask(session=s, query=query, today=day, log=False)
            assert answer.handoff or answer.hits[0].doc.ref != wrong, query
        for query, right in (("农民卖自己种的农产品要交增值税吗", "kb-0245"), ("小汽车的车船税一年交多少钱", "kb-0320"),
                             ("灵活就业人员怎么缴纳社保费", "kb-0184"), ("郑州工资个税起征标准是多少", "kb-0001")):
            answer = services.ask(session=s, query=query, today=day, log=False)
            assert not answer.handoff and answer.hits[0].doc.ref == right, query


def test_the_seventh_rounds_enterprise_goods_and_property_subjects_are_answered_by_their_entry(starter):
    # Subjects of invoices, VAT, consumption tax, land, property, inspections and enterprise income tax that the
    # real-phrasing development sets (bench/data/real_phrasings_*.jsonl) asked and the base did not answer before
    # issue 15's seventh round; each query is an everyday wording of the subject, none of them an entry's phrasing.
    day = date(2026, 12, 7)
    with starter.read() as s:
        for query, ref in (("数电票额度含不含税", "kb-0371"), ("红字确认单对方没确认怎么办", "kb-0372"),
                           ("快递服务增值税税率", "kb-0373"), ("卖蔬菜免增值税吗", "kb-0374"),
                           ("卖鸡蛋要交增值税吗", "kb-0375"),
                           ("二手车经销增值税多少", "kb-0377"), ("公司卖旧车增值税怎么交", "kb-0378"),
                           ("税率和征收率的区别", "kb-0379"), ("哪些东西要交消费税", "kb-0380"),
                           ("白酒消费税怎么算", "kb-0381"), ("金银首饰消费税在哪个环节交", "kb-0382"),
                           ("耕地占用税怎么算", "kb-0383"), ("农村的房子要交房产税吗", "kb-0385"),
                           ("厂房被政府征收补偿要交税吗", "kb-0386"), ("土地增值税税率是多少", "kb-0387"),
                           ("没开票的收入要申报吗", "kb-0389"),
                           ("建设工程合同印花税税率", "kb-0390"), ("货车车船税怎么交", "kb-0391"),
                           ("企业所得税怎么计算", "kb-0392"), ("数电票什么时候开始推广", "kb-0393")):
            answer = services.ask(session=s, query=query, today=day, log=False)
            assert not answer.handoff and answer.hits[0].doc.ref == ref, query
        # Ranked first, but its neighbour on what the tax is comes close: the asker is offered a person beside it.
        assert services.ask(session=s, query="耕地占用税谁交", today=day, log=False).hits[0].doc.ref == "kb-0384"
        # Ranked first, but "注意" is not in the entry's words: under the refitted coverage rule a person is offered.
        assert services.ask(session=s, query="税务稽查要注意什么", today=day, log=False).hits[0].doc.ref == "kb-0388"
        # The older entries keep their own questions.
        for query, ref in (("买卖合同印花税税率", "kb-0153"), ("数电发票额度不够怎么办", "kb-0110"),
                           ("数电票开错了能作废吗", "kb-0113"), ("农民卖自己种的菜要交增值税吗", "kb-0245"),
                           ("城镇土地使用税每平方米多少钱", "kb-0167"), ("土地增值税什么时候申报", "kb-0274"),
                           ("个人住房要交房产税吗", "kb-0164")):
            assert services.ask(session=s, query=query, today=day, log=False).hits[0].doc.ref == ref, query
    # Amounts are the statutes' bands, the province's figure is not guessed; a relief with an end date carries it.
    assert "10元至50元" in BY_KEY["kb-0383"]["answer"] and "待审核" in BY_KEY["kb-0383"]["answer"]
    assert "16元至120元" in BY_KEY["kb-0391"]["answer"] and "待审核" in BY_KEY["kb-0391"]["answer"]
    assert "30%" in BY_KEY["kb-0387"]["answer"] and "60%" in BY_KEY["kb-0387"]["answer"]
    assert "0.5%" in BY_KEY["kb-0377"]["answer"] and BY_KEY["kb-0377"]["effective_until"] == "2027-12-31"
    # What could not be confirmed from a published text says so: the quota's tax basis, the exemptions' footing
    # under the VAT law, the used-asset 3 %-to-2 % rule.
    assert all("待审核" in BY_KEY[key]["answer"] for key in ("kb-0371", "kb-0374", "kb-0375", "kb-0377", "kb-0378"))
    # No new entry rests on the repealed VAT regulations.
    assert not any(REPEALED_VAT.search(BY_KEY[f"kb-0{n}"]["basis"]) for n in range(371, 394) if n != 376)


def test_the_hand_off_rule_keeps_answered_precision_on_real_wording(starter):
    # The thresholds of services.clear were fitted on the real-phrasing development set (bench/consult_real.py --fit)
    # for at least 96 % precision there (the floor leave-one-set-out chose); this asks every development question of
    # the shipped knowledge base and the plan's measures through the code path of `chunfeng ask` and holds the rule to
    # the target's 90 %, with coverage
    # well above the 49.7 % it had before issue 15's fifth round (a rule that hands everything off is no answer).
    dev = read_phrasings(Path(__file__).parents[2] / "bench" / "data" / "real_phrasings_dev.jsonl")
    with starter.read() as s:
        result = evaluate_answers(lambda q: services.ask(session=s, query=q, today=date(2026, 12, 6), log=False), dev)
    figures = result.figures
    assert figures["precision"] >= 0.90 and figures["coverage"] >= 0.60, (figures, result.wrong)


def test_the_eighth_rounds_subjects_are_answered_by_their_entry(starter):
    # Real questions of the four development files (bench/data/real_phrasings_*.jsonl), word for word, that no entry
    # answered before issue 15's eighth round; each is now answered by the entry written for its subject (none of them
    # is an entry's phrasing).
    day = date(2026, 12, 7)
    with starter.read() as s:
        assert_first(s, (("社保补缴追溯期国家是怎么规定的", "kb-0403"), ("个人发票如何抵扣个税", "kb-0419"),
                         ("车购税减半政策2024年还有吗", "kb-0418"), ("发票要在多久内报销", "kb-0404"),
                         ("营业执照不注销有什么影响?", "kb-0406"), ("深圳户口在外地工作社保怎么交", "kb-0402"),
                         ("增值税申报出现错误,应该怎么更正呢?", "kb-0407"), ("公司注销了还能补开发票吗?", "kb-0405"),
                         ("建筑工地个人所得税由谁交", "kb-0421"), ("企业间借款增值税计算方式", "kb-0417"),
                         ("企业从事什么项目所得减半征收所得税税率", "kb-0416"), ("安置残疾人就业增值税即征即退计算", "kb-0420"),
                         ("淘宝开店税收怎么算的", "kb-0400"), ("什么情况下可以申请不予加收税收滞纳金?", "kb-0412"),
                         ("限售股转让所得税应如何缴税", "kb-0415"), ("员工离职后还需要申报个税吗?", "kb-0410"),
                         ("3岁以下婴幼儿专项附加扣除中的婴幼儿信息如何填报?", "kb-0409"),
                         ("契税是按发票的不含税还是含税缴纳", "kb-0414"), ("公司注销前,必须办理社保账户注销吗?", "kb-0422"),
                         ("企业为员工购买商业保险需要交个税吗", "kb-0411"), ("税务局罚款是什么标准", "kb-0423"),
                         ("分公司注册公司是否需独立税务登记?", "kb-0427"), ("销售有机肥免征增值税吗", "kb-0426"),
                         ("房开企业企业所得税预缴怎么算", "kb-0428")), day)
        # Ranked first, but not clear enough to answer alone: a person is offered beside the entry.
        assert_first(s, (("纳税人识别码是什么", "kb-0408"), ("个体工商户雇佣员工需要交社保吗?", "kb-0401"),
                         ("购房契税在哪交", "kb-0414"), ("视同销售是按照成本价还是售价核算", "kb-0424"),
                         ("收了虚开发票如何处理违法行为", "kb-0413")), day, clear=False)
        # The neighbours keep their own questions: 零申报, the employer's late social insurance, the company
        # deregistration process, when 契税 is paid and a deemed sale's cases.
        assert_first(s, (("个税申报零申报怎么办理", "kb-0216"), ("企业补缴社保滞纳金怎么算?", "kb-0186"),
                         ("公司法规定公司注销的步骤是什么?", "kb-0205"), ("收房的时候要交契税吗", "kb-0176"),
                         ("以自产产品发福利是否视同销售", "kb-0330")), day, clear=False)
    # Amounts set by each province are not guessed, and what rests on rules not confirmed under the VAT law says so.
    assert "待审核" in BY_KEY["kb-0428"]["answer"] and "不得低于15%" in BY_KEY["kb-0428"]["answer"]
    assert all("待审核" in BY_KEY[key]["answer"] for key in ("kb-0413", "kb-0420", "kb-0424", "kb-0425", "kb-0426"))
    # The VAT law's deemed taxable transactions (第五条) no longer include free services: an interest-free loan between
    # firms is not one; the fines are the 征管法's bands.
    assert "第五条" in BY_KEY["kb-0417"]["basis"] and BY_KEY["kb-0417"]["effective_from"] == "2026-01-01"
    assert "50%以上5倍以下" in BY_KEY["kb-0423"]["answer"] and "50%以上3倍以下" in BY_KEY["kb-0423"]["answer"]
    # No new entry rests on the repealed VAT regulations.
    assert not any(REPEALED_VAT.search(BY_KEY[f"kb-0{n}"]["basis"]) for n in range(400, 430))
