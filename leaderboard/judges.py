"""Judge summaries (``kind: rolebench-judge-summary``) as leaderboard columns.

The judges write ``<out>/<model>/<task>/<judge>/summary.json``; any JSON file under a
``--judges`` folder whose ``kind`` is ``rolebench-judge-summary`` is read, unknown keys
are ignored. A failed judge parse is never a score: the parse-failure count is shown
next to the win rate.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rolebench_eval.fileio import read_json
from rolebench_eval.outputs import JUDGE_SUMMARY_KIND, JUDGE_SUMMARY_SCHEMA_VERSION

from .errors import LoadError
from .model import Cell, Row
from .schema import Column, Schema, judge_columns

KIND, SCHEMA_VERSION = JUDGE_SUMMARY_KIND, JUDGE_SUMMARY_SCHEMA_VERSION
_STRINGS = ("model", "task", "judge", "protocol")
_COUNTS = ("n_judged", "n_parsed", "n_parse_failures")


def _check(path: Path, data: dict) -> dict:
    if data.get("schema_version") != SCHEMA_VERSION:
        raise LoadError(path, None, "schema_version", f"is {data.get('schema_version')!r}; this leaderboard "
                                                      f"reads version {SCHEMA_VERSION}")
    for key in _STRINGS:
        if not isinstance(data.get(key), str) or not data[key]:
            raise LoadError(path, None, key, f"expected a non-empty string, got {data.get(key)!r}")
    for key in _COUNTS:
        if not isinstance(data.get(key), int) or isinstance(data.get(key), bool) or data[key] < 0:
            raise LoadError(path, None, key, f"expected a count, got {data.get(key)!r}")
    rate = data.get("win_rate")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1):
        raise LoadError(path, None, "win_rate", f"expected a number in [0, 1] or null, got {rate!r}")
    ci = data.get("ci95")
    if ci is not None and not (isinstance(ci, list) and len(ci) == 2
                               and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in ci)):
        raise LoadError(path, None, "ci95", f"expected [lo, hi] or null, got {ci!r}")
    return data


def find_summaries(folders: Iterable[str | Path]) -> tuple[list[tuple[Path, dict]], list[LoadError]]:
    """Every judge summary under ``folders`` (files named summary.json must be readable)."""
    found, errors = [], []
    for folder in folders:
        folder = Path(folder)
        if not folder.exists():
            errors.append(LoadError(folder, None, None, "no such file or folder"))
            continue
        for path in sorted(folder.rglob("*.json")) if folder.is_dir() else [folder]:
            try:
                data = read_json(path)
            except LoadError as exc:
                if path.name == "summary.json":
                    errors.append(exc)
                continue
            if isinstance(data, dict) and data.get("kind") == KIND:
                try:
                    found.append((path, _check(path, data)))
                except LoadError as exc:
                    errors.append(exc)
    return found, errors


def _cells(summary: dict) -> tuple[Cell, Cell]:
    ci = summary.get("ci95") or (None, None)
    note = f"{summary['n_parsed']} parsed of {summary['n_judged']} judged"
    if summary.get("n_skipped_no_baseline"):
        note += f"; {summary['n_skipped_no_baseline']} skipped (no baseline answer)"
    if summary.get("win_rate") is None:
        note += f"; {summary['protocol']} protocol gives no win rate"
    rate = Cell(summary.get("win_rate"), ci[0], ci[1], summary["n_parsed"], note)
    fails = Cell(summary["n_parse_failures"], n=summary["n_judged"],
                 note=f"{summary['n_parse_failures']} of {summary['n_judged']} replies unparsable")
    return rate, fails


def attach_judges(schema: Schema, rows: list[Row],
                  summaries: list[tuple[Path, dict]]) -> tuple[list[Column], list[str]]:
    """Add judge cells to the measured rows; returns the new columns and notes on what did not fit."""
    names = {r.name: r for r in rows}
    by_run: dict[str, list[Row]] = {}
    for row in rows:
        for run_name in row.run_names:
            by_run.setdefault(run_name, []).append(row)
    chosen: dict[tuple[str, str, str], tuple[Path, dict]] = {}
    notes = []
    for path, summary in summaries:
        model = summary["model"]  # the judged run's name (outputs.run_name), the rule the rows use too
        matches = by_run.get(model, [])
        if len(matches) != 1:
            which = "matches " + ", ".join(r.name for r in matches) if matches else "is not on the board"
            notes.append(f"{path}: judge summary for {model!r}, which {which}; left out")
            continue
        key = (matches[0].name, summary["task"], summary["judge"])
        if key in chosen:
            older, newer = sorted([chosen[key], (path, summary)], key=lambda ps: str(ps[1].get("created_at")))
            notes.append(f"{older[0]}: superseded by the newer judge summary {newer[0]}")
            chosen[key] = newer
        else:
            chosen[key] = (path, summary)
    columns: dict[tuple[str, str], tuple[Column, Column]] = {}
    for (name, task, judge), (path, summary) in sorted(chosen.items()):
        if (task, judge) not in columns:
            columns[(task, judge)] = judge_columns(schema, task, judge, summary)
        rate_col, fail_col = columns[(task, judge)]
        rate, fails = _cells(summary)
        names[name].cells[rate_col.key], names[name].cells[fail_col.key] = rate, fails
        names[name].files.append(str(path))
    order = list(schema.tasks)
    keys = sorted(columns, key=lambda tj: (order.index(tj[0]) if tj[0] in order else len(order), tj))
    return [c for key in keys for c in columns[key]], notes
