"""Errors of the plan domain. Messages are Chinese: officials read them as they are."""


class PlanError(Exception):
    """Base of the plan errors."""


class NoticeError(PlanError):
    """The notice cannot be read, or does not agree with itself."""


class PlanExists(PlanError):
    """The same notice (by document number) is already imported."""


class PlanNotFound(PlanError):
    pass
