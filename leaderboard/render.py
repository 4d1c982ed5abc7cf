"""Writing the leaderboard: Markdown (tabulate), CSV, JSON, and the HTML page and plots.

Every file is written to a temporary name and moved into place, so a killed build never
leaves a half-written page behind.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict
from pathlib import Path

from rolebench_eval.fileio import write_atomic
from .model import MEASURED, Cell, Leaderboard, Row
from .schema import Column
from .stats import PairedTest

JSON_KIND = "rolebench-leaderboard"


def md(text: str) -> str:
    """Text from the inputs, safe in a Markdown table: no HTML, no column breaks."""
    text = " ".join(str(text).split())
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def cell_text(col: Column, cell: Cell | None, with_ci: bool = True) -> str:
    """``0.3229 (0.3202–0.3256)``, or a dash."""
    if cell is None or cell.value is None:
        return "–"
    text = col.render(cell.value)
    if with_ci and cell.lo is not None and cell.hi is not None:
        text += f" ({col.render(cell.lo)}–{col.render(cell.hi)})"
    return text


def rank_text(row: Row) -> str:
    if row.rank is None:
        return "–"
    return f"{row.rank}≈" if row.vs_above is not None and row.vs_above.tie else str(row.rank)


def test_text(test: PairedTest | None) -> str:
    """``+0.0123 (+0.0050–+0.0190) p=0.001``; ``≈`` marks a tie."""
    if test is None:
        return "–"
    mark = " ≈" if test.tie else ""
    return f"{test.diff:+.4f} ({test.lo:+.4f}–{test.hi:+.4f}) p={test.p:.3f}{mark}"


def shown_columns(board: Leaderboard) -> list[Column]:
    """Columns with at least one value on the board."""
    return [c for c in board.columns if any(r.value(c.key) is not None for r in board.rows)]


def markdown_table(board: Leaderboard) -> str:
    """The main table as GitHub Markdown."""
    from tabulate import tabulate

    cols = shown_columns(board)
    headers = ["Rank", "Model", "Source", *(c.key for c in cols), "vs above", "vs baseline"]
    body = []
    for row in board.rows:
        source = row.source if row.comparable else f"{row.source} (not comparable)"
        body.append([rank_text(row), md(row.name), source, *(cell_text(c, row.cells.get(c.key)) for c in cols),
                     test_text(row.vs_above), test_text(row.vs_baseline)])
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)


def breakdown_table(board: Leaderboard, kind: str) -> str:
    """One breakdown (rows: models, columns: groups) as Markdown."""
    from tabulate import tabulate

    data = board.breakdowns.get(kind, {})
    data = {r.name: data[r.name] for r in board.rows if r.name in data}  # in rank order
    groups = sorted({g for cells in data.values() for g in cells})
    col = next(c for c in board.columns if c.key == "score")
    body = [[md(name), *(cell_text(col, data[name].get(g)) for g in groups)] for name in data]
    return tabulate(body, headers=["Model", *(md(g) for g in groups)], tablefmt="github", disable_numparse=True)


def render_markdown(board: Leaderboard) -> str:
    """The whole report: table, breakdowns, what was left out, column meanings, citation."""
    tasks = ", ".join(board.score_tasks) or "none (no task common to the ranked rows)"
    parts = [
        "# RoleBench leaderboard", "",
        f"Score = mean paper metric over: {tasks}. Intervals: {board.settings['interval']} "
        f"({board.settings['n_boot']} resamples, seed {board.settings['seed']}). Tests: {board.settings['test']}"
        + (f"; baseline: {board.baseline}." if board.baseline else "."),
        "Rows marked `reported` are the paper's published numbers (no intervals), never re-measured.", "",
        markdown_table(board), "",
    ]
    for kind, title in (("language", "By language"), ("type", "By item type")):
        if board.breakdowns.get(kind):
            parts += [f"## {title}", "", breakdown_table(board, kind), ""]
    if board.breakdowns.get("role"):
        parts += ["Per-role scores are in `breakdowns.csv`, `leaderboard.json` and the HTML heatmap.", ""]
    if board.excluded:
        parts += ["## Not comparable (left out; see --include-incomparable)", ""]
        parts += [f"- {md(r.name)}: {md('; '.join(r.reasons))}" for r in board.excluded] + [""]
    if board.errors:
        parts += ["## Inputs that could not be read", ""] + [f"- {md(e)}" for e in board.errors] + [""]
    if board.notes:
        parts += ["## Notes", ""] + [f"- {md(n)}" for n in board.notes] + [""]
    parts += ["## Columns", ""] + [f"- `{c.key}`: {c.display_name}{' · ' + c.group if c.group else ''}. "
                                   f"{' '.join(c.description.split())}" for c in shown_columns(board)]
    parts += ["", f"Reported rows: {board.citation}", ""]
    return "\n".join(parts)


def _test_fields(prefix: str, test: PairedTest | None) -> dict:
    keys = ("other", "diff", "lo", "hi", "p", "tie")
    return {f"{prefix}_{k}": ("" if test is None else getattr(test, k)) for k in keys}


def render_csv(board: Leaderboard) -> str:
    """One line per row; every column as value, lo, hi, n."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = ["rank", "model", "source", "comparable", "reasons"]
    for col in board.columns:
        header += [col.key, f"{col.key}_lo", f"{col.key}_hi", f"{col.key}_n"]
    header += list(_test_fields("vs_above", None)) + list(_test_fields("vs_baseline", None))
    writer.writerow(header)
    for row in board.rows + board.excluded:
        line = [row.rank if row.rank is not None else "", row.name, row.source, row.comparable, "; ".join(row.reasons)]
        for col in board.columns:
            cell = row.cells.get(col.key) or Cell(None)
            line += ["" if v is None else v for v in (cell.value, cell.lo, cell.hi, cell.n)]
        line += list(_test_fields("vs_above", row.vs_above).values())
        line += list(_test_fields("vs_baseline", row.vs_baseline).values())
        writer.writerow(line)
    return buffer.getvalue()


def render_breakdowns_csv(board: Leaderboard) -> str:
    """Long format: kind, model, group, value, lo, hi, n."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["kind", "model", "group", "value", "lo", "hi", "n"])
    for kind, data in board.breakdowns.items():
        for name in [r.name for r in board.rows + board.excluded if r.name in data]:
            cells = data[name]
            for group, cell in cells.items():
                writer.writerow([kind, name, group, cell.value, cell.lo, cell.hi, cell.n])
    return buffer.getvalue()


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, set):
        return sorted(value)
    return value


def _cell_json(cell: Cell) -> dict:
    return {"value": cell.value, "lo": cell.lo, "hi": cell.hi, "n": cell.n, "note": cell.note}


def _row_json(row: Row) -> dict:
    data = {k: v for k, v in vars(row).items() if k not in ("cells", "vs_above", "vs_baseline", "run_names")}
    data["cells"] = {key: _cell_json(cell) for key, cell in row.cells.items()}
    for key in ("vs_above", "vs_baseline"):
        data[key] = None if getattr(row, key) is None else asdict(getattr(row, key))
    data["run_names"] = sorted(row.run_names)
    return data


def render_json(board: Leaderboard) -> str:
    """Everything on the board, for other tools."""
    data = {
        "kind": JSON_KIND, "schema_version": 1, "settings": board.settings, "baseline": board.baseline,
        "score_tasks": board.score_tasks, "citation": board.citation,
        "columns": [asdict(c) for c in board.columns],
        "rows": [_row_json(r) for r in board.rows], "excluded": [_row_json(r) for r in board.excluded],
        "errors": [{"path": e.path, "line": e.line, "field": e.field, "reason": e.reason} for e in board.errors],
        "notes": board.notes,
        "breakdowns": {k: {n: {g: _cell_json(c) for g, c in cells.items()} for n, cells in v.items()}
                       for k, v in board.breakdowns.items()},
    }
    return json.dumps(_clean(data), indent=2, ensure_ascii=False)


def write_outputs(board: Leaderboard, out: Path) -> dict[str, Path]:
    """Write every output under ``out``; returns (and records in ``board.outputs``) the paths."""
    from .html import render_html
    from .plots import write_plots

    out.mkdir(parents=True, exist_ok=True)
    written = {
        "markdown": write_atomic(out / "leaderboard.md", render_markdown(board)),
        "csv": write_atomic(out / "leaderboard.csv", render_csv(board)),
        "breakdowns_csv": write_atomic(out / "breakdowns.csv", render_breakdowns_csv(board)),
        "json": write_atomic(out / "leaderboard.json", render_json(board)),
    }
    written.update(write_plots(board, out))
    written["html"] = write_atomic(out / "index.html", render_html(board))
    board.outputs = written
    return written


def measured(board: Leaderboard) -> list[Row]:
    return [r for r in board.rows if r.source == MEASURED]
