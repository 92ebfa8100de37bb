"""Errors of the appeals domain. Messages are Chinese: they are shown as they are."""

from chunfeng.errors import ChunfengError, Invalid, NotFound


class AppealError(ChunfengError):
    pass


class AppealNotFound(AppealError, NotFound):
    pass


class AppealInvalid(AppealError, Invalid):
    """Bad input or a move the item's state does not allow; names what is wrong."""
