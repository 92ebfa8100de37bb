"""The survey domain's errors: kinds of the one family in chunfeng.errors."""

from __future__ import annotations

from chunfeng.errors import ChunfengError, Conflict, Invalid, NotFound


class SurveyError(ChunfengError):
    pass


class SurveyInvalid(SurveyError, Invalid):
    pass


class SurveyNotFound(SurveyError, NotFound):
    pass


class SurveyConflict(SurveyError, Conflict):
    pass


class QuestionInvalid(SurveyInvalid):
    """A question typed on the builder page is refused: each problem with the field it is about in `by_field`,
    [(field, message)], for the form to show beside its fields (web/forms.py)."""

    def __init__(self, message: str, by_field: list[tuple[str, str]]):
        super().__init__(message)
        self.by_field = list(by_field)
