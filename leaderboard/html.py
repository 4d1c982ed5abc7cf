"""The two self-contained pages: ``index.html`` (the board) and ``items.html`` (the item browser).

No CDN, nothing fetched: both work opened from the file system. Jinja2 autoescaping
escapes every value from the inputs; the only unescaped text is this package's own CSS
and JS, and a Content-Security-Policy lets only that script run (by hash), so even an
injected inline handler would not run. The item browser's data (questions, references,
every model's answer, per-item scores and judge verdicts) sits next to it in
``items-data.js``, loaded as a script because browsers refuse ``fetch`` of a file from
``file://``; it is JSON, and the page builds its DOM with ``textContent`` only.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from markupsafe import Markup

from rolebench_eval.fileio import write_atomic

from . import about
from .model import MEASURED, Cell, Column, Leaderboard, Row
from .plots import plot_labels
from .render import cell_text, over_text, rank_text, shown_columns, test_text

HERE = Path(__file__).parent
HEATMAP_MAX_MODELS = 40
ITEMS_DATA = "items-data.js"
# viridis at 0, .25, .5, .75, 1
_STOPS = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]


def heat_color(t: float) -> str:
    """Viridis-like colour for ``t`` in [0, 1] (linear between five stops)."""
    t = min(1.0, max(0.0, t)) * (len(_STOPS) - 1)
    i = min(int(t), len(_STOPS) - 2)
    rgb = [round(a + (b - a) * (t - i)) for a, b in zip(_STOPS[i], _STOPS[i + 1])]
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
    title = col.description if cell is None or not cell.note else cell.note
    if cell is not None and cell.n is not None:
        title = f"n = {cell.n}" + (f"; {cell.note}" if cell.note else "")
    if cell is not None and cell.lo is not None and cell.hi is not None:
        title = f"95% interval {_ci(col, cell)}; {title}"
    return {
        "text": cell_text(col, cell, with_ci=False),
        "ci": "" if cell is None or cell.lo is None else _ci(col, cell),
        "sort": "" if cell is None or cell.value is None else repr(float(cell.value)),
        "bar": _bar(cell, extent, reported) if col.key == "score" else None,
        "title": title, "fails": "",
    }


def _ci(col: Column, cell: Cell) -> str:
    """The interval, short: ``41–80%`` for rates, ``0.3202–0.3256`` otherwise."""
    if col.format.endswith("%"):
        return f"{cell.lo * 100:.0f}–{cell.hi * 100:.0f}%"
    spec = col.format.lstrip("+")  # the bounds of a signed column, without their plus signs
    return f"{format(cell.lo, spec)}–{format(cell.hi, spec)}"


def _test_view(test) -> dict:
    if test is None:
        return {"text": "–", "sort": "", "tie": False, "title": ""}
    return {"text": f"{test.diff:+.4f}", "sort": repr(test.diff), "tie": test.tie,
            "title": f"vs {test.other}: {test_text(test)}; n = {test.n_items} paired items"}


def _layout(cols: list[Column], baseline: bool) -> list:
    """The table's column order: Score, the paired tests, RAW and continuity, the folded per-split
    columns, the judges; the tests are the markers "above" and "baseline"."""
    main = [c for c in cols if c.main and c.metric != "parse_failures"]  # failures: inside the judge's first cell
    score = [c for c in main if c.key == "score"]
    static = [c for c in main if c.key != "score" and c.kind != "judge"]
    tests = ["above", "baseline"] if baseline else ["above"]
    return score + tests + static + [c for c in cols if not c.main] + [c for c in main if c.kind == "judge"]


def _row_view(row: Row, layout: list, extents: dict) -> dict:
    cells = []
    for c in layout:
        if isinstance(c, str):
            cells.append(c)
            continue
        view = _cell_view(c, row.cells.get(c.key), extents[c.key], row.source != MEASURED)
        fails = row.cells.get(f"judge:parse_failures:{c.task}:{c.judge}") if c.kind == "judge" else None
        if fails is not None and c.metric in ("win_rate", "rubric_mean") and fails.value:
            view["fails"] = f"{fails.value:g} unparsed"
            view["title"] += f"; {fails.note}"
        cells.append({**view, "cls": _cls(c)})
    return {
        "name": row.name, "full": row.full_name or row.name, "source": row.source, "comparable": row.comparable,
        "reasons": row.reasons, "rank": rank_text(row), "rank_sort": "" if row.rank is None else row.rank,
        "citation": row.citation or "", "cells": cells, "twin": row.twin, "twin_note": row.twin_note,
        "n": "" if row.cells.get("score") is None or row.cells["score"].n is None else f"{row.cells['score'].n:,}",
        "no_main": row.source != MEASURED and not any(row.value(c.key) is not None for c in layout
                                                       if not isinstance(c, str) and c.main),
        "above": _test_view(row.vs_above), "baseline": _test_view(row.vs_baseline), **_about_view(row),
    }


def _about_view(row: Row) -> dict:
    """The row's display data: ``about`` (the fields), ``size`` (billions, for the filter), ``facts``
    (one short line: parameters · base model · license · date) and ``facts_title`` (the same, named)."""
    values, size = about.fields(row), about.size(row)
    shown = [k for k in ("parameters", "base_model", "license", "date") if values[k]]
    return {"about": values, "size": "" if size is None else repr(size),
            "facts": " · ".join(values[k] for k in shown),
            "facts_title": "; ".join(f"{k.replace('_', ' ')}: {values[k]}" for k in shown)}


def _filters(board: Leaderboard) -> dict:
    """What the page's filters offer: the licenses on the board, and whether any row has a size."""
    return {"licenses": sorted({r.about.license for r in board.rows if r.about and r.about.license}),
            "sizes": any(about.size(r) is not None for r in board.rows)}


def _cls(col: Column | str) -> str:
    """A column's classes: ``split`` (shown with the per-split columns), else ``main``; ``aside`` for the
    main columns the per-split view shows in their place (all but the Score)."""
    if isinstance(col, str):
        return "test main aside"
    return "split" if not col.main else "main" if col.key == "score" else "main aside"


def _groups(layout: list) -> list[dict]:
    """Header groups: consecutive columns of one group and one view (see :func:`_cls`)."""
    groups: list[dict] = []
    for col in layout:
        name = "Paired tests of the Score" if isinstance(col, str) else col.group
        cls = _cls(col).replace("test ", "")
        if not groups or groups[-1]["name"] != name or groups[-1]["cls"] != cls:
            groups.append({"name": name, "span": 0, "cls": cls})
        groups[-1]["span"] += 1
    return groups


def _heatmap(board: Leaderboard, browser: bool) -> dict:
    data = board.breakdowns.get("role", {})
    models = [r.name for r in board.measured if r.name in data][:HEATMAP_MAX_MODELS]
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
                cells.append({"text": "", "color": "", "fg": "", "title": f"{model} · {role}: no items", "link": ""})
                continue
            t = (cell.value - lo) / (hi - lo) if hi > lo else 0.5
            ci = f" ({cell.lo:.3f}–{cell.hi:.3f})" if cell.lo is not None else ""
            cells.append({"text": f"{cell.value:.2f}", "color": heat_color(t), "fg": "#111" if t > 0.55 else "#fff",
                          "title": f"{model} · {role}: {cell.value:.4f}{ci}, n = {cell.n}; open its items",
                          "link": {"role": role, "model": model} if browser else ""})
        rows.append({"role": role, "tasks": ", ".join(board.roles_by_task[role]), "cells": cells})
    legend = [{"color": heat_color(i / 4), "label": f"{lo + (hi - lo) * i / 4:.2f}"} for i in range(5)]
    return {"models": models, "rows": rows, "legend": legend, "truncated": len(data) > len(models)}


def _breakdown(board: Leaderboard, kind: str) -> dict:
    data = board.breakdowns.get(kind, {})
    data = {r.name: data[r.name] for r in board.rows if r.name in data}
    groups = sorted({g for cells in data.values() for g in cells})
    rows = [{"name": n, "cells": [{"text": "–" if data[n].get(g) is None else f"{data[n][g].value:.4f}",
                                   "ci": "" if data[n].get(g) is None or data[n][g].lo is None
                                   else f"{data[n][g].lo:.4f}–{data[n][g].hi:.4f}"} for g in groups]}
            for n in data]
    return {"groups": groups, "rows": rows}


def _environment(cache_dir: Path | None = None):
    """The templates' environment; with ``cache_dir``, compiled templates are kept there (jinja's own
    bytecode cache, keyed by each template's source: compiling them is a tenth of a warm build)."""
    from jinja2 import Environment, FileSystemBytecodeCache, FileSystemLoader, StrictUndefined

    bytecode = None
    if cache_dir is not None:
        try:
            (cache_dir / "templates").mkdir(parents=True, exist_ok=True)
            bytecode = FileSystemBytecodeCache(str(cache_dir / "templates"))
        except OSError:
            pass  # a cache that cannot be written only costs time
    return Environment(loader=FileSystemLoader(HERE), autoescape=True, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True, bytecode_cache=bytecode)


def _script(name: str) -> tuple[Markup, str]:
    script = (HERE / name).read_text(encoding="utf-8")
    return Markup(script), base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()


def render_index(board: Leaderboard, depth_png: bytes | None = None, cache_dir: Path | None = None,
                 drift_png: bytes | None = None) -> str:
    """``index.html`` as a string."""
    cols = shown_columns(board)
    layout = _layout(cols, board.baseline is not None)
    extents = {c.key: _extent(board.rows, c.key) for c in cols}
    script, digest = _script("leaderboard.js")
    browser = bool(board.items and board.items["items"])
    return _environment(cache_dir).get_template("index.html.jinja").render(
        board=board, columns=layout, column_list=cols, groups=_groups(layout),
        roomy=sum(1 for c in layout if isinstance(c, str) or c.main) <= 10,
        rows=[_row_view(r, layout, extents) for r in board.rows],
        descriptions={c.key: " ".join(c.description.split()) + over_text(board, c) for c in cols},
        n_measured=len(board.measured), n_reported=len(board.rows) - len(board.measured),
        n_hidden=sum(1 for r in board.rows if r.source != MEASURED and not any(
            r.value(c.key) is not None for c in cols if c.main)),
        heatmap=_heatmap(board, browser), browser=browser, filters=_filters(board),
        twin_notes=list(dict.fromkeys(r.twin_note for r in board.rows if r.twin_note)),
        classes={c.key: _cls(c) for c in cols},
        figure_labels=[(short, name) for name, short in plot_labels(board).items() if short.strip() != name],
        breakdowns={k: _breakdown(board, k) for k in ("language", "type", "character")},
        depth_png=base64.b64encode(depth_png).decode() if depth_png else "",
        drift_png=base64.b64encode(drift_png).decode() if drift_png else "",
        css=Markup((HERE / "leaderboard.css").read_text(encoding="utf-8")), script=script, script_hash=digest)


def render_items(board: Leaderboard, cache_dir: Path | None = None) -> str:
    """``items.html`` as a string (its data is ``items-data.js``)."""
    script, digest = _script("items.js")
    return _environment(cache_dir).get_template("items.html.jinja").render(
        board=board, items=board.items, data_file=ITEMS_DATA,
        css=Markup((HERE / "leaderboard.css").read_text(encoding="utf-8")), script=script, script_hash=digest)


def items_script(items: dict) -> bytes:
    """``items-data.js``: the browser's data as one JSON literal (line separators escaped for old engines)."""
    import msgspec

    data = msgspec.json.encode(items).replace("\u2028".encode(), b"\\u2028").replace("\u2029".encode(), b"\\u2029")
    return b"// RoleBench item browser data, written by rolebench-eval leaderboard; loaded by items.html\n" \
           b"window.ROLEBENCH_ITEMS = " + data + b";\n"


def embeds_figures(board: Leaderboard) -> bool:
    """Whether ``index.html`` embeds figures (depth and drift, read from beside it by :func:`write_pages`)."""
    return bool(board.depth_curves or board.drift_curves)


def write_pages(board: Leaderboard, out: Path, cache_dir: Path | None = None) -> dict[str, Path]:
    """Write ``index.html`` and, when there are items, ``items.html`` with ``items-data.js``."""
    written = {}
    if board.items and board.items["items"]:
        written["items_data"] = write_atomic(out / ITEMS_DATA, items_script(board.items))
        written["items_html"] = write_atomic(out / "items.html", render_items(board, cache_dir))
    else:
        for stale in (out / ITEMS_DATA, out / "items.html"):
            stale.unlink(missing_ok=True)  # a browser of an earlier build would contradict this board
    depth, drift = out / "depth.png", out / "drift.png"
    written["html"] = write_atomic(out / "index.html",
                                   render_index(board, depth.read_bytes() if board.depth_curves and depth.is_file()
                                                else None, cache_dir,
                                                drift.read_bytes() if board.drift_curves and drift.is_file() else None))
    return written
