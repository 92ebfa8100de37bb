"""Errors of the ledger. Messages are Chinese: officials read them as they are."""

from chunfeng.errors import ChunfengError, Conflict, Invalid, NotFound


class LedgerError(ChunfengError):
    """Base of the ledger errors. `field` names the form field the message belongs beside, where there is one, so
    that a form can show it there and keep what was typed."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


class LedgerNotFound(LedgerError, NotFound):
    pass


class LedgerInvalid(LedgerError, Invalid):
    """Bad input or a state that does not allow the operation; names what is wrong. `field` names the form field
    it is about, so that a page can show the message beside it."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


class StaleReport(LedgerError, Conflict):
    """Someone else saved the report since it was read: optimistic locking refused to overwrite it."""

    title = "内容已被他人修改"
