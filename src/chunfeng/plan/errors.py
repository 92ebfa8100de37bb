"""Errors of the plan domain. Messages are Chinese: officials read them as they are."""

from chunfeng.errors import ChunfengError, Invalid, NotFound


class PlanError(ChunfengError):
    """Base of the plan errors."""


class NoticeError(PlanError, Invalid):
    """The notice cannot be read, or does not agree with itself."""


class PlanExists(PlanError, Invalid):
    """The same notice (by document number) is already imported."""


class PlanNotFound(PlanError, NotFound):
    pass
