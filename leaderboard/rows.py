"""The board's rows: one per measured model (its runs merged, a task run twice taking the newest comparable
run), and the paper's (Tables 3-5, as published)."""

from __future__ import annotations

from rolebench_eval.paper import paper_tables

from . import inputs as run_inputs
from .compute import Stat, column_stat
from .inputs import RunResult, TaskRun
from .model import MEASURED, REPORTED, Cell, Row, Schema


def _pick(candidates: list[tuple[RunResult, list[str]]]) -> tuple[RunResult, list[str]]:
    """The newest comparable run of a task, else the newest run."""
    pool = [c for c in candidates if not c[1]] or candidates
    return max(pool, key=lambda c: (c[0].date, str(c[0].path)))


def merge_runs(runs: list[RunResult], refs: dict) -> tuple[list[Row], dict[str, dict[str, TaskRun]], list[str]]:
    """One row per label (else run name), with a short unique name; a task run twice takes the newest.

    The newest *comparable* run wins, so a later ``--limit`` smoke test never hides a full run.
    """
    candidates: dict[str, dict[str, list]] = {}
    identity: dict[str, tuple[str, str | None]] = {}
    for run in runs:
        identity.setdefault(run.key, (run.model, run.adapter))
        for task in run.tasks:
            found = (run, run_inputs.reasons(run, refs, [task]))
            candidates.setdefault(run.key, {}).setdefault(task, []).append(found)
    labels = {r.label for r in runs if r.label is not None}
    short = run_inputs.short_names({k: v for k, v in identity.items() if k not in labels}, labels)
    rows, task_runs, notes = [], {}, []
    for key in sorted(candidates):
        name = key if key in labels else short[key]
        row, task_runs[name] = Row(name=name, source=MEASURED), {}
        for task, found in candidates[key].items():
            run, why = _pick(found)
            task_runs[name][task] = run.tasks[task]
            row.reasons += [w for w in why if w not in row.reasons]
            row.files += [str(run.path)] * (str(run.path) not in row.files)
            if run.tasks[task].samples_path:
                row.files.append(str(run.tasks[task].samples_path))
            row.run_names.add(run.run_name)
            row.date = max(row.date or "", run.date[:10])
            others = [str(r.path) for r, _ in found if r is not run]
            if others:
                notes.append(f"{name}: {task} taken from {run.path}, not from {', '.join(others)}")
        row.comparable = not row.reasons
        row.full_name = " · ".join(sorted(row.run_names))
        rows.append(row)
    return sorted(rows, key=lambda r: r.name), task_runs, notes


def reported_names() -> set[str]:
    """The names of the paper's rows (no measured row may take one)."""
    tables = paper_tables()["tables"].values()
    return {m for t in tables for m in [*t.get("rouge", {}), *(t.get("win_rate") or {}).get("values", {})]}


def reported_rows(schema: Schema, column_tasks: dict[str, list[str]]) -> tuple[list[Row], str]:
    """The paper's rows (Tables 3-5): published cells as published; Score, gap and RAW computed from them."""
    paper = paper_tables()
    citation = " ".join(paper["citation"].split())
    fields: dict[str, dict[str, float]] = {}
    per_task: dict[str, dict[tuple[str, str], Stat]] = {}
    notes: dict[str, str] = {}
    for key, table in paper["tables"].items():
        judge = (table.get("win_rate") or {}).get("judge")
        notes[key] = f"{table['title']}; judged by {judge}" if judge else table["title"]
        for model, values in table.get("rouge", {}).items():
            for metric, value in values.items():
                fields.setdefault(model, {})[f"{key}.{metric}"] = float(value)
                if metric in table["metrics"]:
                    per_task.setdefault(model, {})[(table["metrics"][metric], metric)] = Stat(float(value))
        for model, value in (table.get("win_rate") or {}).get("values", {}).items():
            fields.setdefault(model, {})[f"{key}.win_rate"] = float(value) / 100
    rows = []
    for model in sorted(fields, key=str.lower):
        row = Row(name=model, source=REPORTED, citation=citation, full_name=f"{model} (RoleLLM paper)")
        for col in schema.columns:
            if col.paper and col.paper in fields[model]:
                row.cells[col.key] = Cell(fields[model][col.paper], note=notes[col.paper.split(".")[0]])
            elif col.kind in ("score", "gap", "task_mean"):
                stat = column_stat(col, schema, {}, per_task.get(model, {}), column_tasks)
                if stat is not None:
                    row.cells[col.key] = Cell(stat.value, note="computed from the published cells")
        rows.append(row)
    return rows, citation
