"""One page of a list: every list in Chunfeng paginates the same way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[T]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


def clamp_page(page: int, per_page: int, *, max_per_page: int = 200) -> tuple[int, int]:
    return max(1, page), min(max(1, per_page), max_per_page)
