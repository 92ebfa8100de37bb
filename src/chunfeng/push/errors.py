"""Errors of the push domain. Messages are Chinese: they are shown as they are."""

from chunfeng.errors import ChunfengError, Invalid, NotFound
from chunfeng.push.rules import RuleError  # noqa: F401  (part of the family: a rule that does not check)


class PushError(ChunfengError):
    pass


class PushNotFound(PushError, NotFound):
    pass


class PushInvalid(PushError, Invalid):
    """Bad input other than an extract: a policy, a campaign, a period."""


class EngineFailed(PushError, Invalid):
    """A query the data engine refused at run time (an overflow, a division by zero on PostgreSQL, …)."""

    def __init__(self, detail: str):
        self.detail = detail
        super().__init__("数据引擎执行规则时出错,请检查规则的运算和数值范围,或联系管理员")


class ExtractInvalid(PushError, Invalid):
    """An extract that cannot be imported; `problems` names each file, row and field at fault."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("纳税人数据未导入,发现以下问题:\n" + "\n".join(problems))
