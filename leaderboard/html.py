"""The self-contained HTML page: one file, no CDN, inline CSS and JS, every input string escaped.

Jinja2 autoescaping escapes every value from the inputs (model names, role names, file
paths, reasons). The only unescaped text is this package's own CSS and JS; a Content
Security Policy allows that script by hash alone, so even an injected inline handler
would not run.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from markupsafe import Markup

from .model import MEASURED, Cell, Leaderboard, Row
from .render import (
    cell_text,
    rank_text,
    shown_columns,
    test_text,
)
from .schema import Column
from .stats import PairedTest

HERE = Path(__file__).parent
HEATMAP_MAX_MODELS = 40
# viridis at 0, .25, .5, .75, 1
_STOPS = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]


def heat_color(t: float) -> str:
    """Viridis-like colour for ``t`` in [0, 1] (linear between five stops)."""
    t = min(1.0, max(0.0, t)) * (len(_STOPS) - 1)
    i = min(int(t), len(_STOPS) - 2)
    f = t - i
    rgb = [round(a + (b - a) * f) for a, b in zip(_STOPS[i], _STOPS[i + 1])]
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _extent(rows: list[Row], key: str) -> tuple[float, float]:
    points = [v for r in rows for c in [r.cells.get(key)] if c is not None
              for v in (c.value, c.lo, c.hi) if v is not None]
    if not points:
        return 0.0, 1.0
    lo, hi = min(points), max(points)
    pad = (hi - lo) * 0.05 or max(abs(hi), 1.0) * 0.05
    return lo - pad, hi + pad


def _bar(cell: Cell | None, extent: tuple[float, float], reported: bool) -> dict | None:
    if cell is None or cell.value is None:
        return None
    lo, hi = extent
    pos = lambda v: round(100 * (v - lo) / (hi - lo), 2)  # noqa: E731
    bar = {"v": pos(cell.value), "ci": cell.lo is not None and cell.hi is not None, "reported": reported}
    if bar["ci"]:
        bar["lo"], bar["w"] = pos(cell.lo), max(0.5, pos(cell.hi) - pos(cell.lo))
    return bar


def _cell_view(col: Column, cell: Cell | None, extent: tuple[float, float], reported: bool) -> dict:
    title = col.description if cell is None or not cell.note else f"{cell.note}"
    if cell is not None and cell.n is not None:
        title = f"n = {cell.n}" + (f"; {cell.note}" if cell.note else "")
    return {
        "text": cell_text(col, cell, with_ci=False),
        "ci": "" if cell is None or cell.lo is None else f"{col.render(cell.lo)}–{col.render(cell.hi)}",
        "sort": "" if cell is None or cell.value is None else repr(float(cell.value)),
        "bar": _bar(cell, extent, reported) if col.kind not in ("judge_failures",) else None,
        "key": col.key,
        "title": title,
    }


def _test_view(test: PairedTest | None) -> dict:
    if test is None:
        return {"text": "–", "sort": "", "tie": False, "title": ""}
    return {"text": f"{test.diff:+.4f}", "sort": repr(test.diff), "tie": test.tie,
            "title": f"vs {test.other}: {test_text(test)}; n = {test.n_items} paired items"}


def _row_view(row: Row, cols: list[Column], extents: dict) -> dict:
    return {
        "name": row.name, "source": row.source, "comparable": row.comparable, "reasons": row.reasons,
        "rank": rank_text(row), "rank_sort": "" if row.rank is None else row.rank,
        "tie": row.vs_above is not None and row.vs_above.tie, "citation": row.citation or "",
        "cells": [_cell_view(c, row.cells.get(c.key), extents[c.key], row.source != MEASURED) for c in cols],
        "above": _test_view(row.vs_above), "baseline": _test_view(row.vs_baseline),
    }


def _paper_only(board: Leaderboard, cols: list[Column]) -> set[str]:
    """Columns that only reported rows fill (RAW, avg, the paper's win rates)."""
    rows = [r for r in board.rows if r.source == MEASURED]
    return {c.key for c in cols if not any(r.value(c.key) is not None for r in rows)}


def _groups(cols: list[Column], paper_only: set[str]) -> list[dict]:
    """Header groups with their width with and without the paper-only columns."""
    groups: list[dict] = []
    for col in cols:
        if not groups or groups[-1]["name"] != col.group:
            groups.append({"name": col.group, "span": 0, "measured_span": 0})
        groups[-1]["span"] += 1
        groups[-1]["measured_span"] += col.key not in paper_only
    return groups


def _heatmap(board: Leaderboard) -> dict:
    models = [r.name for r in board.rows if r.source == MEASURED and r.name in board.breakdowns.get("role", {})]
    models = models[:HEATMAP_MAX_MODELS]
    data = board.breakdowns.get("role", {})
    values = [c.value for m in models for c in data[m].values() if c.value is not None]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    order = {t: i for i, t in enumerate(board.score_tasks)}
    roles = sorted(board.roles_by_task, key=lambda r: (min(order[t] for t in board.roles_by_task[r]), r))
    rows = []
    for role in roles:
        cells = []
        for model in models:
            cell = data[model].get(role)
            if cell is None or cell.value is None:
                cells.append({"text": "", "color": "", "fg": "", "title": f"{model} · {role}: no items"})
                continue
            t = (cell.value - lo) / (hi - lo) if hi > lo else 0.5
            ci = f" ({cell.lo:.3f}–{cell.hi:.3f})" if cell.lo is not None else ""
            cells.append({"text": f"{cell.value:.2f}", "color": heat_color(t), "fg": "#111" if t > 0.55 else "#fff",
                          "title": f"{model} · {role}: {cell.value:.4f}{ci}, n = {cell.n}"})
        rows.append({"role": role, "tasks": ", ".join(board.roles_by_task[role]), "cells": cells})
    legend = [{"color": heat_color(i / 4), "label": f"{lo + (hi - lo) * i / 4:.2f}"} for i in range(5)]
    return {"models": models, "rows": rows, "legend": legend, "truncated": len(data) > len(models)}


def _breakdown(board: Leaderboard, kind: str) -> dict:
    data = board.breakdowns.get(kind, {})
    order = [r.name for r in board.rows if r.name in data]
    data = {name: data[name] for name in order}
    groups = sorted({g for cells in data.values() for g in cells})
    rows = [{"name": n, "cells": [{"text": "–" if data[n].get(g) is None else f"{data[n][g].value:.4f}",
                                   "ci": "" if data[n].get(g) is None or data[n][g].lo is None
                                   else f"{data[n][g].lo:.4f}–{data[n][g].hi:.4f}"} for g in groups]}
            for n in data]
    return {"groups": groups, "rows": rows}


def render_html(board: Leaderboard) -> str:
    """The page as a string."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(HERE), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    script = (HERE / "leaderboard.js").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    cols = shown_columns(board)
    extents = {c.key: _extent(board.rows, c.key) for c in cols}
    paper_only = _paper_only(board, cols)
    return env.get_template("index.html.jinja").render(
        board=board, columns=cols, groups=_groups(cols, paper_only), paper_only=paper_only,
        rows=[_row_view(r, cols, extents) for r in board.rows],
        n_measured=sum(r.source == MEASURED for r in board.rows),
        n_reported=sum(r.source != MEASURED for r in board.rows),
        heatmap=_heatmap(board),
        breakdowns={k: _breakdown(board, k) for k in ("language", "type")},
        css=Markup((HERE / "leaderboard.css").read_text(encoding="utf-8")),
        script=Markup(script), script_hash=digest,
    )
