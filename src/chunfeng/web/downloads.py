"""Downloads of lists that hold taxpayers' or submitters' personal information: each needs a stated purpose,
and each is recorded in the audit log with that purpose, the filters and the number of rows (PIPL)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from chunfeng.db import Database
from chunfeng.org import audit
from chunfeng.org.errors import ValidationFailed
from chunfeng.xlsx import download_path, write_table

PURPOSE_LENGTH = (4, 200)


def checked_purpose(purpose: str) -> str:
    purpose = " ".join((purpose or "").split())
    low, high = PURPOSE_LENGTH
    if not low <= len(purpose) <= high:
        raise ValidationFailed(f"导出含个人信息的清单须写明用途({low}–{high} 字),如“核实第三季度应享未享名单”")
    return purpose


def personal_xlsx(db: Database, user, *, action: str, purpose: str, filters: dict, filename: str, sheet: str,
                  headers: Sequence[str], rows: Iterable[Sequence], widths: Sequence[int] | None = None) -> FileResponse:
    """`purpose` must already have passed `checked_purpose` — before any data was read."""
    count = 0

    def counted():
        nonlocal count
        for row in rows:
            count += 1
            yield row

    path = write_table(download_path(), sheet=sheet, headers=headers, rows=counted(), widths=widths)
    with db.write() as session:
        audit.record(session, actor=user, action=action, object_type="xlsx", object_id=filename[:100],
                     after={"purpose": purpose, "filters": filters, "rows": count})
    return FileResponse(path, filename=filename, background=BackgroundTask(path.unlink, missing_ok=True),
                        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
