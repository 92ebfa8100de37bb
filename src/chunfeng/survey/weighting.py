"""Results weighted back to the population: post-stratification over the strata a sample was drawn from.

Each estimate is the strata's own estimates added up in the population's proportions, ȳ = Σ_h W_h·ȳ_h with
W_h = N_h / Σ N_h over the strata that answered, so a stratum sampled at twice the rate counts no more for it; a
response carries the weight N_h / n_h (the population it stands for). The variance of the mean is the stratified
one, Σ_h W_h²·(1 − n_h/N_h)·s_h²/n_h, and the 95 % interval uses Student's t with n − H degrees of freedom.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from chunfeng.survey.analysis import t975


@dataclass(frozen=True)
class Stratum:
    name: str
    population: int  # N_h, from the sampling frame
    responses: int  # n_h

    @property
    def weight(self) -> float | None:
        """The population one response of this stratum stands for."""
        return self.population / self.responses if self.responses else None


@dataclass
class Weighting:
    """How a survey's responses weight back to its population, or why they do not (`problem`)."""

    strata: list[Stratum]  # every stratum with a population size, in name order
    unstratified: int = 0  # responses carrying no stratum: not in the weighted figures
    unknown: dict[str, int] = field(default_factory=dict)  # responses of strata with no population size
    problem: str = ""  # set when the sizes cannot be right: the figures are then unweighted

    @property
    def applies(self) -> bool:
        return not self.problem and any(s.responses for s in self.strata)

    @property
    def weighted(self) -> int:
        return sum(s.responses for s in self.strata)

    @property
    def uncovered(self) -> list[str]:
        """Strata of the population no response came from: the weighted figures do not speak for them."""
        return [s.name for s in self.strata if not s.responses]

    def population_of(self) -> dict[str, int]:
        return {s.name: s.population for s in self.strata}


def post_stratify(population: Mapping[str, int], strata: Sequence[str | None]) -> Weighting:
    """The weighting of responses whose strata are `strata` (one per response, None for none) to a population of
    `population[h]` units in stratum h."""
    counts: dict[str, int] = {}
    for h in strata:
        if h is not None:
            counts[h] = counts.get(h, 0) + 1
    w = Weighting([Stratum(h, int(n), counts.get(h, 0)) for h, n in sorted(population.items())],
                  unstratified=sum(1 for h in strata if h is None),
                  unknown={h: n for h, n in sorted(counts.items()) if h not in population})
    if bad := [s for s in w.strata if s.population <= 0]:
        w.problem = f"层“{bad[0].name}”的总体数为 {bad[0].population},应为正整数"
    elif over := [s for s in w.strata if s.responses > s.population]:
        w.problem = (f"层“{over[0].name}”的答卷 {over[0].responses} 份,多于其总体数 {over[0].population}:"
                     "总体数有误,请核对抽样框")
    return w


@dataclass(frozen=True)
class Estimate:
    mean: float
    low: float | None  # the 95 % interval; None when a stratum has a single answer (its variance is unknown)
    high: float | None
    n: int
    strata: int  # strata that answered


def estimate(values: Sequence[float], strata: Sequence[str], population: Mapping[str, int]) -> Estimate | None:
    """The post-stratified mean of `values` (the answers of responses in `strata`, those of strata without a
    population size left out) with its 95 % interval."""
    groups: dict[str, list[float]] = {}
    for v, h in zip(values, strata, strict=True):
        if h in population:
            groups.setdefault(h, []).append(float(v))
    if not groups:
        return None
    total = sum(population[h] for h in groups)
    mean, variance, exact = 0.0, 0.0, True
    for h, ys in groups.items():
        share, n_h = population[h] / total, len(ys)
        m_h = sum(ys) / n_h
        mean += share * m_h
        if n_h < 2:
            exact = False
            continue
        s2 = sum((y - m_h) ** 2 for y in ys) / (n_h - 1)
        variance += share ** 2 * max(0.0, 1 - n_h / population[h]) * s2 / n_h
    n, k = sum(len(ys) for ys in groups.values()), len(groups)
    if not exact or n - k < 1:
        return Estimate(mean, None, None, n, k)
    half = t975(n - k) * math.sqrt(variance)
    return Estimate(mean, mean - half, mean + half, n, k)


def shares(answers: Sequence[object], strata: Sequence[str], population: Mapping[str, int],
           choices: Sequence[str]) -> list[tuple[str, float, float]]:
    """Each choice's weighted share of those answering, in %, with the population it stands for:
    [(choice, estimated units, %)]. A multiple-choice answer (a list) counts for each option picked."""
    picked = [{str(x) for x in a} if isinstance(a, list) else {str(a)} for a in answers]
    answered = [h for h in strata if h in population]
    if not answered:
        return [(c, 0.0, 0.0) for c in choices]
    groups: dict[str, int] = {}
    for h in answered:
        groups[h] = groups.get(h, 0) + 1
    covered = sum(population[h] for h in groups)
    units = dict.fromkeys(choices, 0.0)
    for p, h in zip(picked, strata, strict=True):  # one pass over the answers, not one per choice
        if h in population:
            weight = population[h] / groups[h]
            for c in p:
                if c in units:
                    units[c] += weight
    return [(c, units[c], 100 * units[c] / covered) for c in choices]
