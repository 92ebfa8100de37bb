"""The open link of a published questionnaire as a QR code, drawn on the server with segno (pure Python: no image
library, no network), for the survey page, a download (SVG or PNG) and a service hall's printable A4 poster."""

from __future__ import annotations

import io

import segno

from chunfeng.survey.errors import SurveyInvalid
from chunfeng.survey.models import STATES, Survey

FORMATS = {"svg": "image/svg+xml", "png": "image/png"}


def open_link(survey: Survey, base_url: str) -> str:
    """The public address of the questionnaire's open link; refused while it has none or no longer takes answers."""
    if survey.state != "published" or not survey.link:
        raise SurveyInvalid(f"问卷第 {survey.version} 版当前为“{STATES[survey.state]}”,发布中的问卷才有公开链接和二维码")
    return f"{base_url.rstrip('/')}/s/{survey.link}"


def qr(url: str, *, kind: str, scale: int = 10) -> bytes:
    """The QR code of `url` as an SVG or PNG file. Error correction M (15 %): a poster may get scuffed."""
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind=kind, scale=scale, border=4, **({"xmldecl": False} if kind == "svg" else {}))
    return out.getvalue()


def inline_svg(url: str, *, scale: int = 3) -> str:
    """The QR code as an <svg> element for a page."""
    return segno.make(url, error="m").svg_inline(scale=scale, title="问卷二维码")
