"""Errors of the ledger. Messages are Chinese: officials read them as they are."""

from chunfeng.errors import ChunfengError, Conflict, Invalid, NotFound


class LedgerError(ChunfengError):
    """Base of the ledger errors. `field` (of every Chunfeng error) names the form field the message belongs
    beside, where there is one, so that a form can show it there and keep what was typed."""


class LedgerNotFound(LedgerError, NotFound):
    pass


class LedgerInvalid(LedgerError, Invalid):
    """Bad input or a state that does not allow the operation; names what is wrong."""


class StaleReport(LedgerError, Conflict):
    """Someone else saved the report since it was read: optimistic locking refused to overwrite it."""

    title = "内容已被他人修改"
