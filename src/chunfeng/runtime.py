"""The process-wide state the settings decide, set once by each entry point.

Most settings travel as parameters from the entry point to the service that needs them. Three cannot: the SM4 data
key behind the `Encrypted` column type, the holidays file behind every working-day count, and the signed audit head
that every write transaction appends to. The app factory, the CLI and the test fixtures call `configure`; a use
before that raises instead of quietly reading the environment.
"""

from __future__ import annotations

from chunfeng import crypto, workdays
from chunfeng.org import audit
from chunfeng.settings import Settings


def configure(settings: Settings) -> None:
    crypto.configure(settings.effective_data_key)
    workdays.configure(settings.holidays_file)
    audit.configure(settings.audit_head_path)
