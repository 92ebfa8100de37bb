"""Themes of free text: answers (or direct reports) grouped by the appeals' clustering, and rising themes against an
earlier survey.

The grouping is the appeals analysis's own (`appeals.analysis._recurring`: TF-IDF over character pairs, leader
clustering, a representative text and top terms per cluster), not a copy: each text goes in as an item whose `kind`
says where it came from (this survey or the earlier one, or a report's field), so a cluster's `kinds` counts them.
Clustering the two surveys' texts together is what makes their themes comparable: a theme of this survey is the
same cluster as the earlier one's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from chunfeng.appeals.analysis import Cluster, _recurring

THRESHOLD = 0.5  # the appeals analysis's default cosine
CURRENT, PREVIOUS = "current", "previous"


class Item(NamedTuple):
    """One text as the clustering takes it (the shape of an appeal's row)."""

    id: int
    kind: str
    text: str
    measures: list


def clusters(items: list[Item], *, limit: int = 200, threshold: float = THRESHOLD) -> list[Cluster]:
    """The clusters of two or more texts, largest first."""
    items = [i for i in items if i.text and i.text.strip()]
    if not items:
        return []
    return _recurring(items, threshold, limit)[0]


@dataclass
class Theme:
    label: str  # the representative text
    terms: list[str]
    current: int  # texts of this survey in the theme
    previous: int  # texts of the earlier survey in it
    share: float  # % of this survey's texts
    previous_share: float | None  # % of the earlier survey's texts; None without an earlier survey
    response_ids: list[int] = field(default_factory=list)  # this survey's responses in it (the first ten)
    suggested: list[int] = field(default_factory=list)  # measures the consultation's retrieval proposes
    measures: list[int] = field(default_factory=list)  # measures an official linked
    theme_id: int | None = None  # the stored link, once made

    @property
    def rise(self) -> float | None:
        """Percentage points gained against the earlier survey."""
        return None if self.previous_share is None else self.share - self.previous_share


def compare(current: list[tuple[int, str]], previous: list[tuple[int, str]] | None, *, limit: int = 30,
            threshold: float = THRESHOLD) -> list[Theme]:
    """Themes of `current` ((response id, text) pairs), each with its share there and in `previous` (None: no
    earlier survey to compare with). Only themes holding at least one current text are listed, biggest first."""
    items = [Item(i, CURRENT, t, []) for i, t in current] + [Item(-1, PREVIOUS, t, []) for _, t in previous or []]
    n_now, n_before = sum(1 for _, t in current if t.strip()), sum(1 for _, t in previous or [] if t.strip())
    themes = []
    for c in clusters(items, threshold=threshold):
        now, before = c.kinds.get(CURRENT, 0), c.kinds.get(PREVIOUS, 0)
        if not now:
            continue
        themes.append(Theme(c.representative[:200], c.terms, now, before, 100 * now / n_now,
                            None if previous is None else (100 * before / n_before if n_before else 0.0),
                            [i for i in c.item_ids if i >= 0]))
    themes.sort(key=lambda t: (-t.current, t.label))
    return themes[:limit]


def rising(themes: list[Theme]) -> list[Theme]:
    """Themes whose share grew against the earlier survey, the biggest gain first."""
    return sorted((t for t in themes if t.rise is not None and t.rise > 0), key=lambda t: (-t.rise, t.label))
