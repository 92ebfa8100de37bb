"""Errors of the consultation domain. Messages are Chinese: they are shown as they are."""

from chunfeng.errors import ChunfengError, Conflict, Invalid, NotFound


class ConsultError(ChunfengError):
    pass


class ConsultNotFound(ConsultError, NotFound):
    pass


class ConsultInvalid(ConsultError, Invalid):
    """Bad input; names the file, row and field where there is one."""


class ConsultConflict(ConsultError, Conflict):
    """The object is no longer in the state the action needs (a hand-off already answered, an answer already rated)."""
