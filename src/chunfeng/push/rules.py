"""Eligibility rules: a small readable language over the registry, type-checked, compiled to SQL with SQLGlot.

    vat_type == "小规模" and monthly_sales <= 10万
    industry in ("C13".."C43") and credit in ("A", "B")
    taxable_income <= 300万 and headcount <= 300 and not individual_business

Grammar (lowest precedence first):

    rule     := or
    or       := and ("or" and)*
    and      := not ("and" not)*
    not      := "not" not | compare
    compare  := sum [("==" | "!=" | "<" | "<=" | ">" | ">=") sum | ["not"] "in" "(" item ("," item)* ")"]
    sum      := product (("+" | "-") product)*
    product  := unary (("*" | "/") unary)*
    unary    := "-" unary | NUMBER | STRING | "true" | "false" | FIELD | "(" rule ")"
    item     := literal [".." literal]

Numbers may carry 万 (10^4) or 亿 (10^8). A string compared with a date field is a date ("2022-01-01").
A rule is bounded so that whatever passes the check also runs on every engine: at most MAX_LENGTH characters,
MAX_DEPTH levels of brackets and `not`, MAX_TERMS operators, MAX_ITEMS list items; numbers within ±MAX_NUMBER
with at most MAX_DECIMALS decimals, dates within DATE_WINDOW, and arithmetic whose worst case stays finite.
Fields of kind `code` are hierarchical (GB/T 4754 industries, region codes): "C13" matches every code
that begins with C13, and a range "C13".."C43" compares the first three characters.

This module is the language: lexer, parser, type check. What a checked rule becomes is in `rule_backends`:
one SQLGlot expression that `sql(dialect)` renders for DuckDB, PostgreSQL or Spark, so one rule text runs
unchanged on each, and a record-by-record Python predicate — the baseline the benchmark compares against,
and an independent check of the SQL in the tests. The syntax tree both share is in `rule_tree`.
"""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Callable

import duckdb
from sqlglot import exp

from chunfeng.errors import Invalid
from chunfeng.push import rule_backends
from chunfeng.push.rule_tree import Binary, FieldRef, InList, Item, Literal, Node, Unary
from chunfeng.push.schema import RULE_REGISTRY, Table

# Far above any real policy (the shipped ones reach 129 characters, 8 operators, 15 items, 1 level), far
# below what overflows Python's recursion or an engine's parser: 140 brackets or 160 `and`s did both.
MAX_LENGTH = 2000
MAX_DEPTH = 20
MAX_TERMS = 50
MAX_ITEMS = 200
MAX_NUMBER = Decimal(10) ** 15
MAX_DECIMALS = 4
DATE_WINDOW = (date(1900, 1, 1), date(2100, 12, 31))
# The largest magnitude an arithmetic expression may reach in the worst case: DOUBLE holds 1e308, so any
# bound under this is exact enough and never overflows on DuckDB, PostgreSQL or Spark.
MAX_MAGNITUDE = 1e100


class RuleError(Invalid, ValueError):
    """A rule that does not parse or type-check; `position` is the 0-based character offset of the fault."""

    def __init__(self, message: str, position: int, rule: str = ""):
        self.message, self.position, self.rule = message, position, rule
        super().__init__(f"第 {position + 1} 个字符处:{message}")

    def pointer(self) -> str:
        """The rule with a caret under the fault, for a terminal or a <pre>."""
        line = self.rule.replace("\n", " ")
        width = sum(2 if ord(c) > 0x2E80 else 1 for c in line[:self.position])
        return f"{line}\n{' ' * width}^"

    def for_terminal(self) -> str:
        return f"{self}\n{self.pointer()}"


# --- lexer --------------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>\d+(?:\.\d+)?(?:万|亿)?)
  | (?P<string>"[^"\n]*"|“[^”\n]*”|'[^'\n]*')
  | (?P<op>==|!=|<=|>=|\.\.|[<>()+\-*/,]|=)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
""", re.VERBOSE)

KEYWORDS = {"and", "or", "not", "in", "true", "false"}


@dataclass(frozen=True)
class Token:
    kind: str  # number, string, op, word, end
    text: str
    pos: int


def tokenize(rule: str) -> list[Token]:
    if len(rule) > MAX_LENGTH:
        raise RuleError(f"规则过长(最多 {MAX_LENGTH} 个字符),请拆分或简化", MAX_LENGTH, rule)
    tokens, pos = [], 0
    while pos < len(rule):
        m = _TOKEN.match(rule, pos)
        if m is None:
            raise RuleError(f"无法识别的字符“{rule[pos]}”", pos, rule)
        if m.lastgroup == "op" and m.group() == "=":
            raise RuleError("比较相等请用“==”", pos, rule)
        if m.lastgroup != "space":
            tokens.append(Token(m.lastgroup, m.group(), pos))
        pos = m.end()
    tokens.append(Token("end", "", len(rule)))
    return tokens


class _Parser:
    def __init__(self, rule: str):
        self.rule, self.tokens, self.i = rule, tokenize(rule), 0
        self.depth = self.terms = self.items = 0

    def enter(self, tok: Token) -> None:
        """One more level of brackets, `not` or minus: the parser recurses on each, so they are bounded."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise RuleError(f"括号或 not 嵌套过深(最多 {MAX_DEPTH} 层)", tok.pos, self.rule)

    def count(self, tok: Token) -> None:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise RuleError(f"条件和运算过多(最多 {MAX_TERMS} 个 and、or、比较或算术运算),请拆分规则", tok.pos, self.rule)

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def take(self, text: str | None = None) -> Token:
        tok = self.tok
        if text is not None and tok.text != text:
            found = f"“{tok.text}”" if tok.text else "规则结尾"
            raise RuleError(f"此处应为“{text}”,却是{found}", tok.pos, self.rule)
        self.i += 1
        return tok

    def at(self, *texts: str) -> bool:
        return self.tok.kind in ("op", "word") and self.tok.text in texts

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise RuleError("规则是空的", 0, self.rule)
        node = self.or_()
        if self.tok.kind != "end":
            raise RuleError(f"多余的“{self.tok.text}”(缺少 and / or?)", self.tok.pos, self.rule)
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.at("or"):
            self.count(self.tok)
            pos = self.take().pos
            node = Binary(pos, "or", node, self.and_())
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.at("and"):
            self.count(self.tok)
            pos = self.take().pos
            node = Binary(pos, "and", node, self.not_())
        return node

    def not_(self) -> Node:
        if self.at("not"):
            self.enter(self.tok)
            pos = self.take().pos
            node = Unary(pos, "not", self.not_())
            self.depth -= 1
            return node
        return self.compare()

    def compare(self) -> Node:
        node = self.sum()
        if self.at("==", "!=", "<", "<=", ">", ">="):
            self.count(self.tok)
            tok = self.take()
            return Binary(tok.pos, tok.text, node, self.sum())
        if self.at("in") or (self.at("not") and self.tokens[self.i + 1].text == "in"):
            pos = self.tok.pos
            self.count(self.tok)
            negated = self.take().text == "not"
            if negated:
                self.take("in")
            self.take("(")
            items = [self.item()]
            while self.at(","):
                self.take()
                if self.at(")"):
                    break
                items.append(self.item())
            self.take(")")
            return InList(pos, node, items, negated)
        return node

    def item(self) -> Item:
        self.items += 1
        if self.items > MAX_ITEMS:
            raise RuleError(f"列表项过多(最多 {MAX_ITEMS} 项)", self.tok.pos, self.rule)
        low = self.literal()
        if self.at(".."):
            self.take()
            return Item(low, self.literal())
        return Item(low)

    def literal(self) -> Literal:
        tok = self.tok
        negative = False
        if self.at("-"):
            self.take()
            negative, tok = True, self.tok
        if tok.kind == "number":
            self.take()
            value = _number(tok.text)
            if abs(value) > MAX_NUMBER:
                raise RuleError("数值超出范围(绝对值最大 1000万亿)", tok.pos, self.rule)
            if value != value.to_integral_value() and -value.normalize().as_tuple().exponent > MAX_DECIMALS:
                raise RuleError(f"数值最多 {MAX_DECIMALS} 位小数", tok.pos, self.rule)
            return Literal(tok.pos, -value if negative else value, "number")
        if tok.kind == "string" and not negative:
            self.take()
            return Literal(tok.pos, tok.text[1:-1], "string")
        if tok.kind == "word" and tok.text in ("true", "false") and not negative:
            self.take()
            return Literal(tok.pos, tok.text == "true", "bool")
        raise RuleError(f"列表中只能写数值、文字或 true/false,不能是“{tok.text or '规则结尾'}”", tok.pos, self.rule)

    def sum(self) -> Node:
        node = self.product()
        while self.at("+", "-"):
            self.count(self.tok)
            tok = self.take()
            node = Binary(tok.pos, tok.text, node, self.product())
        return node

    def product(self) -> Node:
        node = self.unary()
        while self.at("*", "/"):
            self.count(self.tok)
            tok = self.take()
            node = Binary(tok.pos, tok.text, node, self.unary())
        return node

    def unary(self) -> Node:
        tok = self.tok
        if self.at("-"):
            self.enter(tok)
            self.take()
            node = Unary(tok.pos, "-", self.unary())
            self.depth -= 1
            return node
        if self.at("("):
            self.enter(tok)
            self.take()
            node = self.or_()
            self.take(")")
            self.depth -= 1
            return node
        if tok.kind in ("number", "string") or tok.text in ("true", "false"):
            return self.literal()
        if tok.kind == "word" and tok.text not in KEYWORDS:
            self.take()
            return FieldRef(tok.pos, tok.text)
        found = f"“{tok.text}”" if tok.text else "规则结尾"
        raise RuleError(f"此处应为字段、数值或文字,却是{found}", tok.pos, self.rule)


def _number(text: str) -> Decimal:
    scale = {"万": Decimal(10_000), "亿": Decimal(100_000_000)}.get(text[-1], Decimal(1))
    return Decimal(text.rstrip("万亿")) * scale


# --- type check ---------------------------------------------------------------------------------

_KIND = {"number": "number", "int": "number", "string": "string", "enum": "string", "code": "string",
         "bool": "bool", "date": "date"}
_KIND_NAMES = {"number": "数值", "string": "文字", "bool": "真假", "date": "日期"}
_CODE = re.compile(r"[A-Z0-9]+")


class _Checker:
    def __init__(self, rule: str, table: Table):
        self.rule, self.table = rule, table

    def fail(self, message: str, node: Node | Literal) -> RuleError:
        return RuleError(message, node.pos, self.rule)

    def field(self, node: FieldRef):
        f = self.table.get(node.name)
        if f is None:
            close = difflib.get_close_matches(node.name, self.table.names, n=1)
            hint = f",是否要写“{close[0]}”" if close else ""
            raise self.fail(f"未知字段“{node.name}”{hint}(可用字段:{'、'.join(self.table.names)})", node)
        return f

    def type_of(self, node: Node) -> str:
        if isinstance(node, Literal):
            return node.kind
        if isinstance(node, FieldRef):
            return _KIND[self.field(node).kind]
        if isinstance(node, Unary):
            want = "bool" if node.op == "not" else "number"
            self.expect(node.operand, want, f"“{node.op}”")
            return want
        if isinstance(node, InList):
            self.check_items(node)
            return "bool"
        assert isinstance(node, Binary)
        if node.op in ("and", "or"):
            self.expect(node.left, "bool", f"“{node.op}”")
            self.expect(node.right, "bool", f"“{node.op}”")
            return "bool"
        if node.op in "+-*/":
            self.expect(node.left, "number", f"“{node.op}”")
            self.expect(node.right, "number", f"“{node.op}”")
            if node.op == "/" and isinstance(node.right, Literal) and node.right.value == 0:
                raise self.fail("除数不能为 0", node.right)
            if self.magnitude(node)[0] > MAX_MAGNITUDE:
                raise self.fail(f"“{node.op}”的结果可能超出数值范围(如字段连乘),请简化运算", node)
            return "number"
        self.check_comparison(node)
        return "bool"

    def magnitude(self, node: Node) -> tuple[float, float]:
        """Worst-case (largest, smallest non-zero) absolute value of a checked number expression."""
        if isinstance(node, Literal):
            return float(abs(node.value)), float(abs(node.value))
        if isinstance(node, FieldRef):  # DECIMAL(18,2) or INTEGER in the store
            return (2.0 ** 31, 1.0) if self.field(node).kind == "int" else (1e16, 0.01)
        if isinstance(node, Unary):
            return self.magnitude(node.operand)
        (h1, l1), (h2, l2) = self.magnitude(node.left), self.magnitude(node.right)
        if node.op == "*":
            return h1 * h2, l1 * l2
        if node.op == "/":
            return (h1 / l2 if l2 else float("inf")), (l1 / h2 if h2 else 0.0)
        return h1 + h2, 1e-30  # a difference can come arbitrarily close to zero

    def expect(self, node: Node, want: str, where: str) -> None:
        got = self.type_of(node)
        if got != want:
            raise self.fail(f"{where}两边应为{_KIND_NAMES[want]},此处却是{_KIND_NAMES[got]}", node)

    def check_comparison(self, node: Binary) -> None:
        left, right = node.left, node.right
        if isinstance(left, Literal) and isinstance(right, FieldRef):
            left, right = right, left
        if isinstance(left, FieldRef) and isinstance(right, Literal):
            self.check_literal(self.field(left), right, ordered=node.op not in ("==", "!="))
            return
        lt, rt = self.type_of(left), self.type_of(right)
        if lt != rt:
            raise self.fail(f"“{node.op}”两边类型不同:{_KIND_NAMES[lt]}与{_KIND_NAMES[rt]}", node)
        if node.op not in ("==", "!=") and lt == "bool":
            raise self.fail(f"真假值不能用“{node.op}”比较大小", node)

    def check_literal(self, f, lit: Literal, *, ordered: bool) -> None:
        kind = _KIND[f.kind]
        if f.kind == "date":
            if lit.kind != "string" or not _is_date(lit.value):
                raise self.fail(f"字段“{f.name}”是日期,应写成 \"2022-01-01\" 的形式", lit)
            if not DATE_WINDOW[0] <= date.fromisoformat(lit.value) <= DATE_WINDOW[1]:
                raise self.fail(f"日期应在 {DATE_WINDOW[0]} 至 {DATE_WINDOW[1]} 之间", lit)
            return
        if lit.kind != kind:
            raise self.fail(f"字段“{f.name}”是{_KIND_NAMES[kind]},不能与{_KIND_NAMES[lit.kind]} {_show(lit)} 比较", lit)
        if ordered and kind == "bool":
            raise self.fail(f"真假字段“{f.name}”不能比较大小", lit)
        if f.kind == "enum" and not ordered and lit.value not in f.values:
            raise self.fail(f"字段“{f.name}”没有取值“{lit.value}”(可取:{'、'.join(f.values)})", lit)
        if f.kind == "code" and not _CODE.fullmatch(lit.value):
            raise self.fail(f"代码“{lit.value}”只能由大写字母和数字组成", lit)

    def check_items(self, node: InList) -> None:
        if not isinstance(node.operand, FieldRef):
            raise self.fail("“in”的左边应为字段", node.operand)
        f = self.field(node.operand)
        for item in node.items:
            self.check_literal(f, item.low, ordered=item.high is not None)
            if item.high is None:
                continue
            self.check_literal(f, item.high, ordered=True)
            if f.kind in ("bool", "enum"):
                raise self.fail(f"字段“{f.name}”不能用区间", item.low)
            if f.kind == "code" and len(item.low.value) != len(item.high.value):
                raise self.fail("代码区间两端应同样长,如 \"C13\"..\"C43\"", item.low)
            if _sort_key(f, item.low) > _sort_key(f, item.high):
                raise self.fail(f"区间 {_show(item.low)}..{_show(item.high)} 的下限大于上限", item.low)


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


def _show(lit: Literal) -> str:
    return f"\"{lit.value}\"" if lit.kind == "string" else str(lit.value).lower()


def _sort_key(f, lit: Literal):
    return date.fromisoformat(lit.value) if f.kind == "date" else lit.value


# --- compiled rule ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    text: str
    tree: Node
    table: Table

    @property
    def fields(self) -> list[str]:
        """The registry fields the rule reads, in order of first use."""
        seen: list[str] = []

        def walk(node):
            if isinstance(node, FieldRef) and node.name not in seen:
                seen.append(node.name)
            for child in (getattr(node, "operand", None), getattr(node, "left", None), getattr(node, "right", None)):
                if child is not None:
                    walk(child)
        walk(self.tree)
        return seen

    def expression(self, table_alias: str | None = None) -> exp.Expression:
        return rule_backends.sql_expression(self.tree, self.table, table_alias)

    def sql(self, dialect: str = "duckdb", table_alias: str | None = None) -> str:
        return self.expression(table_alias).sql(dialect=dialect)

    def predicate(self) -> Callable[[dict], bool]:
        """The rule as a Python function of one registry record (a dict), as record-by-record engines run it."""
        return rule_backends.predicate(self.tree, self.table)


def parse(text: str, table: Table = RULE_REGISTRY) -> Rule:
    """Parse and type-check `text`; RuleError names the fault and where it is."""
    tree = _Parser(text).parse()
    checker = _Checker(text, table)
    kind = checker.type_of(tree)
    if kind != "bool":
        raise RuleError(f"规则的结果应为真假,此处却是{_KIND_NAMES[kind]}(缺少比较?)", tree.pos, text)
    return Rule(text, tree, table)


log = logging.getLogger(__name__)


def check(text: str, table: Table = RULE_REGISTRY) -> Rule:
    """`parse`, then compile and plan the rule on an empty store: what must pass before a rule is saved on a
    policy or a campaign, so that a saved rule never fails the scheduled run."""
    rule = parse(text, table)
    try:
        rule_backends.explain(rule.expression(), table)
    except (duckdb.Error, RecursionError) as exc:
        log.warning("rule refused by the engine: %s: %s", text[:200], exc)
        raise RuleError("规则无法在数据引擎上执行,请简化运算或检查数值范围", 0, text) from None
    return rule
