"""`chunfeng ask` and `chunfeng consult eval` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.consult.test_services import kb  # noqa: F401  (the fixture)
from tests.consult.test_starter_kb import starter  # noqa: F401  (the fixture)


def run(db, *args):
    return subprocess.run([sys.executable, "-m", "chunfeng", *args], capture_output=True, text=True,
                          env={**os.environ, "CHUNFENG_DATABASE_URL": db.url})


def test_ask_json_and_batch(kb, tmp_path):  # noqa: F811
    one = run(kb, "ask", "个税汇算什么时候办", "--json")
    assert one.returncode == 0, one.stderr
    data = json.loads(one.stdout)
    assert data["answers"][0]["id"] == "kb-0001" and data["handoff"] is False
    questions = tmp_path / "q.txt"
    questions.write_text("个税汇算什么时候办\n小规模交增值税几个点\n\n春风行动承诺出口退税平均要几个工作日办完\n"
                         "出口退税平均要几个工作日办完\n", encoding="utf-8")
    batch = run(kb, "ask", "--batch", str(questions), "--json")
    lines = [json.loads(line) for line in batch.stdout.splitlines()]
    assert [line["answers"][0]["id"] for line in lines[:3]] == ["kb-0001", "kb-0002", "measure:54"]
    # Asked as a taxpayer's operational question, the 2022 commitment does not answer it: a person does.
    assert lines[3]["handoff"] and all(a["source"] != "measure" for a in lines[3]["answers"])
    assert run(kb, "ask").returncode == 2


def test_eval(kb, tmp_path):  # noqa: F811
    tsv = tmp_path / "eval.tsv"
    tsv.write_text("question\texpected\n个税汇算哪天开始\tkb-0001\n小规模纳税人征收率\tkb-0002\n出口退税平均几个工作日\tmeasure:54\n"
                   "完全无关的问题\tkb-0001\n", encoding="utf-8")
    result = run(kb, "consult", "eval", str(tsv), "--json")
    figures = json.loads(result.stdout)
    assert figures["questions"] == 4 and figures["top1"] == 0.75 and abs(figures["mrr"] - 0.75) < 1e-9
    bad = tmp_path / "bad.tsv"
    bad.write_text("question\texpected\n只有问题\n", encoding="utf-8")
    assert run(kb, "consult", "eval", str(bad)).returncode == 1


def test_ask_what_an_a_rating_gives(starter, tmp_path):  # noqa: F811
    # Against the shipped starter knowledge base and the plan's measures: the answer is the credit domain's data,
    # naming its basis and what awaits review.
    for question in ("A级纳税人有什么好处", "信用等级A级有哪些激励"):
        answered = run(starter, "ask", question, "--json")
        assert answered.returncode == 0, answered.stderr
        first = json.loads(answered.stdout)["answers"][0]
        assert first["id"] == "credit-incentives:A", (question, first["id"])
        assert "公告2025年第12号" in first["basis"] and "待复核" in first["answer"]
