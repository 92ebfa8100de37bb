"""Cross-tabulation of two questions: counts, row shares, and Pearson's chi-square test of independence.

The p-value is the chi-square distribution's upper tail, in closed form for whole degrees of freedom (an incomplete
gamma function of integer or half-integer shape is a finite series): scipy, which would give it, is not part of
the application's install (it left it for size, see the README's figures); the tests check these values against
`scipy.stats.chi2_contingency` where the test environment has it. No continuity correction is applied.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from chunfeng.org.access import Actor
from chunfeng.survey.analysis import Answers
from chunfeng.survey.errors import SurveyInvalid
from chunfeng.survey.models import KINDS, SurveyQuestion
from chunfeng.survey.services import get_survey

CROSSABLE = ("single", "scale", "nps")


def chi2_sf(x: float, df: int) -> float:
    """P(X >= x) for X ~ chi-square with `df` degrees of freedom (df >= 1)."""
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    if x <= 0:
        return 1.0
    half = x / 2
    if df % 2 == 0:  # Q(k, x/2) = e^{-x/2} Σ_{i<k} (x/2)^i / i!, k = df/2
        terms = (math.exp(-half + i * math.log(half) - math.lgamma(i + 1)) for i in range(df // 2))
        return min(1.0, math.fsum(terms))
    # Q(k + 1/2, x/2) = erfc(√(x/2)) + e^{-x/2} Σ_{i=1..k} (x/2)^{i-1/2} / Γ(i + 1/2)
    terms = (math.exp(-half + (i - 0.5) * math.log(half) - math.lgamma(i + 0.5)) for i in range(1, (df - 1) // 2 + 1))
    return min(1.0, math.erfc(math.sqrt(half)) + math.fsum(terms))


@dataclass(frozen=True)
class ChiSquare:
    statistic: float
    df: int
    p: float
    sparse: bool  # more than a fifth of the expected counts under 5: the approximation is rough


def chi_square(counts: Sequence[Sequence[int]]) -> ChiSquare | None:
    """Pearson's test on a table of counts, over its non-empty rows and columns; None when fewer than two of
    either remain (nothing to test)."""
    rows = [list(r) for r in counts if sum(r)]
    cols = [j for j in range(len(rows[0]) if rows else 0) if any(r[j] for r in rows)]
    if len(rows) < 2 or len(cols) < 2:
        return None
    table = [[r[j] for j in cols] for r in rows]
    row_totals = [sum(r) for r in table]
    col_totals = [sum(r[j] for r in table) for j in range(len(cols))]
    total = sum(row_totals)
    statistic, small = 0.0, 0
    for i, r in enumerate(table):
        for j, observed in enumerate(r):
            expected = row_totals[i] * col_totals[j] / total
            statistic += (observed - expected) ** 2 / expected
            small += expected < 5
    df = (len(rows) - 1) * (len(cols) - 1)
    return ChiSquare(statistic, df, chi2_sf(statistic, df), small > 0.2 * len(rows) * len(cols))


@dataclass
class Crosstab:
    row: SurveyQuestion
    col: SurveyQuestion
    rows: list[str]
    cols: list[str]
    counts: list[list[int]]
    test: ChiSquare | None
    weighted_shares: list[list[float]] | None = None  # row shares weighted to the population, when weighting applies

    @property
    def row_totals(self) -> list[int]:
        return [sum(r) for r in self.counts]

    @property
    def col_totals(self) -> list[int]:
        return [sum(r[j] for r in self.counts) for j in range(len(self.cols))]

    @property
    def total(self) -> int:
        return sum(self.row_totals)

    @property
    def row_shares(self) -> list[list[float]]:
        """Each cell as % of its row."""
        return [[100 * k / t if t else 0.0 for k in r] for r, t in zip(self.counts, self.row_totals, strict=True)]


def tabulate(pairs: Sequence[tuple[object, object]], rows: Sequence[str], cols: Sequence[str]) -> list[list[int]]:
    index_r, index_c = {c: i for i, c in enumerate(rows)}, {c: j for j, c in enumerate(cols)}
    counts = [[0] * len(cols) for _ in rows]
    for a, b in pairs:
        i, j = index_r.get(str(a)), index_c.get(str(b))
        if i is not None and j is not None:
            counts[i][j] += 1
    return counts


def weighted_row_shares(triples: Sequence[tuple[object, object, str | None]], rows: Sequence[str], cols: Sequence[str],
                        population: Mapping[str, int]) -> list[list[float]]:
    """Row shares with each response weighted by N_h / n_h (n_h: the stratum's responses answering both)."""
    n: dict[str, int] = {}
    for _, _, h in triples:
        if h in population:
            n[h] = n.get(h, 0) + 1
    sums = [[0.0] * len(cols) for _ in rows]
    index_r, index_c = {c: i for i, c in enumerate(rows)}, {c: j for j, c in enumerate(cols)}
    for a, b, h in triples:
        i, j = index_r.get(str(a)), index_c.get(str(b))
        if h in population and i is not None and j is not None:
            sums[i][j] += population[h] / n[h]
    return [[100 * v / sum(r) if sum(r) else 0.0 for v in r] for r in sums]


def crosstab(*, session: Session, actor: Actor, survey_id: int, row_code: str, col_code: str,
             population: Mapping[str, int] | None = None, read: Answers | None = None) -> Crosstab:
    """The responses answering both questions, by the row question's answer and the column question's; with
    `population` (the strata sizes, when weighting applies) also the weighted row shares. `read`: the survey's
    answers, shared with the other parts of an analysis."""
    survey = get_survey(session=session, actor=actor, survey_id=survey_id)
    questions = {q.code: q for q in survey.items}  # a matrix's rows by their own codes
    picked = []
    for code in (row_code, col_code):
        q = questions.get(code)
        if q is None:
            raise SurveyInvalid(f"题号“{code[:20]}”不是这份问卷的题")
        if q.kind not in CROSSABLE:
            raise SurveyInvalid(f"题 {code} 是{KINDS[q.kind]}题:交叉表只用单选、量表和推荐度题(每人一个答案)")
        picked.append(q)
    if row_code == col_code:
        raise SurveyInvalid("请选择两道不同的题")
    row, col = picked
    read = read if read is not None else Answers(session, survey.id)
    triples = [(a, b, h) for a, b, h, k in read.grouped(row.code, col.code) for _ in range(k)]
    counts = tabulate([(a, b) for a, b, _ in triples], row.choices, col.choices)
    result = Crosstab(row, col, list(row.choices), list(col.choices), counts, chi_square(counts))
    if population:
        result.weighted_shares = weighted_row_shares(triples, row.choices, col.choices, population)
    return result
