"""Errors of the organisation domain. Messages are Chinese: they are shown to officials as they are."""

from chunfeng import errors
from chunfeng.errors import ValidationFailed  # noqa: F401  (the base layer's: bounds and the database raise it too)


class OrgError(errors.ChunfengError):
    """Base of the org errors."""


class NotFound(OrgError, errors.NotFound):
    pass


class Forbidden(OrgError, errors.Forbidden):
    """The user may not do this, or not to this unit."""


class AuthenticationFailed(OrgError, errors.Unauthenticated):
    pass
