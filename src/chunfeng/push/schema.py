"""The shape of a taxpayer extract: four tables, their columns, and the registry fields rules may use.

An extract of the core tax system arrives as four files per table name (CSV, Parquet or xlsx):
`registry`, `contacts`, `claims`, `filings`. Every column is required and non-null, so a rule means the
same on every engine (SQL's NULL logic and Python's would otherwise differ on a missing value).

A claim's `amount` is the tax and fees reduced or exempted (减免税费额) under the policy in that period, in yuan, as
the return or the relief register records it: what the taxpayer did not pay, never the sales, income or deduction
the relief was computed on, and never negative (a correction is a new extract, not a negative row). For a policy
whose kind (push/data/policies.json) is a deferral (延缓缴纳) it is the tax and fees deferred, which are still owed;
for a timing policy (a deduction taken earlier, such as the one-off deduction of equipment) it is the tax the
earlier deduction moved to later years. The dividend bill shows those apart and adds up reductions only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# GB 32100-2015: the 31 characters a unified social credit code may use (no I, O, S, V, Z) and the
# weights 3^i mod 31 of its first 17 positions.
CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

VAT_TYPES = ("一般纳税人", "小规模")
SIZES = ("大型", "中型", "小型", "微型")
CREDIT_RATINGS = ("A", "B", "M", "C", "D")
CONTACT_ROLES = ("法定代表人", "财务负责人", "办税人员")
CHANNELS = ("inapp", "sms", "email", "wecom", "dingtalk", "feishu", "webhook")
CHANNEL_NAMES = {"inapp": "站内消息", "sms": "短信", "email": "电子邮件", "wecom": "企业微信", "dingtalk": "钉钉",
                 "feishu": "飞书", "webhook": "Webhook"}


@dataclass(frozen=True)
class Field:
    """A column. `kind` is number, int, string, code (hierarchical: "C13" covers "C1371"), enum, bool or date."""

    name: str
    kind: str
    label: str
    values: tuple[str, ...] = ()
    sql_type: str = ""
    non_negative: bool = False

    @property
    def duck_type(self) -> str:
        return self.sql_type or {"number": "DECIMAL(18,2)", "int": "INTEGER", "bool": "BOOLEAN",
                                 "date": "DATE"}.get(self.kind, "VARCHAR")


@dataclass(frozen=True)
class Table:
    name: str
    label: str
    fields: tuple[Field, ...]
    key: tuple[str, ...] = field(default=())

    def get(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


REGISTRY = Table("registry", "登记信息", (
    Field("credit_code", "string", "统一社会信用代码"),
    Field("name", "string", "纳税人名称"),
    Field("region", "code", "行政区划代码"),
    Field("industry", "code", "行业代码(GB/T 4754)"),
    Field("vat_type", "enum", "增值税纳税人类型", VAT_TYPES),
    Field("size", "enum", "企业规模", SIZES),
    Field("headcount", "int", "从业人数"),
    Field("total_assets", "number", "资产总额(元)"),
    Field("annual_revenue", "number", "年营业收入(元)"),
    Field("monthly_sales", "number", "月均销售额(元)"),
    Field("taxable_income", "number", "年应纳税所得额(元)"),
    Field("rd_expense", "number", "年研发费用(元)"),
    Field("vat_credit", "number", "增值税期末留抵税额(元)"),
    Field("credit", "enum", "纳税信用级别", CREDIT_RATINGS),
    Field("high_tech", "bool", "高新技术企业"),
    Field("tech_sme", "bool", "科技型中小企业"),
    Field("exporter", "bool", "出口企业"),
    Field("manufacturing", "bool", "制造业企业"),
    Field("individual_business", "bool", "个体工商户"),
    Field("registered", "date", "登记日期"),
), key=("credit_code",))

CONTACTS = Table("contacts", "联系人", (
    Field("credit_code", "string", "统一社会信用代码"),
    Field("role", "enum", "身份", CONTACT_ROLES),
    Field("person", "string", "姓名"),
    Field("channel", "enum", "渠道", CHANNELS),
    Field("address", "string", "地址(手机号、邮箱或账号)"),
    Field("opted_out", "bool", "已退订"),
), key=("credit_code", "role", "channel"))

CLAIMS = Table("claims", "享受优惠", (
    Field("credit_code", "string", "统一社会信用代码"),
    Field("policy", "string", "政策编号"),
    Field("period", "string", "所属期(2022、2022Q2 或 2022-06)"),
    Field("amount", "number", "减免税费额(元)", non_negative=True),
), key=("credit_code", "policy", "period"))

FILINGS = Table("filings", "申报记录", (
    Field("credit_code", "string", "统一社会信用代码"),
    Field("return_type", "string", "申报表"),
    Field("period", "string", "所属期"),
    Field("filed_on", "date", "申报日期"),
), key=("credit_code", "return_type", "period"))

TABLES = {t.name: t for t in (REGISTRY, CONTACTS, CLAIMS, FILINGS)}

# Fields a rule may name beyond the extract's columns: the credit register's view of a taxpayer (credit domain,
# measure 115), joined onto the registry by `store.connect_store` from the levels file the register publishes.
# Never null, so a rule means the same on every engine: without a register entry the extract's level stands.
CREDIT_LEVELS_FILE_SUFFIX = ".credit.parquet"
# The taxpayers changed since that file was written (one evaluation, one repair), read over it until the next one.
CREDIT_CHANGES_FILE_SUFFIX = ".credit-changes.parquet"
# The latest repair application's state in the credit domain's words (credit.models.REPAIR_STATES), or 无.
REPAIR_STATUSES = ("无", "待核定", "已修复", "不予修复")
OVERLAY = (
    Field("credit_level", "enum", "纳税缴费信用级别(信用登记最新年度;未登记的取登记信息中的级别)", CREDIT_RATINGS),
    Field("credit_year", "int", "信用登记最新评价年度(未登记为 0)"),
    Field("credit_repair", "enum", "最近一次信用修复申请的状态(无申请为“无”)", REPAIR_STATUSES),
)
# What rules are checked against and run over: the registry and its overlay.
RULE_REGISTRY = Table("registry", REGISTRY.label, REGISTRY.fields + OVERLAY, key=REGISTRY.key)
RULE_TABLES = {**TABLES, "registry": RULE_REGISTRY}


def credit_code_check_char(first17: str) -> str:
    """The 18th character GB 32100 demands of these 17; KeyError if one of them is not in the alphabet."""
    total = sum(CREDIT_CODE_ALPHABET.index(c) * w for c, w in zip(first17, CREDIT_CODE_WEIGHTS, strict=True))
    return CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def credit_code_problem(code: str) -> str | None:
    """Why `code` is not a valid unified social credit code, or None when it is."""
    if len(code) != 18:
        return f"应为 18 位,实为 {len(code)} 位"
    bad = [c for c in code if c not in CREDIT_CODE_ALPHABET]
    if bad:
        return f"含有不允许的字符“{bad[0]}”(不使用 I、O、S、V、Z 和小写字母)"
    expected = credit_code_check_char(code[:17])
    if code[17] != expected:
        return f"校验码应为“{expected}”,实为“{code[17]}”"
    return None
