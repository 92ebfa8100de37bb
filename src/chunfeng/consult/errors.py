"""Errors of the consultation domain. Messages are Chinese: they are shown as they are."""


class ConsultError(Exception):
    pass


class ConsultNotFound(ConsultError):
    pass


class ConsultInvalid(ConsultError):
    """Bad input; names the file, row and field where there is one."""


class ConsultConflict(ConsultError):
    """The object is no longer in the state the action needs (a hand-off already answered, an answer already rated)."""
