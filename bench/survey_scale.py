"""A national survey's analysis (measure 3) at scale: 200,000 synthetic responses to a questionnaire of the usual
shape (where the respondent is, a 1–5 satisfaction scale, channels used, the NPS question, an optional free-text
suggestion), inserted in bulk with the strata they were sampled from (31 provinces × 3 sizes) and the population
size of every stratum; and, in the same run, a survey of 20,000 responses as the baseline.

Figures, each part timed separately and printed beside the target (the whole analysis of 200,000 responses:
under 15 s on this machine, issue 18):
- the unweighted results (counts, shares, means with 95 % intervals, NPS),
- the weighting back to the population (post-stratification) with the weighted figures,
- a cross-tab of satisfaction by size with its chi-square test and weighted row shares,
- the themes of the free-text answers (the appeals clustering),
- the whole `report.analyse` the analysis page runs (all of the above; the measures suggested for themes
  excluded, as they query the consultation's index, not the responses).

Run: .venv/bin/python bench/survey_scale.py [--responses 200000] [--baseline 20000] [--text-share 0.3]
The SQLite database is generated afresh in bench/out/ on every run.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from common import configure, step  # bench/common.py
from sqlalchemy import insert

from chunfeng.db import Database
from chunfeng.org.access import SystemActor
from chunfeng.org.builtin import PROVINCES
from chunfeng.survey import analysis, crosstabs, report, services, themes
from chunfeng.survey.direct_models import SurveyStratumSize
from chunfeng.survey.models import SurveyResponse

OUT = Path(__file__).parent / "out"
SYSTEM = SystemActor(username="bench")
TARGET = 15.0  # seconds, for 200,000 responses

QUESTIONS = [
    services.QuestionSpec("Q1", "single", "您的企业规模", ["小微", "中型", "大型"], required=True),
    services.QuestionSpec("Q2", "scale", "您对办税缴费服务的总体满意程度", required=True),
    services.QuestionSpec("Q3", "multi", "您常用哪些渠道?", ["电子税务局", "12366热线", "办税服务厅", "掌上办税", "自助终端"]),
    services.QuestionSpec("Q4", "nps", "您有多大可能向朋友推荐电子税务局?"),
    services.QuestionSpec("Q5", "text", "您对改进办税缴费服务有什么建议?"),
]
SIZES = ["小微", "中型", "大型"]
PLACES = ["城区", "开发区", "高新区", "县城", "新区", "自贸区", "工业园区", "老城区"]
BIZ = ["发票领用", "个税申报", "出口退税", "社保缴费", "税务注销", "增值税申报", "留抵退税", "跨区域涉税事项"]
TEMPLATES = [
    "希望{place}办税服务厅多开几个窗口,办理{biz}排队太久",
    "电子税务局办理{biz}时经常提示系统繁忙,希望改进",
    "12366热线经常打不通,咨询{biz}的问题要等很久",
    "建议{place}办税服务厅周末也开放,方便办理{biz}",
    "{biz}的政策变化太快,希望多开展政策辅导和主动推送",
    "{biz}需要提交的资料太多,希望简化流程、减少重复报送",
    "掌上办税的{biz}功能不好找,希望优化界面",
    "{place}税务局工作人员服务态度很好,{biz}办得很快,谢谢",
]
WORDS = "发票 申报 退税 社保 系统 窗口 大厅 专员 审批 核定 优惠 政策 培训 预约 邮寄 打印 认证 扣款 期限 流程 效率".split()


def strata() -> dict[str, int]:
    """Every stratum's population: province × size, sizes in proportion to a bureau's register."""
    rng = random.Random(3)
    return {f"{code}-{size}": rng.randint(*bounds) for code, _ in PROVINCES
            for size, bounds in zip(SIZES, [(200_000, 3_000_000), (10_000, 150_000), (1_000, 20_000)], strict=True)}


def response(rng: random.Random, stratum: str, text_share: float) -> dict:
    size = stratum.rsplit("-", 1)[1]
    base = {"小微": 3.6, "中型": 4.0, "大型": 4.3}[size]
    answers: dict = {"Q1": size, "Q2": max(1, min(5, round(rng.gauss(base, 0.9))))}
    if rng.random() < 0.8:
        answers["Q3"] = rng.sample(QUESTIONS[2].options, rng.randint(1, 3))
    if rng.random() < 0.7:
        answers["Q4"] = max(0, min(10, round(rng.gauss(base * 2, 2))))
    if rng.random() < text_share:
        if rng.random() < 0.9:
            answers["Q5"] = rng.choice(TEMPLATES).format(place=rng.choice(PLACES), biz=rng.choice(BIZ))
        else:  # the long tail that resembles nothing else
            answers["Q5"] = "".join(rng.sample(WORDS, 5)) + "的问题"
    return answers


def make_survey(db: Database, title: str, n: int, population: dict[str, int], text_share: float, seed: int) -> int:
    rng = random.Random(seed)
    names = list(population)
    weights = [population[h] ** 0.5 for h in names]  # smaller strata over-sampled, as a stratified design does
    with db.write() as s:
        survey = services.import_questionnaire(session=s, actor=SYSTEM, title=title, questions=QUESTIONS)
        services.publish(session=s, actor=SYSTEM, survey_id=survey.id)
        survey_id = survey.id
        s.execute(insert(SurveyStratumSize), [{"survey_id": survey_id, "stratum": h, "population": k}
                                              for h, k in population.items()])
    with step(f"{n:,} responses inserted in bulk"):
        for start in range(0, n, 20_000):
            with db.write() as s:
                rows = []
                for _ in range(min(20_000, n - start)):
                    h = rng.choices(names, weights)[0]
                    rows.append({"survey_id": survey_id, "answers": response(rng, h, text_share), "stratum": h})
                s.execute(insert(SurveyResponse), rows)
    return survey_id


def timed(label: str, fn):
    start = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - start
    return label, seconds, value


def analyse(db: Database, survey_id: int) -> list[tuple[str, float, object]]:
    """Each part on its own (a fresh read transaction each, as a page would run it), then the whole."""
    parts = []
    with db.read() as s:
        survey = services.get_survey(session=s, actor=SYSTEM, survey_id=survey_id)
        sizes = report.population(s, survey_id)
        read = analysis.Answers(s, survey_id)  # each part below reads (and counts) what it needs
        parts.append(timed("results (counts, means with 95 % CI, NPS)",
                           lambda: analysis.results(session=s, actor=SYSTEM, survey_id=survey_id, read=read)))
        parts.append(timed("weighting (post-stratification, weighted figures)",
                           lambda: report.weighted_results(s, survey, read)))
        parts.append(timed("cross-tab Q2 × Q1 (chi-square, weighted shares)",
                           lambda: crosstabs.crosstab(session=s, actor=SYSTEM, survey_id=survey_id, row_code="Q2",
                                                      col_code="Q1", population=sizes, read=read)))
        parts.append(timed("themes of the free text (clustering)",
                           lambda: themes.compare(report._texts(s, survey, read=read), None)))
    with db.read() as s:
        parts.append(timed("the whole analysis (report.analyse)",
                           lambda: report.analyse(session=s, actor=SYSTEM, survey_id=survey_id, row="Q2", col="Q1",
                                                  with_suggestions=False)))
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--responses", type=int, default=200_000)
    parser.add_argument("--baseline", type=int, default=20_000)
    parser.add_argument("--text-share", type=float, default=0.3, help="share of responses answering the free text")
    args = parser.parse_args()
    configure()
    OUT.mkdir(exist_ok=True)
    path = OUT / "survey_scale.sqlite"
    path.unlink(missing_ok=True)
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    population = strata()
    print(f"{len(population)} strata, population {sum(population.values()):,}; "
          f"{args.text_share:.0%} of responses answer the free-text question")
    baseline = make_survey(db, "基准问卷", args.baseline, population, args.text_share, seed=1)
    big = make_survey(db, "全国纳税人缴费人需求调查", args.responses, population, args.text_share, seed=2)
    themes.compare([(1, TEMPLATES[0]), (2, TEMPLATES[0])], None)  # the tokenizer's dictionary, loaded as a server has it
    small_parts, big_parts = analyse(db, baseline), analyse(db, big)
    print(f"\n{'part':<52} {args.baseline:>10,} {args.responses:>10,}")
    for (label, small, _), (_, seconds, _) in zip(small_parts, big_parts, strict=True):
        print(f"{label:<52} {small:>9.2f}s {seconds:>9.2f}s")
    whole = big_parts[-1][2]
    total = big_parts[-1][1]
    print(f"\nthe whole analysis of {args.responses:,} responses: {total:.1f} s (target < {TARGET:.0f} s: "
          f"{'met' if total < TARGET else 'NOT met'}); baseline {args.baseline:,}: {small_parts[-1][1]:.1f} s")
    print(f"weighting applies: {whole.weighting.applies}, {whole.weighting.weighted:,} responses weighted; "
          f"{len(whole.themes)} themes of {whole.text_answers:,} texts; "
          f"chi-square p = {whole.crosstab.test.p:.3g}" if whole.crosstab and whole.crosstab.test else "")


if __name__ == "__main__":
    main()
