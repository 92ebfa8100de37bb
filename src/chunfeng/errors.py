"""The one family of domain errors: each carries the HTTP status it answers with and a message for people
(Chinese, shown as it is). Every domain's errors derive from these kinds; the web app maps the family to a page
or a JSON body in one exception handler, and the CLI to a red message and exit status 1 in one place.

A domain error's kind decides its status: `NotFound` 404, `Forbidden` 403, `Invalid` 400, `Conflict` 409. A
domain's own base class (`LedgerError`, …) sets no status of its own, so a kind mixed in after it decides:
`class LedgerNotFound(LedgerError, NotFound)` answers 404.
"""

from __future__ import annotations


class ChunfengError(Exception):
    """Base of every error Chunfeng refuses something with. Raise a kind, not this."""

    status = 400
    title = "无法处理"  # the heading of the error page
    field: str | None = None  # the form field the message belongs beside, where there is one (web/forms.py)

    def __init__(self, *args, field: str | None = None):
        super().__init__(*args)
        if field is not None:
            self.field = field

    def for_terminal(self) -> str:
        """What the CLI prints: the message, plus whatever only a terminal can show (a rule's caret)."""
        return str(self)


class Invalid(ChunfengError):
    """Bad input, or a move the object's state does not allow; the message names what is wrong."""


class ValidationFailed(Invalid):
    """Bad input; `problems` lists each, naming the row and field where there is one."""

    def __init__(self, message: str, problems: list[str] | None = None, *, field: str | None = None):
        self.problems = problems or []
        super().__init__(message if not self.problems else message + "\n" + "\n".join(self.problems), field=field)


class NotFound(ChunfengError):
    status = 404
    title = "未找到"


class Forbidden(ChunfengError):
    """The user may not do this, or not to this object. The web records each refusal in the audit log."""

    status = 403
    title = "无权访问"


class Conflict(ChunfengError):
    """The object is no longer in the state the action needs: someone else changed it first."""

    status = 409
    title = "状态已变化"


class Unauthenticated(ChunfengError):
    status = 401
    title = "请先登录"


class ServerFault(ChunfengError):
    """Not the user's doing (a wrong key configured, a damaged value): a 500 that still says what is wrong."""

    status = 500
    title = "服务器错误"
