"""The syntax tree of an eligibility rule: what the parser in `rules` builds and `rule_backends` compiles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Node:
    pos: int


@dataclass
class Literal(Node):
    value: Any  # Decimal, str, bool
    kind: str  # number, string, bool


@dataclass
class FieldRef(Node):
    name: str


@dataclass
class Unary(Node):
    op: str  # not, -
    operand: Node


@dataclass
class Binary(Node):
    op: str  # and or == != < <= > >= + - * /
    left: Node
    right: Node


@dataclass
class Item:
    low: Literal
    high: Literal | None = None


@dataclass
class InList(Node):
    operand: Node
    items: list[Item]
    negated: bool
