"""The board as text: cell formatting, Markdown (tabulate), CSV and JSON.

Every string from the inputs (model and role names, reasons, file paths) is data: escaped
in Markdown, and in CSV a cell that starts with ``= + - @``, a tab or a carriage return is
prefixed with ``'`` so that no spreadsheet runs it as a formula. Numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict

from . import about
from .model import Cell, Column, Leaderboard, PairedTest, Row

JSON_KIND = "rolebench-leaderboard"
JSON_SCHEMA_VERSION = 5  # 3: reported rows are ranked among the measured ones; twin, twin_note; 5: judge_health
#                          4: rows carry parameters, base_model, link, license, date (``about.FIELDS``)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def md(text: str) -> str:
    """Text from the inputs, safe in a Markdown table: no HTML, no column breaks."""
    text = " ".join(str(text).split())
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def csv_text(text: str) -> str:
    """Text from the inputs, safe in a spreadsheet: a leading formula character is neutralised."""
    text = str(text)
    return "'" + text if text.startswith(_FORMULA) else text


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


def over_text(board: Leaderboard, col: Column) -> str:
    """What an averaging column averages over, for its description."""
    tasks = board.column_tasks.get(col.key)
    return f" Over: {', '.join(tasks)}." if tasks else ""


def markdown_table(board: Leaderboard) -> str:
    """The main table as GitHub Markdown."""
    from tabulate import tabulate

    cols = shown_columns(board)
    headers = ["Rank", "Model", "Source", *(md(c.key) for c in cols), "vs above", "vs baseline"]  # keys hold judge names
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


def markdown(board: Leaderboard) -> str:
    """The whole report: table, breakdowns, what was left out, column meanings, citation."""
    tasks = ", ".join(board.score_tasks) or "none (no task common to the ranked rows)"
    parts = [
        "# RoleBench leaderboard", "",
        f"Score = mean paper metric over: {tasks}. Intervals: {board.settings['interval']} "
        f"({board.settings['n_boot']} resamples, seed {board.settings['seed']}). Tests: {board.settings['test']}"
        + (f"; baseline: {md(board.baseline)}." if board.baseline else "."),
        "Rows marked `reported` are the paper's published numbers (no intervals), never re-measured, ranked among "
        "the measured rows by the Score of their published cells; a measured row's tests are against the measured "
        "row above it.", "",
        markdown_table(board), "",
    ]
    for kind, title in (("language", "By language"), ("type", "By item type"),
                        ("character", "Conversations by character")):
        if board.breakdowns.get(kind):
            parts += [f"## {title}", "", breakdown_table(board, kind), ""]
    parts += models_section(board)
    if board.breakdowns.get("role"):
        parts += ["Per-role scores are in `breakdowns.csv`, `leaderboard.json` and the HTML heatmap.", ""]
    if board.excluded:
        parts += ["## Not comparable (left out; see --include-incomparable)", ""]
        parts += [f"- {md(r.name)}: {md('; '.join(r.reasons))}" for r in board.excluded] + [""]
    if board.errors:
        parts += ["## Inputs that could not be read", ""] + [f"- {md(e)}" for e in board.errors] + [""]
    if board.unmatched_judges:
        parts += ["## Judge summaries that match no row (left out)", ""]
        parts += [f"- {md(n)}" for n in board.unmatched_judges] + [""]
    if board.notes:
        parts += ["## Notes", ""] + [f"- {md(n)}" for n in board.notes] + [""]
    parts += ["## Columns", ""] + [f"- **{md(c.key)}**: {md(c.display_name)}{' · ' + md(c.group) if c.group else ''}. "
                                   f"{md(' '.join(c.description.split()) + over_text(board, c))}"
                                   for c in shown_columns(board)]
    parts += ["", f"Reported rows: {board.citation}", ""]
    return "\n".join(parts)


def models_section(board: Leaderboard) -> list[str]:
    """``## Models``: each row's display data and source (``reported``: the paper's), when any row has some."""
    from tabulate import tabulate

    rows = [(row, about.fields(row)) for row in board.rows]
    if not any(v is not None for _, values in rows for v in values.values()):
        return []
    body = [[md(row.name), row.source, *("–" if values[k] is None else md(values[k]) for k in about.FIELDS)]
            for row, values in rows]
    return ["## Models", "", tabulate(body, headers=["Model", "Source", *about.FIELDS], tablefmt="github",
                                      disable_numparse=True), ""]


def _test_fields(prefix: str, test: PairedTest | None) -> dict:
    keys = ("other", "diff", "lo", "hi", "p", "tie")
    values = {f"{prefix}_{k}": ("" if test is None else getattr(test, k)) for k in keys}
    values[f"{prefix}_other"] = csv_text(values[f"{prefix}_other"])
    return values


def board_csv(board: Leaderboard) -> str:
    """One line per row; every column as value, lo, hi, n."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = ["rank", "model", "full_name", "source", *about.FIELDS, "comparable", "reasons"]
    for col in board.columns:
        header += [csv_text(k) for k in (col.key, f"{col.key}_lo", f"{col.key}_hi", f"{col.key}_n")]
    header += list(_test_fields("vs_above", None)) + list(_test_fields("vs_baseline", None))
    writer.writerow(header)
    for row in board.rows + board.excluded:
        line = ["" if row.rank is None else row.rank, csv_text(row.name), csv_text(row.full_name), row.source,
                *(csv_text(v or "") for v in about.fields(row).values()), row.comparable, csv_text("; ".join(row.reasons))]
        for col in board.columns:
            cell = row.cells.get(col.key) or Cell(None)
            line += ["" if v is None else v for v in (cell.value, cell.lo, cell.hi, cell.n)]
        line += list(_test_fields("vs_above", row.vs_above).values())
        line += list(_test_fields("vs_baseline", row.vs_baseline).values())
        writer.writerow(line)
    return buffer.getvalue()


def breakdowns_csv(board: Leaderboard) -> str:
    """Long format: kind, model, group, value, lo, hi, n."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["kind", "model", "group", "value", "lo", "hi", "n"])
    for kind, data in board.breakdowns.items():
        for name in [r.name for r in board.rows + board.excluded if r.name in data]:
            for group, cell in data[name].items():
                writer.writerow([kind, csv_text(name), csv_text(group), cell.value, cell.lo, cell.hi, cell.n])
    return buffer.getvalue()


def _cell_json(cell: Cell) -> dict:
    return {"value": cell.value, "lo": cell.lo, "hi": cell.hi, "n": cell.n, "note": cell.note}


def _row_json(row: Row) -> dict:
    data = {k: v for k, v in vars(row).items() if k not in ("cells", "vs_above", "vs_baseline", "run_names", "about")}
    data.update(about.fields(row))
    data["cells"] = {key: _cell_json(cell) for key, cell in row.cells.items()}
    for key in ("vs_above", "vs_baseline"):
        data[key] = None if getattr(row, key) is None else asdict(getattr(row, key))
    data["run_names"] = sorted(row.run_names)
    return data


def board_json(board: Leaderboard) -> bytes:
    """Everything on the board, for other tools (msgspec: fast, and NaN or infinity become null)."""
    import msgspec

    data = {
        "kind": JSON_KIND, "schema_version": JSON_SCHEMA_VERSION, "settings": board.settings,
        "baseline": board.baseline, "score_tasks": board.score_tasks, "column_tasks": board.column_tasks,
        "citation": board.citation, "columns": [asdict(c) for c in board.columns],
        "rows": [_row_json(r) for r in board.rows], "excluded": [_row_json(r) for r in board.excluded],
        "errors": [{"path": e.path, "line": e.line, "field": e.field, "reason": e.problem} for e in board.errors],
        "notes": board.notes, "unmatched_judges": board.unmatched_judges,
        "judge_health": [{"judge_model": p["summary"].judge_model, "groups": p["groups"], "file": str(p["path"]),
                          "summary": msgspec.to_builtins(p["summary"])} for p in board.health],
        "breakdowns": {k: {n: {g: _cell_json(c) for g, c in cells.items()} for n, cells in v.items()}
                       for k, v in board.breakdowns.items()},
        "depth_curves": {n: {t: [{"depth": d, **_cell_json(c)} for d, c in curve] for t, curve in tasks.items()}
                         for n, tasks in board.depth_curves.items()},
        "drift_curves": {n: {t: {m: [{"turn": d, **_cell_json(c)} for d, c in curve] for m, curve in by.items()}
                             for t, by in tasks.items()} for n, tasks in board.drift_curves.items()},
    }
    return msgspec.json.format(msgspec.json.encode(data), indent=2) + b"\n"
