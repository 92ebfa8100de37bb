"""Every download the site answers goes out through one of the responses here: a file written for the one
download (deleted once sent), a stored upload (always an attachment, never rendered), a document made for the
request (a PDF), a file a task wrote for the user who started it (a large export, fetched from its run's page). Lists that hold taxpayers' or submitters' personal information each need a stated purpose, and
each is recorded in the audit log with that purpose, the filters and the number of rows (PIPL)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import quote

from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from chunfeng.db import Database
from chunfeng.errors import NotFound, ValidationFailed
from chunfeng.files import EXPORT_KEEP, discard_task_file, exports_folder
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
    path = download_path()
    write_personal_xlsx(db, user, path, action=action, purpose=purpose, filters=filters, filename=filename,
                        sheet=sheet, headers=headers, rows=rows, widths=widths)
    return temporary_file(path, filename, XLSX)


def write_personal_xlsx(db: Database, user, path: Path, *, action: str, purpose: str, filters: dict, filename: str,
                        sheet: str, headers: Sequence[str], rows: Iterable[Sequence],
                        widths: Sequence[int] | None = None) -> int:
    """Write a personal list to `path` and record it in the audit log (purpose, filters, rows); returns the rows.
    `purpose` must already have passed `checked_purpose` — before any data was read (or any task started)."""
    count = 0

    def counted():
        nonlocal count
        for row in rows:
            count += 1
            yield row

    write_table(path, sheet=sheet, headers=headers, rows=counted(), widths=widths)
    with db.write() as session:
        audit.record(session, actor=user, action=action, object_type="xlsx", object_id=filename[:100],
                     after={"purpose": purpose, "filters": filters, "rows": count})
    return count


# --- files a task wrote for its starter (kept by `files.task_file_path`) ---------------------------------------
# Only the run's page links to it, and only its starter may fetch it (web/jobs.py).

def task_file(data_dir: str | Path, run_id: int) -> FileResponse:
    """The file run `run_id` wrote, as a download; removed once sent (personal data is not kept longer than needed)."""
    folder = exports_folder(data_dir) / str(int(run_id))
    found = sorted(folder.iterdir()) if folder.is_dir() else []
    if not found:
        raise NotFound(f"任务 {run_id} 的文件已下载过或已过期(只保存 {int(EXPORT_KEEP.total_seconds() // 3600)} 小时),"
                       "请重新导出")
    return FileResponse(found[0], filename=found[0].name, media_type=XLSX,
                        background=BackgroundTask(discard_task_file, data_dir, run_id))
