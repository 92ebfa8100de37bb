"""What a request may carry and what the JSON API answers, declared where the OpenAPI schema
(/api/openapi.json) shows it; tests/web/test_openapi_fuzz.py holds the application to it.

Numbers a request names — ids, measure and page numbers — are bounded to what the database holds: every id
and number column is an INTEGER, 32 bits on PostgreSQL. A larger number names nothing; unbounded, it reached
the database and failed there (SQLite cannot even bind one beyond 64 bits) with a 500. Bounded, the answer is
400 naming the parameter (`参数无效:page`), before the route runs.

The JSON API (/api/...) answers an error as `{"detail": "..."}`: 400 for a parameter or content it refuses
(the application answers FastAPI's validation errors with 400, not 422), 429 when rate-limited.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Path, Query
from pydantic import BaseModel, ConfigDict

INT_MAX = 2**31 - 1  # PostgreSQL's INTEGER

Id = Annotated[int, Path(ge=1, le=INT_MAX)]  # an id or number in the URL's path
FormId = Annotated[int, Form(ge=1, le=INT_MAX)]  # the same, sent in a form
PageNo = Annotated[int, Query(ge=1, le=INT_MAX)]  # which page of a list, from 1
OptionalNo = Annotated[int | None, Query(ge=1, le=INT_MAX)]  # a number in the query string, if any


class ApiError(BaseModel):
    model_config = ConfigDict(extra="forbid")
    detail: str


API_ERRORS: dict[int | str, dict] = {
    400: {"model": ApiError, "description": "参数或内容无效"},
    429: {"model": ApiError, "description": "请求过于频繁"},
}
