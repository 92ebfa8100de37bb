"""Errors of the consultation domain. Messages are Chinese: they are shown as they are."""


class ConsultError(Exception):
    pass


class ConsultNotFound(ConsultError):
    pass


class ConsultInvalid(ConsultError):
    """Bad input; names the file, row and field where there is one."""
