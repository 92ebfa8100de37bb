"""`chunfeng survey …` as an operator runs it: import (and a refused file), list, results with the workbook."""

from __future__ import annotations

import os
import subprocess
import sys

from openpyxl import load_workbook

from chunfeng.survey import answering
from chunfeng.survey.models import Survey
from tests.push.conftest import extract_dir, store_file  # noqa: F401  (the fixtures)
from tests.survey.test_services import GOOD, sheet


def run(db, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "CHUNFENG_DATABASE_URL": db.url, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "chunfeng", "survey", *args], capture_output=True, text=True, env=env)


def test_import_list_and_results(db, tmp_path):
    made = run(db, "import", str(sheet(tmp_path, GOOD)), "--title", "办税体验调查", "--publish")
    assert made.returncode == 0, made.stderr
    assert "第 1 版,已发布" in made.stdout and "已导入 5 道题" in made.stdout
    with db.read() as s:
        survey = s.query(Survey).one()
        link, survey_id = survey.link, survey.id
    with db.write() as s:
        answering.submit(session=s, token=link, raw={"Q1": ["是"], "Q2": ["4"], "Q4": ["10"]})
    listed = run(db, "list")
    assert listed.returncode == 0 and "办税体验调查" in listed.stdout
    out = tmp_path / "结果.xlsx"
    shown = run(db, "results", str(survey_id), "--xlsx", str(out))
    assert shown.returncode == 0, shown.stderr
    assert "答卷 1 份" in shown.stdout and "平均 4.00" in shown.stdout and "NPS 100.0" in shown.stdout
    assert load_workbook(out).sheetnames == ["概况", "题目分布", "答卷"]


def test_a_bad_file_is_refused_with_its_rows(db, tmp_path):
    bad = sheet(tmp_path, [["Q1", "单选", "办过吗", "是", "是", "", ""]])
    refused = run(db, "import", str(bad), "--title", "坏问卷")
    assert refused.returncode == 1 and "第 2 行 选项" in refused.stderr


def test_analyse_prints_the_crosstab_test_and_writes_the_workbook(db, tmp_path):
    assert run(db, "import", str(sheet(tmp_path, GOOD)), "--title", "办税体验调查", "--publish").returncode == 0
    with db.read() as s:
        link, survey_id = s.query(Survey.link, Survey.id).one()
    with db.write() as s:
        for q2, q4 in (("5", "10"), ("4", "9"), ("2", "3"), ("1", "0")):
            answering.submit(session=s, token=link, raw={"Q1": ["是"], "Q2": [q2], "Q4": [q4], "Q5": ["排队时间太长"]})
    out = tmp_path / "分析.xlsx"
    shown = run(db, "analyse", str(survey_id), "--row", "Q2", "--col", "Q4", "--xlsx", str(out))
    assert shown.returncode == 0, shown.stderr
    assert "未加权" in shown.stdout and "交叉表 Q2×Q4:χ²=12.000,自由度 9" in shown.stdout
    assert "主题(4 条,100.0%):排队时间太长" in shown.stdout
    assert "卡方检验" in load_workbook(out).sheetnames

def test_sample_invite_and_remind_from_the_command_line(db, tmp_path, store_file):  # noqa: F811
    from sqlalchemy import select

    from chunfeng.survey.sample_models import SurveySample

    made = run(db, "import", str(sheet(tmp_path, GOOD)), "--title", "需求调查", "--publish", "--unit", "110000")
    assert made.returncode == 0, made.stderr
    with db.read() as s:
        survey_id = s.query(Survey).one().id
    env = {"CHUNFENG_PUSH_STORE": str(store_file)}
    shown = run_env(db, env, "sample", str(survey_id), "--dimensions", "size", "--size", "10", "--seed", "5")
    assert shown.returncode == 0, shown.stderr
    assert "抽取 10 户,随机种子 5" in shown.stdout
    with db.read() as s:
        assert s.scalar(select(SurveySample.id)) is None  # a preview draws nothing
    drawn = run_env(db, env, "sample", str(survey_id), "--dimensions", "size", "--size", "10", "--seed", "5", "--draw")
    assert drawn.returncode == 0 and "已抽取 10 户(随机种子 5)" in drawn.stdout, drawn.stderr
    with db.read() as s:
        sample_id = s.scalar(select(SurveySample.id))
    sent = run_env(db, env, "invite", str(sample_id), "--base-url", "https://cf.example.cn/", "--roles",
                   "法定代表人,财务负责人,办税人员")
    assert sent.returncode == 0 and "已发出邀请" in sent.stdout, sent.stderr
    remind = run_env(db, env, "remind", str(sample_id), "--yes")
    assert remind.returncode == 0 and "将提醒 10 户" in remind.stdout, remind.stderr


def run_env(db, extra: dict, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "CHUNFENG_DATABASE_URL": db.url, "COLUMNS": "200", **extra}
    return subprocess.run([sys.executable, "-m", "chunfeng", "survey", *args], capture_output=True, text=True, env=env)


def test_units_invited_and_reminded_and_the_hall_qr_code_written(db, tmp_path):
    made = run(db, "import", str(sheet(tmp_path, GOOD)), "--title", "办税体验调查", "--publish")
    assert made.returncode == 0, made.stderr
    with db.read() as s:
        survey_id, link = s.query(Survey.id, Survey.link).one()
    units = tmp_path / "单位.csv"
    units.write_text("单位代码\n110000\n999999\n", encoding="utf-8")
    refused = run(db, "invite-units", str(survey_id), "--base-url", "https://cf.example.cn", "--file", str(units))
    assert refused.returncode != 0 and "第 3 行" in refused.stdout + refused.stderr
    units.write_text("单位代码\n110000\n", encoding="utf-8")
    sent = run(db, "invite-units", str(survey_id), "--base-url", "https://cf.example.cn", "--file", str(units),
               "--units", "310000")
    assert sent.returncode == 0 and "已向 2 个单位发出邀请" in sent.stdout, sent.stdout + sent.stderr
    reminded = run(db, "remind-units", str(survey_id), "--base-url", "https://cf.example.cn")
    assert reminded.returncode == 0 and "已提醒 2 个" in reminded.stdout
    out = tmp_path / "二维码.svg"
    written = run(db, "qr", str(survey_id), str(out), "--base-url", "https://cf.example.cn")
    assert written.returncode == 0 and out.read_text().startswith("<svg") and link in written.stdout


def test_a_sample_drawn_from_a_list_on_the_command_line(db, tmp_path):
    from sqlalchemy import select

    from chunfeng.survey.sample_models import SurveySample, SurveySampleMember
    from tests.survey.test_list_sampling import listed, write_list

    made = run(db, "import", str(sheet(tmp_path, GOOD)), "--title", "来访纳税人调查", "--publish", "--unit", "110000")
    assert made.returncode == 0, made.stderr
    with db.read() as s:
        survey_id = s.query(Survey).one().id
    rows = [[code, "110000", *rest] for code, _, *rest in listed(40)]
    path = write_list(tmp_path, rows)
    shown = run(db, "sample", str(survey_id), "--from-list", str(path), "--dimensions", "规模", "--size", "8",
                "--seed", "11")
    assert shown.returncode == 0, shown.stderr
    assert "名单 名单.xlsx" in shown.stdout and "抽样框 40 户,抽取 8 户,随机种子 11" in shown.stdout
    assert "小型" in shown.stdout
    with db.read() as s:
        assert s.scalar(select(SurveySample.id)) is None  # a preview draws nothing
    for _ in range(2):
        drawn = run(db, "sample", str(survey_id), "--from-list", str(path), "--dimensions", "规模", "--size", "8",
                    "--seed", "11", "--draw")
        assert drawn.returncode == 0 and "已抽取 8 户(随机种子 11)" in drawn.stdout, drawn.stderr
    with db.read() as s:
        first, second = s.scalars(select(SurveySample.id).order_by(SurveySample.id))
        members = [sorted(s.scalars(select(SurveySampleMember.credit_code).where(SurveySampleMember.sample_id == i)))
                   for i in (first, second)]
    assert members[0] == members[1] and len(members[0]) == 8  # same file, same seed: same members
    rows[4][4] = "电话"
    refused = run(db, "sample", str(survey_id), "--from-list", str(write_list(tmp_path, rows)), "--draw")
    assert refused.returncode != 0 and "第 6 行 手机号码" in refused.stdout + refused.stderr
    with db.read() as s:
        assert len(list(s.scalars(select(SurveySample.id)))) == 2
