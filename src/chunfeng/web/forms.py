"""A refused form is shown again, never a bare error page: the page it was on, each message beside the field it is
about (the error's `field`), and what was typed kept. The routes of every domain refuse their forms through here;
the templates show them with the macros of `_forms.html`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from chunfeng.errors import ChunfengError, Forbidden
from chunfeng.org import audit


def form_errors(db, request: Request, user, exc: ChunfengError, default_field: str = "form",
                fields: tuple[str, ...] | None = None) -> dict[str, str]:
    """A refusal of a form, as {field: message} for the form to show beside the field (`default_field` for one
    that names none, or one not in `fields`, the form's own). The form is shown again with what was typed, so a
    refused access is recorded here, as the error page would have done."""
    if isinstance(exc, Forbidden):
        audit.record_denied(db, actor=user, object_type="route", object_id=f"{request.method} {request.url.path}",
                            reason=str(exc))
    name = getattr(exc, "field", None) or default_field
    return {name if fields is None or name in fields else default_field: str(exc)}


@dataclass(frozen=True)
class Refused:
    """One form of a page, refused: which form, what was typed, the messages by field, the status to answer."""

    form: str
    values: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    status: int = 400

    def of(self, form: str) -> dict[str, str]:
        """The messages, if this is the refused form (a page holds several)."""
        return self.errors if form == self.form else {}


def refused(db, request: Request, user, exc: ChunfengError, *, form: str, values: dict[str, Any],
            fields: tuple[str, ...], default_field: str = "form") -> Refused:
    return Refused(form, values, form_errors(db, request, user, exc, default_field, fields), exc.status)
