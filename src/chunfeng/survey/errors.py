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
