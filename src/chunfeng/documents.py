"""Documents: the one Jinja environment and the one HTML → PDF path.

A briefing, an analysis or a dividend bill is rendered by its domain from a template under ``chunfeng/templates``
(beside this module, so the base layer reaches it without importing the web package), as one self-contained
page for saving and for the PDF, or as a page of the site linking ``/static/briefing.css`` (the site's CSP allows
no inline style; the web app serves ``chunfeng/static`` beside its own assets). The web layer adds its own
page templates to this same environment (`add_templates`), so a page can include a document's body.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")
STYLESHEET = STATIC / "briefing.css"

_loader = ChoiceLoader([FileSystemLoader(str(TEMPLATES))])
environment = Environment(loader=_loader, autoescape=select_autoescape())


def add_templates(folder: Path) -> None:
    """A layer above (the web) puts its own templates in the one environment, looked up before the documents'."""
    if not any(getattr(loader, "searchpath", None) == [str(folder)] for loader in _loader.loaders):
        _loader.loaders.insert(0, FileSystemLoader(str(folder)))


def render(template: str, *, inline_css: bool = False, **context) -> str:
    """`template` as one page; with `inline_css` self-contained (the stylesheet inside it), for saving and for
    the PDF, otherwise linking /static/briefing.css."""
    # Markup: the stylesheet is the package's own file, and autoescaping it turned its quotes into &#34; inside
    # <style>, where entities are not decoded: the PDF lost its font-family and page numbers
    css = Markup(STYLESHEET.read_text(encoding="utf-8")) if inline_css else None
    return environment.get_template(template).render(inline_css=css, **context)


def html_to_pdf(html: str) -> bytes:
    """A self-contained page as PDF (WeasyPrint, the CJK fonts from Debian)."""
    import weasyprint  # imported here: it loads Pango, which only the PDF needs

    return weasyprint.HTML(string=html).write_pdf()
