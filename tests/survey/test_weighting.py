"""Weighting back to the population, cross-tabs and the chi-square test, with numbers worked by hand (and the
p-values checked against scipy where the test environment has it)."""

from __future__ import annotations

import math

import pytest

from chunfeng.survey import crosstabs, weighting

POPULATION = {"大型": 1000, "小型": 3000}
# 大型: 5, 4, 3 (mean 4, s² = 1); 小型: 2, 2, 4, 4 (mean 3, s² = 4/3).
VALUES = [5, 4, 3, 2, 2, 4, 4]
STRATA = ["大型"] * 3 + ["小型"] * 4


def test_post_stratification_weights_each_response_by_the_population_it_stands_for():
    w = weighting.post_stratify(POPULATION | {"微型": 500}, STRATA + [None, "个体"])
    assert [(s.name, s.population, s.responses, s.weight) for s in w.strata] == [
        ("大型", 1000, 3, 1000 / 3), ("小型", 3000, 4, 750.0), ("微型", 500, 0, None)]
    assert (w.applies, w.weighted, w.unstratified, w.unknown, w.uncovered) == (True, 7, 1, {"个体": 1}, ["微型"])


def test_the_weighted_mean_and_its_interval_are_the_stratified_ones():
    e = weighting.estimate(VALUES, STRATA, POPULATION)
    assert e.mean == pytest.approx(0.25 * 4 + 0.75 * 3)  # 3.25, where the unweighted mean is 24/7 = 3.43
    variance = 0.25 ** 2 * (1 - 3 / 1000) * 1 / 3 + 0.75 ** 2 * (1 - 4 / 3000) * (4 / 3) / 4
    half = 2.571 * math.sqrt(variance)  # t with 7 − 2 = 5 degrees of freedom
    assert (e.low, e.high) == (pytest.approx(3.25 - half), pytest.approx(3.25 + half))
    assert (e.n, e.strata) == (7, 2)
    assert weighting.estimate([5, 2, 4], ["大型", "小型", "小型"], POPULATION).low is None  # 大型 has one answer


def test_weighted_shares_count_each_stratum_in_the_population_proportion():
    answers = ["是", "是", "否", "否", "否", "否", "是"]
    got = weighting.shares(answers, STRATA, POPULATION, ["是", "否"])
    # 大型: 2 of 3 say 是 → 2 × 1000/3; 小型: 1 of 4 → 750; of 4000 in all.
    assert [(c, round(units, 6)) for c, units, _ in got] == [("是", round(2000 / 3 + 750, 6)), ("否", round(1000 / 3 + 2250, 6))]
    assert [round(s, 4) for _, _, s in got] == [round(100 * (2000 / 3 + 750) / 4000, 4), round(100 * (1000 / 3 + 2250) / 4000, 4)]
    multi = weighting.shares([["甲", "乙"], ["甲"]], ["大型", "小型"], POPULATION, ["甲", "乙"])
    assert [round(s, 2) for _, _, s in multi] == [100.0, 25.0]


def test_sizes_that_cannot_be_right_leave_the_results_unweighted_with_the_reason():
    w = weighting.post_stratify({"大型": 2}, ["大型"] * 3)
    assert not w.applies and "多于其总体数 2" in w.problem
    assert not weighting.post_stratify({}, [None, None]).applies


def test_chi_square_on_a_table_worked_by_hand():
    # Expected counts 15, 15 / 15, 15; χ² = 4 × 5² / 15 = 6.667 with 1 degree of freedom.
    test = crosstabs.chi_square([[20, 10], [10, 20]])
    assert test.statistic == pytest.approx(20 / 3) and test.df == 1
    assert test.p == pytest.approx(math.erfc(math.sqrt(10 / 3)))  # P(χ²₁ ≥ x) = erfc(√(x/2)): 0.009823
    assert round(test.p, 6) == 0.009823 and not test.sparse
    assert crosstabs.chi_square([[3, 0], [4, 0]]) is None  # one column answered: nothing to test


@pytest.mark.parametrize("x,df", [(0.5, 1), (3.84, 1), (5.99, 2), (7.0, 3), (11.07, 5), (30.0, 20), (100.0, 77), (2.0, 40)])
def test_the_closed_form_tail_matches_scipy(x, df):
    stats = pytest.importorskip("scipy.stats")
    assert crosstabs.chi2_sf(x, df) == pytest.approx(float(stats.chi2.sf(x, df)), rel=1e-9, abs=1e-15)


def test_the_test_matches_scipy_chi2_contingency_on_a_larger_table():
    stats = pytest.importorskip("scipy.stats")
    table = [[12, 5, 9, 4], [7, 14, 3, 10], [2, 6, 11, 8]]
    ours = crosstabs.chi_square(table)
    statistic, p, df, _ = stats.chi2_contingency(table, correction=False)
    assert (ours.statistic, ours.p, ours.df) == (pytest.approx(statistic), pytest.approx(p), df)


def test_crosstab_counts_and_row_shares():
    counts = crosstabs.tabulate([("是", "5"), ("是", "4"), ("否", "1"), ("是", "5"), ("否", "9")], ["是", "否"],
                                [str(n) for n in range(1, 6)])
    assert counts == [[0, 0, 0, 1, 2], [1, 0, 0, 0, 0]]  # 9 is no answer of a 1–5 scale
    shares = crosstabs.weighted_row_shares([("是", "5", "大型"), ("是", "4", "小型"), ("是", "4", "小型")], ["是"], ["4", "5"],
                                           POPULATION)
    assert [round(x, 2) for x in shares[0]] == [75.0, 25.0]  # 小型's 3000 against 大型's 1000
