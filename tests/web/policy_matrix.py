"""The object-permission matrix shared by the domains' policy tests: for each actor × object × action, the
page offers the action exactly when the service allows it, and both agree with the table the test states.

The page is fetched as the actor over the real HTTP server; the service is called as the actor on the real
database in a transaction that is then rolled back, so every cell starts from the same data; every refused
cell is then also posted over HTTP, where it must answer the service's 4xx and change nothing.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from sqlalchemy.orm import Session

from chunfeng.db import Database
from chunfeng.org.errors import Forbidden
from chunfeng.org.models import User
from tests.conftest import csrf_from, login, person


@dataclass
class Cell:
    who: str
    page: str                                # where the action is offered
    action: str                              # the form's target: offered means a form posting there
    call: Callable[[Session, User], object]  # the service doing it, as the actor
    form: dict = field(default_factory=dict)  # what the page's form posts
    name: str = ""  # the action's name in the table, when several share one target (default: the target)
    marker: str = ""  # what in the page shows it offered (default: a form posting to the target)

    @property
    def key(self) -> tuple[str, str]:
        return self.who, self.name or self.action

    def offered(self, page: str) -> bool:
        return (self.marker or f'action="{self.action}"') in page


class _Undo(Exception):
    pass


def service_refusal(db: Database, cell: Cell, errors: tuple[type[Exception], ...]) -> Exception | None:
    """What the service says to `cell.who` doing `cell.call`: None when it goes through (then undone)."""
    try:
        with db.write() as session:
            cell.call(session, person(session, cell.who))
            raise _Undo
    except _Undo:
        return None
    except (Forbidden, *errors) as exc:
        return exc


def check(db: Database, server: str, cells: list[Cell], expected: set[tuple[str, str]],
          errors: tuple[type[Exception], ...], snapshot: Callable[[Database], object]) -> None:
    clients: dict[str, httpx.Client] = {}
    pages: dict[tuple[str, str], str] = {}
    wrong, refused = [], []
    for cell in cells:
        client = clients.get(cell.who) or clients.setdefault(cell.who, login(server, cell.who))
        if (cell.who, cell.page) not in pages:
            answer = client.get(cell.page)
            assert answer.status_code in (200, 403), (cell.who, cell.page, answer.status_code)
            pages[cell.who, cell.page] = answer.text if answer.status_code == 200 else ""
        shown = cell.offered(pages[cell.who, cell.page])
        refusal = service_refusal(db, cell, errors)
        allowed, meant = refusal is None, cell.key in expected
        if not (shown == allowed == meant):
            wrong.append(f"{cell.who} {cell.name or cell.action}: page {'offers' if shown else 'hides'}, service "
                         f"{'allows' if allowed else f'refuses ({refusal})'}, table says {'yes' if meant else 'no'}")
        if refusal is not None:
            refused.append((cell, refusal))
    assert not wrong, "\n".join(wrong)

    before = snapshot(db)
    for cell, refusal in refused:
        client = clients[cell.who]
        token = csrf_from(pages[cell.who, cell.page] or client.get("/password").text)
        answer = client.post(cell.action, data={"csrf_token": token, **cell.form})
        status = 403 if isinstance(refusal, Forbidden) else 400
        assert answer.status_code == status, (cell.who, cell.action, answer.status_code, answer.text[:300])
        if status == 400:  # a refusal by state: the service's own reason, in Chinese
            assert str(refusal) in html.unescape(answer.text), (cell.who, cell.action, str(refusal))
    assert snapshot(db) == before, "a refused action changed something"
