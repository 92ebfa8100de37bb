"""Errors of the organisation domain. Messages are Chinese: they are shown to officials as they are."""


class OrgError(Exception):
    """Base of the org errors."""


class NotFound(OrgError):
    pass


class Forbidden(OrgError):
    """The user may not do this, or not to this unit."""


class ValidationFailed(OrgError):
    """Bad input; `problems` lists each, naming the row and field where there is one."""

    def __init__(self, message: str, problems: list[str] | None = None):
        self.problems = problems or []
        super().__init__(message if not self.problems else message + "\n" + "\n".join(self.problems))


class AuthenticationFailed(OrgError):
    pass
