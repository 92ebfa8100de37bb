"""`chunfeng push …` as an operator runs it: generate, import, check, match, campaign, bill."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import duckdb

from chunfeng.push import rules, services


def run(db, tmp_path, *args):
    env = {**os.environ, "CHUNFENG_DATABASE_URL": db.url, "CHUNFENG_PUSH_STORE": str(tmp_path / "store.duckdb"),
           "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "chunfeng", "push", *args], capture_output=True, text=True, env=env)


def test_gen_match_json_counts_what_the_rule_selects(db, tmp_path):
    out = tmp_path / "extract"
    made = run(db, tmp_path, "gen", "--taxpayers", "800", "--out", str(out))
    assert made.returncode == 0, made.stderr
    result = run(db, tmp_path, "match", "--data", str(out), "--policy", "XWQY-CIT-2022", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) >= {"policy", "eligible", "not_claimed", "by_region"}
    policy = next(p for p in services.shipped_policies() if p["id"] == "XWQY-CIT-2022")
    with duckdb.connect() as conn:
        cols = [d[0] for d in conn.execute(f"SELECT * FROM read_parquet('{out / 'registry.parquet'}') LIMIT 0").description]
        registry = [dict(zip(cols, r, strict=True)) for r in
                    conn.execute(f"SELECT * FROM read_parquet('{out / 'registry.parquet'}')").fetchall()]
        claimed = {c for (c,) in conn.execute(f"SELECT credit_code FROM read_parquet('{out / 'claims.parquet'}') "
                                              f"WHERE policy = 'XWQY-CIT-2022' AND period = ?", [data["period"]]).fetchall()}
    check = rules.parse(policy["rule"]).predicate()
    eligible = [r for r in registry if check(r)]
    assert data["eligible"] == len(eligible) > 0
    assert data["not_claimed"] == sum(1 for r in eligible if r["credit_code"] not in claimed)
    assert {k[:2]: v["eligible"] for k, v in data["by_region"].items()} == dict(Counter(r["region"][:2] for r in eligible))
    every = run(db, tmp_path, "match", "--data", str(out), "--json")
    assert len(every.stdout.splitlines()) == len(services.shipped_policies())
    # Issue 12: a period before the policy began counted everyone as eligible but not claimed; now refused.
    early = run(db, tmp_path, "match", "--data", str(out), "--policy", "LSLF-FJ-2023", "--period", "2022Q2")
    assert early.returncode == 1 and "2023年1月1日起才施行" in early.stderr + early.stdout
    # without --policy, a period matches the policies it lies within and no others
    in_2026 = run(db, tmp_path, "match", "--data", str(out), "--period", "2026", "--json")
    matched = {json.loads(line)["policy"] for line in in_2026.stdout.splitlines()}
    assert "XWQY-CIT-2027" in matched and "XWQY-CIT-2019" not in matched


def test_import_check_and_errors(db, tmp_path):
    out = tmp_path / "extract"
    assert run(db, tmp_path, "gen", "--taxpayers", "300", "--out", str(out), "--format", "csv").returncode == 0
    imported = run(db, tmp_path, "import", str(out))
    assert imported.returncode == 0 and "registry 300 行" in imported.stdout
    lines = (out / "registry.csv").read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].replace(lines[3].split(",")[0], '"91110000000000000A"', 1)
    (out / "registry.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    refused = run(db, tmp_path, "import", str(out))
    assert refused.returncode == 1 and "registry.csv 第 4 行" in refused.stderr and "校验码" in refused.stderr
    good = run(db, tmp_path, "check", 'vat_type == "小规模" and monthly_sales <= 10万')
    assert good.returncode == 0 and "当前数据中符合的纳税人" in good.stdout and "`vat_type`" in good.stdout
    bad = run(db, tmp_path, "check", "monthly_sale <= 10万")
    assert bad.returncode == 1 and "第 1 个字符处" in bad.stderr and "monthly_sales" in bad.stderr
    assert run(db, tmp_path, "match", "--policy", "NOPE").returncode == 1
    assert run(db, tmp_path, "match", "--engine", "oracle").returncode == 2
    assert run(db, tmp_path, "set-rule", "XWQY-CIT-2022", "headcount <=").returncode == 1


def test_campaign_and_bill_from_the_command_line(db, tmp_path):
    out = tmp_path / "extract"
    assert run(db, tmp_path, "gen", "--taxpayers", "1500", "--out", str(out)).returncode == 0
    assert run(db, tmp_path, "import", str(out)).returncode == 0
    made = run(db, tmp_path, "campaign", "create", "--name", "七月提醒", "--unit", "110000", "--policy", "LSLF-FJ-2022",
               "--month", "2022-07")
    assert made.returncode == 0 and "申报截止 2022-07-15" in made.stdout, made.stderr
    ran = run(db, tmp_path, "campaign", "run", "--today", "2022-07-12")  # issue 14.6: nobody approved these
    assert ran.returncode == 0 and "政策提醒(2022-07-01):未批准,未发送" in ran.stdout, ran.stdout
    assert "申报提醒(2022-07-11):未批准,未发送" in ran.stdout and "截止前提醒" not in ran.stdout
    cid = made.stdout.split("推送活动 ")[1].split(":")[0]
    late = run(db, tmp_path, "campaign", "approve", cid, "last", "0" * 12)
    assert late.returncode == 1 and "日期已过,不能再批准按期发送" in late.stderr
    bad = run(db, tmp_path, "campaign", "edit", cid, "--audience", "(" * 140 + "high_tech" + ")" * 140)
    assert bad.returncode == 1 and "嵌套过深" in bad.stderr
    for command, hostile in ((["check"], "monthly_sales > " + "9" * 38),
                             (["set-rule", "XWQY-CIT-2022"], " and ".join(["headcount > 1"] * 160))):
        refused = run(db, tmp_path, *command, hostile)
        assert refused.returncode == 1 and "个字符处" in refused.stderr and "^" in refused.stderr, refused.stderr
    assert run(db, tmp_path, "campaign", "pause", cid).returncode == 0
    edited = run(db, tmp_path, "campaign", "edit", cid, "--audience", 'credit in ("A", "B")')
    assert edited.returncode == 0, edited.stderr
    assert "已暂停" in run(db, tmp_path, "campaign", "list").stdout
    assert run(db, tmp_path, "campaign", "resume", cid).returncode == 0
    early = run(db, tmp_path, "campaign", "run", "--today", "2099-01-01")  # issue 14.6: never before its day
    assert early.returncode == 1 and "不能执行 2099-01-01 才到期的推送阶段" in early.stderr
    preview = run(db, tmp_path, "campaign", "preview", cid)
    assert preview.returncode == 0 and "政策提醒" in preview.stdout and "北京市" in preview.stdout, preview.stderr
    assert "批准按期发送" not in preview.stdout  # its day is past: only a confirmation now
    confirm = preview.stdout.split("确认发送:chunfeng push ")[1].split()
    assert confirm[:3] == ["campaign", "confirm", cid]
    assert run(db, tmp_path, *confirm[:3], confirm[3], "0" * 12).returncode == 1  # not the previewed code
    sent = run(db, tmp_path, *confirm)
    assert sent.returncode == 0 and "已确认发送政策提醒" in sent.stdout, sent.stderr
    assert "申报提醒" in run(db, tmp_path, "campaign", "preview", cid).stdout
    assert run(db, tmp_path, "campaign", "cancel", cid).returncode == 0
    assert "已取消" in run(db, tmp_path, "campaign", "list").stdout
    assert run(db, tmp_path, "campaign", "cancel", cid).returncode == 1
    _approve_a_stage_ahead_of_its_day(db, tmp_path)
    with duckdb.connect(str(tmp_path / "store.duckdb"), read_only=True) as conn:
        code = conn.execute("SELECT r.credit_code FROM registry r JOIN claims c USING (credit_code) "
                            "WHERE r.size IN ('小型', '微型') AND c.period LIKE '2022%' ORDER BY 1 LIMIT 1").fetchall()[0][0]
    pdf = tmp_path / "bill.pdf"
    bill = run(db, tmp_path, "bill", code, "--year", "2022", "--pdf", str(pdf))
    assert bill.returncode == 0 and "合计" in bill.stdout and pdf.read_bytes().startswith(b"%PDF")


def _approve_a_stage_ahead_of_its_day(db, tmp_path):
    """`campaign approve` and `withdraw` (issue 14.6) on next January's campaign (its calendar imported as test data)."""
    from datetime import date

    from sqlalchemy import select

    from chunfeng.push.models import Policy
    from chunfeng.workdays import CalendarYear
    from tests.push.test_campaigns import _valid_in

    year = date.today().year + 1
    with db.write() as session:
        session.add(CalendarYear(year=year, holidays=[f"{year}-01-01"], makeup_days=[], deadlines={},
                                 source="测试数据(非正式安排)"))
        pid = next(p.id for p in session.scalars(select(Policy).order_by(Policy.id)) if _valid_in(p, year, 1))
    made = run(db, tmp_path, "campaign", "create", "--name", "一月提醒", "--unit", "110000", "--policy", pid,
               "--month", f"{year}-01")
    assert made.returncode == 0, made.stderr
    cid = made.stdout.split("推送活动 ")[1].split(":")[0]
    preview = run(db, tmp_path, "campaign", "preview", cid, "--stage", "reminder")
    assert preview.returncode == 0 and "未到日期:现在可以批准按期发送" in preview.stdout, preview.stderr
    approve = ["campaign", "approve", *preview.stdout.split("chunfeng push campaign approve ")[1].split()[:3]]
    assert approve[:4] == ["campaign", "approve", cid, "reminder"]
    approved = run(db, tmp_path, *approve)
    assert approved.returncode == 0 and "已批准申报提醒于" in approved.stdout and "户纳税人" in approved.stdout
    withdrawn = run(db, tmp_path, "campaign", "withdraw", cid, "reminder")
    assert withdrawn.returncode == 0 and "已撤回申报提醒" in withdrawn.stdout, withdrawn.stderr
