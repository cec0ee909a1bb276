"""A self-contained static HTML page: inline CSS, plots as base64 PNG, no scripts, no external assets."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field

from .tables import Table, cell, fmt

CSS = """
body{font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f2d3d;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:22px} header p{margin:4px 0 0;color:#c9d6e3;font-size:13px}
nav{padding:8px 32px;background:#eef2f6;font-size:13px} nav a{margin-right:14px;color:#1f4e79}
main{padding:8px 32px 40px;max-width:1400px}
section{background:#fff;border:1px solid #e3e7eb;border-radius:6px;padding:14px 20px;margin:18px 0}
h2{font-size:18px;margin:4px 0 10px} h3{font-size:14px;margin:14px 0 6px}
p.note{color:#555;font-size:13px;margin:4px 0 10px}
table{border-collapse:collapse;font-size:13px;margin:6px 0 12px}
th,td{padding:4px 10px;border-bottom:1px solid #e6e6e6;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
thead th{border-bottom:2px solid #333;background:#f5f7f9}
td.best{font-weight:700;background:#e8f4ea}
.scroll{overflow-x:auto;max-width:100%}
td.l{text-align:left}
table.text td{text-align:left;white-space:normal}
img.plot{max-width:100%;border:1px solid #eee;margin:6px 6px 6px 0}
.grid{display:flex;flex-wrap:wrap;gap:8px}
.grid img.plot{max-width:460px}
code{font-size:12px;background:#f1f1f1;padding:1px 4px;border-radius:3px}
"""


@dataclass
class Section:
    id: str
    title: str
    note: str = ""
    parts: list[str] = field(default_factory=list)  # HTML fragments

    def add_table(self, t: Table, digits: int = 4, heading: str | None = None) -> None:
        self.parts.append(table_html(t, digits, heading))

    def add_text(self, text: str) -> None:
        self.parts.append(f"<p>{html.escape(text)}</p>")

    def add_img(self, png: bytes, alt: str) -> None:
        self.parts.append(img_html(png, alt))

    def add_grid(self, images: Sequence[tuple[bytes, str]]) -> None:
        self.parts.append('<div class="grid">' + "".join(img_html(p, a) for p, a in images) + "</div>")

    def add_rows(
        self, header: Sequence[str], rows: Sequence[Sequence[object]], heading: str | None = None, text: bool = False
    ) -> None:
        self.parts.append(rows_html(header, rows, heading, text))


def img_html(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img class="plot" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def table_html(t: Table, digits: int = 4, heading: str | None = None) -> str:
    best = [t.best(j) for j in range(len(t.columns))]

    def th(j: int) -> str:
        c, m = t.columns[j], t.metrics[j].lstrip("_")
        down = "" if t.higher(j) else " ↓"
        sub = f"<br><small>{html.escape(m)}{down}</small>" if c != m else down
        return f"<th>{html.escape(c)}{sub}</th>"

    head = "".join(th(j) for j in range(len(t.columns)))
    body = []
    for i, row in enumerate(t.rows):
        cells = "".join(
            f'<td class="best">{html.escape(cell(t, i, j, digits))}</td>'
            if i in best[j]
            else f"<td>{html.escape(cell(t, i, j, digits))}</td>"
            for j in range(len(t.columns))
        )
        body.append(f"<tr><td>{html.escape(row)}</td>{cells}</tr>")
    title = f"<h3>{html.escape(heading)}</h3>" if heading else ""
    return (
        f'{title}<div class="scroll"><table class="leaderboard">'
        f"<thead><tr><th>{html.escape(t.row_header)}</th>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _cell(v: object) -> str:
    if isinstance(v, float):
        return fmt(v) if v != v else f"{v:.4g}"
    return html.escape("" if v is None else str(v))


def rows_html(
    header: Sequence[str], rows: Sequence[Sequence[object]], heading: str | None = None, text: bool = False
) -> str:
    """A plain table; `text=True` left-aligns and wraps cells (descriptive tables)."""
    title = f"<h3>{html.escape(heading)}</h3>" if heading else ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="l">{_cell(v)}</td>' if isinstance(v, str) else f"<td>{_cell(v)}</td>" for v in r)
        + "</tr>"
        for r in rows
    )
    cls = ' class="text"' if text else ""
    return f'{title}<div class="scroll"><table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def render_page(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    nav = "".join(f'<a href="#{s.id}">{html.escape(s.title)}</a>' for s in sections)
    secs = "".join(
        f'<section id="{s.id}"><h2>{html.escape(s.title)}</h2>'
        + (f'<p class="note">{html.escape(s.note)}</p>' if s.note else "")
        + "".join(s.parts)
        + "</section>"
        for s in sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header>"
        f"<nav>{nav}</nav><main>{secs}</main></body></html>\n"
    )
