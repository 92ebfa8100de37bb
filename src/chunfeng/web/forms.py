"""A refused form is shown again, never a bare error page: the page it was on, each message beside the field it is
about (the error's `field`), and what was typed kept. The routes of every domain refuse their forms through here;
the templates show them with the macros of `_forms.html`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request

from chunfeng.errors import ChunfengError, Forbidden
from chunfeng.org import audit


def form_errors(db, request: Request, user, exc: ChunfengError, default_field: str = "form",
                fields: tuple[str, ...] | None = None) -> dict[str, str]:
    """A refusal of a form, as {field: message} for the form to show beside the field (`default_field` for one
    that names none, or one not in `fields`, the form's own; one message per field an error's `by_field` names). The form is shown again with what was typed, so a
    refused access is recorded here, as the error page would have done."""
    if isinstance(exc, Forbidden):
        audit.record_denied(db, actor=user, object_type="route", object_id=f"{request.method} {request.url.path}",
                            reason=str(exc))
    # An error listing several problems by field (`by_field`) shows each beside its own; messages for one field join.
    problems = getattr(exc, "by_field", None) or [(getattr(exc, "field", None), str(exc))]
    errors: dict[str, str] = {}
    for name, message in problems:
        name = name if name and (fields is None or name in fields) else default_field
        errors[name] = f"{errors[name]};{message}" if name in errors else message
    return errors


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


def invalid_parameters(request: Request, errors) -> tuple[str, str | None]:
    """A form field FastAPI refused by its type (a word in a number field) as a message for people, naming the field
    by its label (the parameter's `title`, e.g. `Form(title="年度")`), and the page to go back to: the form's own
    page when the browser came from this site (the Referer), else None."""
    labels = {}
    route = request.scope.get("route")
    pending = [route.dependant] if getattr(route, "dependant", None) is not None else []
    while pending:  # the endpoint's parameters and its dependencies'
        dependant = pending.pop()
        pending += dependant.dependencies
        for param in dependant.body_params + dependant.query_params + dependant.path_params:
            labels[param.alias] = param.field_info.title or param.alias
    problems = []
    for e in errors:
        name = str(e["loc"][-1]) if len(e["loc"]) > 1 else str(e["loc"][0])
        label = labels.get(name, name)
        kind, ctx = e.get("type", ""), e.get("ctx") or {}
        if kind == "missing":
            problems.append(f"请填写“{label}”")
        elif kind in ("int_parsing", "int_from_float", "float_parsing"):
            problems.append(f"“{label}”应为数字,而不是“{str(e.get('input', ''))[:40]}”")
        elif kind in ("greater_than_equal", "greater_than"):
            problems.append(f"“{label}”应不小于 {ctx.get('ge', ctx.get('gt'))}")
        elif kind in ("less_than_equal", "less_than"):
            problems.append(f"“{label}”应不大于 {ctx.get('le', ctx.get('lt'))}")
        else:
            problems.append(f"“{label}”无效")
    referer = urlsplit(request.headers.get("referer", ""))
    same_site = referer.netloc == request.url.netloc and referer.scheme in ("http", "https")
    back = (referer.path + (f"?{referer.query}" if referer.query else "")) if same_site and referer.path else None
    return ";".join(dict.fromkeys(problems)), back
