"""Errors of the appeals domain. Messages are Chinese: they are shown as they are."""


class AppealError(Exception):
    pass


class AppealNotFound(AppealError):
    pass


class AppealInvalid(AppealError):
    """Bad input or a move the item's state does not allow; names what is wrong."""
