"""The file store: uploaded files (report evidence, complaint attachments) checked by content, kept once under
their SHA-256 outside the web root, and written only when the transaction that references them commits.

One home for every domain that keeps a file: a refused or rolled-back upload leaves nothing behind but, at worst,
a file no row references, which `collect_orphans` (`chunfeng collect-files`) removes.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import time
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.orm import Session

TYPES = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpg": "image/jpeg",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ofd": "application/ofd",
}


EXPORTS = "exports"  # the folder of the store a task writes its export to, for a day at most: never backed up
_DIGEST = re.compile(r"[0-9a-f]{64}")


def sniff(data: bytes) -> str | None:
    """The file's real type from its bytes, or None when it is not one of the accepted kinds."""
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith(b"PK\x03\x04"):
        try:
            names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
        except zipfile.BadZipFile:
            return None
        if "word/document.xml" in names:
            return "docx"
        if "xl/workbook.xml" in names:
            return "xlsx"
        if "OFD.xml" in names:
            return "ofd"
    return None


def safe_name(filename: str, kind: str) -> str:
    stem = re.sub(r"[^\w\u4e00-\u9fff.()（）-]+", "_", Path(filename or "evidence").stem).strip("._") or "evidence"
    return f"{stem[:80]}.{kind}"


def stored_path(store: Path, digest: str) -> Path:
    return store / digest[:2] / digest


def store_bytes(store: Path, data: bytes) -> str:
    """Keep `data` once under its SHA-256 (shared by evidence and complaint attachments); the digest."""
    digest = hashlib.sha256(data).hexdigest()
    path = stored_path(store, digest)
    if path.exists():
        path.touch()  # fresh again: the orphan collector leaves young files alone while their rows commit
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(path)  # never a half-written file under the final name
    return digest


def store_after_commit(session: Session, store: Path, data: bytes) -> str:
    """The digest `data` is kept under once the session's transaction commits, and only then: a refused or
    rolled-back change leaves no file behind."""
    event.listen(session, "after_commit", lambda _session: store_bytes(store, data), once=True)
    return hashlib.sha256(data).hexdigest()


def collect_orphans(store: Path, referenced: set[str], *, older_than: timedelta = timedelta(hours=1),
                    now: datetime | None = None) -> list[Path]:
    """Remove stored files (and half-written .part files) no row references, once older than `older_than`
    (younger ones may belong to a transaction about to commit); the paths removed."""
    cutoff = (now or datetime.now()).timestamp() - older_than.total_seconds()
    removed = []
    if not store.is_dir():
        return removed
    for path in store.rglob("*"):
        name = path.name.removesuffix(".part")
        if not path.is_file() or path.is_symlink() or not _DIGEST.fullmatch(name) or path.parent.name != name[:2]:
            continue
        if (path.suffix == ".part" or name not in referenced) and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


# --- files a task wrote for its starter -----------------------------------------------------------------------
# Each in a folder of its own under the data dir named by the run's id (the file keeps the name it is downloaded
# under); removed once fetched, and swept after EXPORT_KEEP if nobody fetched it: a taxpayer list is personal data.

EXPORT_KEEP = timedelta(hours=24)  # a task's file nobody fetched by then is removed (by the `files.exports` job)


def exports_folder(data_dir: str | Path) -> Path:
    return Path(data_dir) / EXPORTS


def task_file_path(data_dir: str | Path, run_id: int, filename: str) -> Path:
    folder = exports_folder(data_dir) / str(int(run_id))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / Path(filename.replace("/", "_").replace("\\", "_")).name


def staged_upload(data_dir: str | Path, digest: str) -> Path:
    """Where an upload waits between its preview and its confirmation (a sample's list), by its SHA-256: in the
    exports folder, so `sweep_task_files` removes one never confirmed; the confirmation discards it."""
    if not _DIGEST.fullmatch(digest):
        raise ValueError("not a SHA-256 digest")
    return exports_folder(data_dir) / f"upload-{digest}" / "upload"


def discard_task_file(data_dir: str | Path, run_id: int) -> None:
    shutil.rmtree(exports_folder(data_dir) / str(int(run_id)), ignore_errors=True)


def sweep_task_files(data_dir: str | Path, keep: timedelta = EXPORT_KEEP) -> int:
    """Remove the task files older than `keep` that nobody fetched; returns how many."""
    root, cutoff, removed = exports_folder(data_dir), time.time() - keep.total_seconds(), 0
    for folder in root.iterdir() if root.is_dir() else ():
        if folder.is_dir() and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def upload_problem(filename: str, data: bytes, max_bytes: int) -> str | None:
    """Why an uploaded file is refused — empty, over `max_bytes`, or not an accepted type by its content — in
    words naming the file; None when it may be kept. Each domain raises it as its own error."""
    if not data:
        return f"{filename}:文件为空"
    if len(data) > max_bytes:
        return f"{filename}:文件 {len(data) / 1048576:.1f} MB,超过上限 {max_bytes // 1048576} MB"
    if sniff(data) is None:
        return f"{filename}:不是允许的文件类型(按内容识别);可上传 {'、'.join(TYPES).upper()}"
    return None
