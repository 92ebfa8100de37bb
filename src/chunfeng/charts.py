"""Charts as inline SVG: no script, so they render the same in a page, under a strict CSP and in a PDF."""

from __future__ import annotations

from html import escape

LIGHT_COLOURS = {"red": "#dc2626", "yellow": "#d97706", "green": "#16a34a", "idle": "#cbd5e1"}


def bar_chart(labels: list[str], values: list[float], *, maximum: float = 100, suffix: str = "%",
              width: int = 640, colour: str = "#1e6b52") -> str:
    """Horizontal bars, one per label, with the value written at the end of each bar."""
    label_w, row_h, bar_w = 150, 26, width - 150 - 60
    height = row_h * len(labels) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'role="img" class="chart" font-size="12">']
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = 5 + i * row_h
        w = 0 if maximum <= 0 else max(0.0, min(1.0, value / maximum)) * bar_w
        parts.append(f'<text x="{label_w - 6}" y="{y + 16}" text-anchor="end">{escape(label)}</text>'
                     f'<rect x="{label_w}" y="{y + 4}" width="{bar_w}" height="16" fill="#eef2f5"/>'
                     f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="16" fill="{colour}"/>'
                     f'<text x="{label_w + w + 4:.1f}" y="{y + 16}">{value:g}{suffix}</text>')
    parts.append("</svg>")
    return "".join(parts)


def light_bars(labels: list[str], counts: list[dict[str, int]], *, width: int = 640) -> str:
    """One stacked bar per label: red, yellow, green and not started (idle) counts side by side, as shares of the
    row's total."""
    label_w, row_h, bar_w = 190, 24, width - 190 - 90
    height = row_h * len(labels) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'role="img" class="chart" font-size="12">']
    for i, (label, count) in enumerate(zip(labels, counts, strict=True)):
        y = 5 + i * row_h
        total = sum(count.values()) or 1
        x = float(label_w)
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{escape(label)}</text>')
        for light in ("red", "yellow", "green", "idle"):
            w = count.get(light, 0) / total * bar_w
            parts.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="16" fill="{LIGHT_COLOURS[light]}"/>')
            x += w
        idle = f'/{count["idle"]}' if count.get("idle") else ""
        parts.append(f'<text x="{label_w + bar_w + 6}" y="{y + 15}">{count.get("red", 0)}/{count.get("yellow", 0)}/'
                     f'{count.get("green", 0)}{idle}</text>')
    parts.append("</svg>")
    return "".join(parts)
