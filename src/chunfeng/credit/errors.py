"""Errors of the credit domain. Messages are Chinese: they are shown as they are."""

from chunfeng.errors import ChunfengError, Invalid, NotFound


class CreditError(ChunfengError):
    pass


class CreditNotFound(CreditError, NotFound):
    pass


class CreditInvalid(CreditError, Invalid):
    """Bad input or a change the entry's state does not allow; names what is wrong."""
