"""What a checked rule becomes: a SQLGlot expression (rendered for DuckDB, PostgreSQL or Spark) and a
record-by-record Python predicate, from the same tree."""

from __future__ import annotations

from datetime import date
from typing import Any, Callable

import duckdb
import sqlglot
from sqlglot import exp

from chunfeng.push.rule_tree import Binary, FieldRef, InList, Literal, Node, Unary
from chunfeng.push.schema import TABLES, Table


def sql_expression(tree: Node, table: Table, alias: str | None = None) -> exp.Expression:
    return _Compiler(table, alias).compile(tree)


def predicate(tree: Node, table: Table) -> Callable[[dict], bool]:
    return _python(tree, table)


class _Compiler:
    def __init__(self, table: Table, alias: str | None):
        self.table, self.alias = table, alias

    def column(self, name: str) -> exp.Column:
        return exp.column(name, table=self.alias, quoted=True)

    def literal(self, lit: Literal, f=None) -> exp.Expression:
        if f is not None and f.kind == "date":
            return exp.cast(exp.Literal.string(lit.value), exp.DataType.Type.DATE)
        if lit.kind == "number":
            return exp.Literal.number(format(lit.value, "f"))
        if lit.kind == "bool":
            return exp.true() if lit.value else exp.false()
        return exp.Literal.string(lit.value)

    def compile(self, node: Node) -> exp.Expression:
        if isinstance(node, Literal):
            return self.literal(node)
        if isinstance(node, FieldRef):
            return self.column(node.name)
        if isinstance(node, Unary):
            inner = self.compile(node.operand)
            return exp.not_(exp.paren(inner)) if node.op == "not" else exp.Neg(this=exp.paren(inner))
        if isinstance(node, InList):
            return self.in_list(node)
        assert isinstance(node, Binary)
        if node.op in ("and", "or"):
            build = exp.and_ if node.op == "and" else exp.or_
            return exp.paren(build(self.compile(node.left), self.compile(node.right)))
        if node.op in "+-*/":
            # In DOUBLE: PostgreSQL divides integers as integers (the rule means real division), and a product
            # of DECIMAL(18,2) columns overflows DuckDB's DECIMAL(38) at run time; the type check bounds the
            # worst case far inside DOUBLE's range.
            left, right = (exp.cast(self.compile(n), exp.DataType.Type.DOUBLE) for n in (node.left, node.right))
            cls = {"+": exp.Add, "-": exp.Sub, "*": exp.Mul, "/": exp.Div}[node.op]
            return exp.paren(cls(this=left, expression=right))
        return self.comparison(node)

    def comparison(self, node: Binary) -> exp.Expression:
        left, right, op = node.left, node.right, node.op
        if isinstance(left, Literal) and isinstance(right, FieldRef):
            left, right, op = right, left, {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
        f = self.table.get(left.name) if isinstance(left, FieldRef) else None
        if f is not None and f.kind == "code" and isinstance(right, Literal) and op in ("==", "!="):
            match = self.code_match(f.name, right.value)
            return exp.not_(match) if op == "!=" else match
        lhs = self.compile(left)
        rhs = self.literal(right, f) if isinstance(right, Literal) else self.compile(right)
        if f is not None and f.kind == "code" and isinstance(right, Literal):
            lhs = self.prefix(f.name, len(right.value))
        cls = {"==": exp.EQ, "!=": exp.NEQ, "<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE}[op]
        return cls(this=lhs, expression=rhs)

    def prefix(self, name: str, length: int) -> exp.Expression:
        return exp.Substring(this=self.column(name), start=exp.Literal.number(1), length=exp.Literal.number(length))

    def code_match(self, name: str, code: str) -> exp.Expression:
        return exp.EQ(this=self.prefix(name, len(code)), expression=exp.Literal.string(code))

    def in_list(self, node: InList) -> exp.Expression:
        f = self.table.get(node.operand.name)
        column = self.column(f.name)
        plain = [i.low for i in node.items if i.high is None]
        parts: list[exp.Expression] = []
        if plain and f.kind == "code":
            parts += [self.code_match(f.name, lit.value) for lit in plain]
        elif plain:
            parts.append(exp.In(this=column, expressions=[self.literal(lit, f) for lit in plain]))
        for item in (i for i in node.items if i.high is not None):
            subject = self.prefix(f.name, len(item.low.value)) if f.kind == "code" else column
            parts.append(exp.Between(this=subject, low=self.literal(item.low, f), high=self.literal(item.high, f)))
        test = exp.paren(exp.or_(*parts)) if len(parts) > 1 else parts[0]
        return exp.not_(test) if node.negated else test


def explain(condition: exp.Expression, table: Table) -> None:
    """Plan `SELECT … WHERE condition` on an empty DuckDB with the store's schema: binder errors, constants
    that do not fit a type and the like surface here, before a rule is saved, not in a campaign's run.
    Raises duckdb.Error."""
    with duckdb.connect() as conn:
        for t in {**TABLES, table.name: table}.values():
            columns = ", ".join(f'"{f.name}" {f.duck_type}' for f in t.fields)
            conn.execute(f'CREATE TABLE "{t.name}" ({columns})')
        conn.execute(f'EXPLAIN SELECT count(*) FROM "{table.name}" WHERE {condition.sql(dialect="duckdb")}')
        conn.execute(f'SELECT count(*) FROM "{table.name}" WHERE {condition.sql(dialect="duckdb")}')


def transpile(sql: str, *, read: str = "duckdb", write: str) -> str:
    return sqlglot.transpile(sql, read=read, write=write)[0]


# --- record by record ---------------------------------------------------------------------------

def _python(node: Node, table: Table) -> Callable[[dict], Any]:
    """A closure tree over one record: what interpreting rule engines do for each taxpayer."""
    if isinstance(node, Literal):
        value = float(node.value) if node.kind == "number" else node.value
        return lambda r: value
    if isinstance(node, FieldRef):
        name = node.name
        return lambda r: r[name]
    if isinstance(node, Unary):
        inner = _python(node.operand, table)
        return (lambda r: not inner(r)) if node.op == "not" else (lambda r: -inner(r))
    if isinstance(node, InList):
        f = table.get(node.operand.name)
        get = _python(node.operand, table)
        tests = []
        for item in node.items:
            low = _value(item.low, f)
            if item.high is None:
                tests.append((lambda v, c=low: v.startswith(c)) if f.kind == "code" else (lambda v, c=low: v == c))
            else:
                high = _value(item.high, f)
                if f.kind == "code":
                    tests.append(lambda v, lo=low, hi=high: lo <= v[:len(lo)] <= hi)
                else:
                    tests.append(lambda v, lo=low, hi=high: lo <= v <= hi)
        negated = node.negated
        return lambda r: any(t(get(r)) for t in tests) != negated
    assert isinstance(node, Binary)
    left, right = node.left, node.right
    op = node.op
    if isinstance(left, Literal) and isinstance(right, FieldRef):
        left, right, op = right, left, {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
    f = table.get(left.name) if isinstance(left, FieldRef) else None
    lf = _python(left, table)
    if f is not None and isinstance(right, Literal):
        value = _value(right, f)
        rf = lambda r: value  # noqa: E731
        if f.kind == "code":
            n = len(value)
            inner = lf
            lf = lambda r: inner(r)[:n]  # noqa: E731
    else:
        rf = _python(right, table)
    ops = {
        "and": lambda r: lf(r) and rf(r), "or": lambda r: lf(r) or rf(r),
        "==": lambda r: lf(r) == rf(r), "!=": lambda r: lf(r) != rf(r),
        "<": lambda r: lf(r) < rf(r), "<=": lambda r: lf(r) <= rf(r),
        ">": lambda r: lf(r) > rf(r), ">=": lambda r: lf(r) >= rf(r),
        "+": lambda r: lf(r) + rf(r), "-": lambda r: lf(r) - rf(r),
        "*": lambda r: lf(r) * rf(r), "/": lambda r: lf(r) / rf(r),
    }
    return ops[op]


def _value(lit: Literal, f) -> Any:
    if f.kind == "date":
        return date.fromisoformat(lit.value)
    return float(lit.value) if lit.kind == "number" else lit.value
