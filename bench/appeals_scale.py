"""Demands and complaints at national scale: 100,000 synthetic items over a year, spread over the provincial,
municipal and county bureaus, the four kinds and the five channels, their texts assembled from templates about
tax-service problems with many near-duplicates.

Figures, each printed beside its target:
- the periodic analysis (measure 98) for the whole year at the national unit: volumes, time limits,
  satisfaction, recurring issues (clustering every text), rising topics and measures (target: at most 60 s
  on 2 cores), with the number of clusters found;
- the intake API (`POST /api/appeals`, each item classified and routed) under locust, headless on loopback
  against `chunfeng serve` on SQLite: requests per second and p99 latency, and every item locust saw
  accepted found in the database afterwards.

Run: .venv/bin/python bench/appeals_scale.py [--items 100000] [--seconds 30] [--users 20]
The database is generated afresh in bench/out/ on every run.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from common import configure, step  # bench/common.py
from sqlalchemy import func, insert, select

from chunfeng.appeals import analysis, clustering
from chunfeng.appeals.models import Appeal
from chunfeng.appeals.services import DEFAULT_RULES
from chunfeng.db import Database
from chunfeng.org.access import SystemActor
from chunfeng.org.builtin import NATIONAL, PROVINCES
from chunfeng.org.models import Unit
from chunfeng.org.services import find_unit
from chunfeng.plan import services as plan
from chunfeng.workdays import configured_calendar

OUT = Path(__file__).parent / "out"
SYSTEM = SystemActor(username="bench")
YEAR = analysis.Filters(date(2022, 1, 1), date(2022, 12, 31), NATIONAL[0])

# --- synthetic texts ------------------------------------------------------------------------------------------

SLOTS = {
    "place": ["城区", "开发区", "高新区", "东城", "西城", "南郊", "北区", "新区", "县城", "经开区", "滨海新区", "老城区",
              "自贸区", "临港", "港区", "空港", "工业园区", "市中心", "江北", "江南"],
    "biz": ["发票领用", "税务登记", "社保缴费", "个税申报", "出口退税", "税务注销", "车辆购置税申报", "房产交易纳税",
            "增值税申报", "开具完税证明", "跨区域涉税事项报告", "印花税申报"],
    "wait": ["等了两个小时", "等了三个小时", "排了一上午", "从早上等到中午", "等了一个多小时", "排了整整半天",
             "等了四十分钟", "前面还有五十多个号"],
    "hope": ["希望尽快解决", "请领导重视", "希望改进", "希望多开几个窗口", "谢谢", "", "请尽快处理", "希望给个说法",
             "恳请税务部门重视", ""],
    "error": ["验证码错误", "密码错误", "系统繁忙请稍后再试", "证书无效", "用户不存在", "网络异常"],
    "when": ["这几天", "每天上午", "月底申报期", "最近一周", "今天", "昨天下午", "这个月", "征期最后两天"],
    "attitude": ["说话很冲", "爱答不理", "不耐烦", "让我们自己去网上查", "推来推去", "玩手机不理人"],
    "days": ["十几个工作日", "二十多天", "一个多月", "两个月", "半个多月", "三十个工作日"],
    "n": [str(i) for i in range(2, 9)],
}

# topic, measures, kind weights (demand, complaint, suggestion, opinion), templates
FAMILIES = [
    ("办税服务厅", [19, 98], (2, 6, 1, 1), [
        "{place}办税服务厅排队时间太长,{wait},{hope}",
        "到{place}办税服务厅办理{biz}要排很久的队,{wait}",
        "{place}办税服务厅窗口开得太少,办理{biz}{wait},{hope}"]),
    ("服务态度", [98], (1, 8, 0, 1), [
        "{place}办税服务厅工作人员态度不好,{attitude},{hope}",
        "去{place}办税服务厅办理{biz},窗口工作人员{attitude},{hope}"]),
    ("电子税务局", [32], (3, 5, 1, 0), [
        "电子税务局登录不上去,一直提示{error},{hope}",
        "{when}登录电子税务局总是提示{error},换了浏览器也不行",
        "电子税务局办理{biz}时页面特别卡,{when}提交了{n}次都失败了"]),
    ("发票", [53], (4, 4, 1, 0), [
        "申请领用发票{days}了,{place}税务局一直没有审核,{hope}",
        "电子发票报销入账还要打印纸质件,希望推进电子发票电子化报销归档",
        "{place}税务局发票增量申请审批太慢,已经{days}还没有批下来"]),
    ("出口退税", [54], (4, 5, 1, 0), [
        "出口退税办理太慢了,申报以后等了{days}还没有到账,{hope}",
        "我们是{place}的外贸企业,出口退税申报后{days}没有到账,资金很紧张"]),
    ("个税汇算", [46], (5, 4, 1, 0), [
        "个人所得税汇算清缴的退税{days}还没有到账,{hope}",
        "个税汇算清缴申请退税后一直显示审核中,已经{days}了"]),
    ("12366热线", [19], (3, 6, 1, 0), [
        "12366热线总是打不通,{when}打了{n}次都在排队,希望增加坐席",
        "打12366咨询{biz}的问题,等了很久没人接,{hope}"]),
    ("社保缴费", [70], (5, 4, 1, 0), [
        "灵活就业人员社保费缴费{when}总是失败,提示{error},{hope}",
        "在{place}办理社保缴费还要跑办税服务厅,希望能全程网上办"]),
    ("留抵退税", [60], (5, 3, 1, 0), [
        "增值税留抵退税申请提交{days}了一直没有消息,{hope}",
        "{place}税务局对留抵退税审核要求补充的资料太多,希望简化"]),
    ("税务检查", [98], (2, 6, 1, 1), [
        "{place}税务局检查时要求提供的资料太多,同样的材料要重复报送{n}次",
        "税务检查人员到企业检查,{attitude},{hope}"]),
    ("政策宣传", [41], (6, 1, 3, 0), [
        "新出台的税费优惠政策不知道自己能不能享受,希望能主动推送给我们",
        "小微企业的税费优惠政策太多看不明白,希望{place}税务局多开展政策辅导"]),
    ("自助办税", [19], (3, 5, 2, 0), [
        "{place}自助办税终端经常出故障,{biz}办不了,{hope}",
        "{place}的自助办税机{when}又坏了,只能去窗口排队,{wait}"]),
    ("预约办税", [19], (4, 4, 2, 0), [
        "网上预约办税总是约不上,{when}一放号就没了,{hope}",
        "预约了{place}办税服务厅的{biz},到了现场还是要重新排队"]),
    ("纳税信用", [80], (5, 4, 1, 0), [
        "纳税信用评价结果有误,申请复评{days}没有结果,{hope}",
        "企业因为一次逾期申报被评为纳税信用C级,希望能修复信用"]),
    ("税务注销", [12], (4, 5, 1, 0), [
        "办理税务注销手续太复杂,跑了{n}趟还没办完,{hope}",
        "{place}税务局办理注销要求提供的材料太多,{hope}"]),
    ("办税服务厅", [19], (0, 0, 1, 4), [  # public opinion on the halls
        "网上有帖子反映{place}办税服务厅排队时间太长,引发网友讨论",
        "有网友在微博上发帖说{place}办税服务厅工作人员{attitude},阅读量较高"]),
    ("延时服务", [98], (2, 0, 8, 0), [
        "建议{place}办税服务厅周末也开放,方便上班族办理{biz}",
        "建议办税服务厅推行延时服务和错时服务,中午也能办理{biz}"]),
    ("定额核定", [98], (3, 6, 1, 0), [
        "个体工商户定额核定不合理,{place}税务所没有说明依据,{hope}",
        "{place}税务所把我们个体户的定额一下子提高了很多,{hope}"]),
]
TAIL = ["孩子上学需要开具完税证明", "房屋交易契税计算有疑问", "车辆购置税完税证明丢失", "印花税申报期限不清楚",
        "跨省迁移企业税务手续", "残疾人就业保障金申报", "文化事业建设费缴纳", "非税收入缴款书打印",
        "税收居民身份证明开具", "研发费用加计扣除备案", "土地增值税清算资料", "境外所得申报方式",
        "代扣代缴手续费返还", "环保税申报系统", "资源税减免", "耕地占用税缴纳"]
TAIL_ENDS = ["不知道去哪里办理", "网上找不到入口", "工作人员说法不一致", "希望出一个办事指南", "能否邮寄办理",
             "需要准备什么材料", "办理时限是多久", "可以委托别人办理吗"]
# Words for the items that resemble no other: a few in every twenty.
WORDS = ("纳税人 缴费人 企业 个体户 发票 申报 退税 社保 医保 车船税 契税 房产税 土地 增值税 消费税 附加税 所得税 印花税 "
         "资料 证明 系统 网站 手机 短信 电话 窗口 大厅 专员 局长 科室 审批 审核 核定 补缴 滞纳金 罚款 稽查 评估 信用 "
         "注销 变更 登记 迁移 代开 代扣 汇缴 预缴 备案 减免 优惠 政策 公告 解读 培训 辅导 预约 排号 邮寄 快递 打印 "
         "签章 授权 实名 认证 人脸 识别 银行 扣款 三方协议 账户 余额 明细 查询 下载 上传 附件 格式 模板 期限 逾期 "
         "延期 更正 作废 红冲 冲红 抵扣 勾选 确认 比对 异常 风险 提醒 通知 回执 编号 流程 环节 时限 效率 标准 口径 "
         "地方 省里 市里 县里 乡镇 街道 社区 园区 农村 合作社 学校 医院 工地 商户 平台 直播 电商 外卖 快递员 司机").split()
KINDS = ["demand", "complaint", "suggestion", "opinion"]
CHANNELS = (["web", "api", "hotline", "consult", "official"], [40, 15, 30, 10, 5])


def make_text(rng: random.Random) -> tuple[str, str, list[int], str]:
    """A text, its topic, its measures and its kind: mostly from a family's templates, some from the long tail."""
    roll = rng.random()
    if roll < 0.05:
        words = rng.sample(WORDS, rng.randint(5, 9))
        return "".join(words[:3]) + "," + "".join(words[3:]) + rng.choice(["的问题", "怎么办", "有疑问", "不合理"]), \
            "", [], rng.choice(KINDS)
    if roll < 0.2:
        text = f"{rng.choice(SLOTS['place'])}{rng.choice(TAIL)}的问题,{rng.choice(TAIL_ENDS)},{rng.choice(SLOTS['hope'])}"
        return text, "", [], rng.choice(["demand", "demand", "suggestion", "complaint"])
    topic, measures, weights, templates = rng.choice(FAMILIES)
    template = rng.choice(templates)
    text = template.format(**{k: rng.choice(v) for k, v in SLOTS.items()}).rstrip(",")
    if rng.random() < 0.15:  # a little noise: the submitter says who they are
        text = rng.choice(["我是个体户,", "我们公司", "本人是退休人员,", "我是财务人员,"]) + text
    return text, topic, measures, rng.choices(KINDS, weights)[0]


# --- the database ---------------------------------------------------------------------------------------------

def build(db: Database, items: int) -> None:
    rng = random.Random(98)
    db.upgrade()
    with db.write() as s:
        plan.import_notice(session=s, actor=SYSTEM, data=plan.shipped_notice())
    with step("units: 3 municipal bureaus per province, 2 county bureaus each"), db.write() as s:
        for i, (code, _) in enumerate(PROVINCES):
            province = find_unit(session=s, code=code)
            cities = [dict(code=f"M{i:02d}{j}", name=f"基准{i}省{j}市税务局", level="municipal", parent_id=province.id,
                           path=f"{province.path}M{i:02d}{j}/", sort=j, builtin=False, synthetic=True) for j in range(3)]
            s.execute(insert(Unit), cities)
        for city in list(s.scalars(select(Unit).where(Unit.level == "municipal"))):
            s.execute(insert(Unit), [dict(code=f"C{city.code[1:]}{k}", name=f"{city.name[:-4]}{k}县税务局", level="county",
                                          parent_id=city.id, path=f"{city.path}C{city.code[1:]}{k}/", sort=k, builtin=False,
                                          synthetic=True) for k in range(2)])
        units = {level: list(s.scalars(select(Unit.id).where(Unit.level == level).order_by(Unit.id)))
                 for level in ("national", "province", "municipal", "county")}
    cal = configured_calendar()

    @lru_cache(maxsize=None)
    def due(day: date, kind: str) -> tuple[date, date, date]:
        return tuple(cal.add_working_days(day, n) for n in DEFAULT_RULES.limits_of(kind).values())

    with step(f"items: {items:,}"), db.write() as s:
        rows = []
        for i in range(items):
            text, topic, measures, kind = make_text(rng)
            level = rng.choices(["county", "municipal", "province", "national"], [60, 25, 13, 2])[0]
            unit = rng.choice(units[level])
            day = YEAR.start + timedelta(days=rng.randrange(365))
            received = datetime.combine(day, datetime.min.time()) + timedelta(seconds=rng.randrange(8 * 3600, 18 * 3600))
            due_accept, due_reply, due_close = due(day, kind)
            state = rng.choices(["closed", "replied", "in_progress", "accepted", "received"], [60, 10, 10, 10, 10])[0]
            accepted = replied = closed = None
            rating = None
            if state != "received":
                accepted = received + timedelta(hours=rng.choice([2, 5, 20, 30, 70]))
            if state in ("replied", "closed"):
                replied = accepted + timedelta(days=rng.choice([1, 2, 3, 5, 8]))
            if state == "closed":
                closed = replied + timedelta(days=rng.choice([1, 2, 4, 9]))
                rating = rng.choices([None, 5, 4, 3, 2, 1], [50, 25, 12, 6, 4, 3])[0]
            channel = rng.choices(*CHANNELS)[0]
            rows.append(dict(kind=kind, channel=channel, title=text[:40], text=text, region="", topic=topic,
                             submitter="", phone="", email="", taxpayer_code="", token_digest=f"{i:064x}",
                             category_no=None, item_no=None, measures=measures, auto_category_no=None,
                             auto_item_no=None, auto_measures=measures, unit_id=unit, auto_unit_id=unit, overridden_by="",
                             state=state, received_at=received, accepted_at=accepted, replied_at=replied, closed_at=closed,
                             due_accept=due_accept, due_reply=due_reply, due_close=due_close, reply="", rating=rating,
                             reopened=0, reminded=[], escalated=[], handoff_id=None, created_by="bench"))
            if len(rows) == 10_000:
                s.execute(Appeal.__table__.insert(), rows)
                rows = []
        if rows:
            s.execute(Appeal.__table__.insert(), rows)


def fresh_database(items: int) -> Database:
    OUT.mkdir(exist_ok=True)
    path = OUT / f"appeals-{items}.db"
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    db = Database(f"sqlite:///{path}")
    print(f"database: {db.engine.url}")
    print("generating:")
    build(db, items)
    with db.read() as s:
        total = s.scalar(select(func.count()).select_from(Appeal))
        units = s.scalar(select(func.count()).select_from(Unit))
    print(f"\n{total:,} items over {units:,} units\n")
    return db


# --- the parts ------------------------------------------------------------------------------------------------

def analysis_report(db: Database, args: argparse.Namespace) -> None:
    """The periodic analysis for the whole year at the national unit: the first run in this process (it
    also loads the tokenizer's dictionary, as a report run once a month would), then a second."""
    seconds = []
    for _ in range(2):
        start = time.perf_counter()
        with db.read() as s:
            r = analysis.report(session=s, actor=SYSTEM, filters=YEAR, today=date(2023, 1, 31))
        seconds.append(time.perf_counter() - start)
    print(f"analysis report, national unit, whole year ({r.total:,} items): {seconds[0]:.1f} s, "
          f"run again {seconds[1]:.1f} s   (target ≤ 60 s)")
    print(f"  recurring issues: {r.clusters_found:,} clusters of ≥ 2 items, holding {r.clustered_items:,} items "
          f"({r.clustered_items / max(r.total, 1):.0%})")
    for c in r.recurring[:5]:
        print(f"    {c.size:>6,}  {c.representative}  [{'、'.join(c.terms)}]")
    accept = r.compliance[0]
    print(f"  accepted on time: {accept.met:,} of {accept.assessed:,}; satisfaction: {r.satisfaction.count:,} ratings, "
          f"mean {r.satisfaction.mean:.2f}; {len(r.rising)} rising topics; {len(r.measures)} measures concerned")
    with db.read() as s:
        texts = list(s.scalars(select(Appeal.text).order_by(Appeal.received_at, Appeal.id)))
    start = time.perf_counter()
    labels = clustering.cluster(texts)
    print(f"  of which clustering the {len(texts):,} texts alone: {time.perf_counter() - start:.1f} s "
          f"({len(set(labels.tolist())):,} clusters including single items)")


def intake_load(db: Database, args: argparse.Namespace) -> None:
    """`POST /api/appeals` under locust (headless, on loopback) against `chunfeng serve` on a fresh SQLite
    database with the plan imported (so every item is classified as in production); then every item locust
    saw accepted is looked for in the database."""
    import csv
    import json
    import os
    import socket
    import sqlite3
    import subprocess
    import urllib.request

    import chunfeng

    seconds, users = args.seconds, args.users
    db_path = OUT / "appeals-intake.db"
    for p in OUT.glob("appeals-intake.db*"):
        p.unlink()
    accepted_file = OUT / "intake-accepted.json"
    env = {**os.environ, "CHUNFENG_DATABASE_URL": f"sqlite:///{db_path}", "CHUNFENG_SCAN_INTERVAL_MINUTES": "0",
           "CHUNFENG_DATA_DIR": str(OUT / "appeals-files"), "CHUNFENG_BENCH_ACCEPTED": str(accepted_file),
           "CHUNFENG_RATE_LIMITS": "{}"}  # one address sends everything: the per-address limit would refuse it
    notice = Path(chunfeng.__file__).parent / "plan" / "data" / "shuizong_nafuhan_2022_32.txt"
    subprocess.run([sys.executable, "-m", "chunfeng", "plan", "import", str(notice)], env=env, check=True,
                   capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "chunfeng", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        # One item first: the server builds its retrieval index on the first question, not under load.
        warm = urllib.request.Request(url + "/api/appeals", method="POST", headers={"Content-Type": "application/json"},
                                      data=json.dumps({"kind": "demand", "text": "预热", "phone": "13900000000"}).encode())
        urllib.request.urlopen(warm, timeout=60)
        prefix = OUT / "intake"
        subprocess.run([str(Path(sys.executable).with_name("locust")), "-f", str(Path(__file__).with_name(
            "appeals_locustfile.py")), "--headless", "-u", str(users), "-r", str(users), "-t", f"{seconds}s",
            "--host", url, "--csv", str(prefix), "--only-summary", "--loglevel", "ERROR"], check=True,
            capture_output=True, env=env)
    finally:
        server.terminate()
        server.wait(timeout=30)
    with open(f"{prefix}_stats.csv", encoding="utf-8") as fh:
        total = next(r for r in csv.DictReader(fh) if r["Name"] == "Aggregated")
    accepted = set(json.loads(accepted_file.read_text()))
    with sqlite3.connect(db_path) as conn:
        ids = {i for (i,) in conn.execute("SELECT id FROM appeal").fetchall()}
    stored, lost = len(ids), len(accepted - ids)
    print(f"\nintake API under locust ({users} users, {seconds} s, loopback, SQLite): "
          f"{float(total['Requests/s']):.0f} requests/s, p50 {total['50%']} ms, p99 {total['99%']} ms, "
          f"{total['Failure Count']} failed")
    print(f"  accepted (201 with an id) {len(accepted):,}; in the database afterwards {stored:,} "
          f"(requests still in flight when locust stopped were stored too); accepted but missing: {lost}"
          f"{' — nothing lost' if not lost else ' — LOST'}")


# Each part takes the generated database and the arguments.
PARTS = [analysis_report, intake_load]


def main() -> None:
    configure()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000, help="synthetic items to generate (default 100,000)")
    parser.add_argument("--seconds", type=int, default=30, help="how long locust loads the intake API")
    parser.add_argument("--users", type=int, default=20, help="locust users, each filing as fast as it can")
    args = parser.parse_args()
    db = fresh_database(args.items)
    for part in PARTS:
        part(db, args)
    db.dispose()


if __name__ == "__main__":
    main()
