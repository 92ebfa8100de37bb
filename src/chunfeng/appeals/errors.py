"""Errors of the appeals domain. Messages are Chinese: they are shown as they are."""

from chunfeng.errors import ChunfengError, Invalid, NotFound


class AppealError(ChunfengError):
    pass


class AppealNotFound(AppealError, NotFound):
    pass


class AppealInvalid(AppealError, Invalid):
    """Bad input or a move the item's state does not allow; names what is wrong. An item refused for several
    problems carries each with its field in `by_field`, [(field, message)], for the form and the API to name."""

    def __init__(self, *args, field: str | None = None, by_field: list[tuple[str, str]] = ()):
        super().__init__(*args, field=field)
        self.by_field = list(by_field)
