"""Every download the site answers goes out through one of the responses here: a file written for the one
download (deleted once sent), a stored upload (always an attachment, never rendered), a document made for the
request (a PDF). Lists that hold taxpayers' or submitters' personal information each need a stated purpose, and
each is recorded in the audit log with that purpose, the filters and the number of rows (PIPL)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import quote

from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from chunfeng.db import Database
from chunfeng.errors import ValidationFailed
from chunfeng.org import audit
from chunfeng.xlsx import download_path, write_table

PURPOSE_LENGTH = (4, 200)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def temporary_file(path: Path, filename: str, media_type: str | None = None) -> FileResponse:
    """A file written for this one download (`xlsx.download_path`), removed once it has been sent."""
    return FileResponse(path, filename=filename, media_type=media_type,
                        background=BackgroundTask(path.unlink, missing_ok=True))


def stored_file(path: Path, filename: str, media_type: str) -> FileResponse:
    """A stored upload: always a download with the type checked at upload, never rendered by the browser."""
    return FileResponse(path, filename=filename, media_type=media_type, content_disposition_type="attachment")


def document(data: bytes, filename: str, media_type: str = "application/pdf") -> Response:
    """A document made for this request (a PDF), as a download under `filename`."""
    return Response(data, media_type=media_type,
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"})


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
    return temporary_file(path, filename, XLSX)
