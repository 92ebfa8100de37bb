"""Errors of the ledger. Messages are Chinese: officials read them as they are."""


class LedgerError(Exception):
    """Base of the ledger errors."""


class LedgerNotFound(LedgerError):
    pass


class LedgerInvalid(LedgerError):
    """Bad input or a state that does not allow the operation; names what is wrong."""


class StaleReport(LedgerError):
    """Someone else saved the report since it was read: optimistic locking refused to overwrite it."""
