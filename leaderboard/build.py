"""``build_leaderboard``: lm-eval runs, judge summaries and the paper's tables in, a Leaderboard out."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import rolebench_eval
from rolebench_eval.errors import InputError

from . import guards
from .analysis import analyse
from .cells import reported_stat
from .errors import LoadError
from .inputs import (
    RunResult,
    TaskRun,
    apply_names,
    attach_samples,
    discover,
    read_run,
)
from .judges import attach_judges, find_summaries
from .model import MEASURED, Leaderboard, Row
from .paper import (
    load_paper,
    paper_task_values,
    reported_rows,
)
from .samples import DocIndex
from .schema import Schema, load_schema
from .stats import DEFAULT_N_BOOT, DEFAULT_SEED, Resampling

log = logging.getLogger(__name__)
TEST = "paired bootstrap on per-item differences matched by doc_id; tie when the 95% interval contains 0"
INTERVAL = "95% percentile bootstrap, items resampled within each role"


@dataclass
class Options:
    """How to build the board.

    Attributes:
        names: ``PATH=LABEL`` renames: an input, results file, folder or model name -> label.
        baseline: Name of the measured row every row is tested against.
        include_incomparable: Show runs that fail the comparability checks (unranked).
        strict: Raise on the first unreadable input instead of leaving its row out.
        seed: Seed of every bootstrap.
        n_boot: Bootstrap resamples.
        schema_path: Another column schema YAML.
        cache_dir: Folder caching the per-item scores read from samples files (None: no cache).
    """

    names: dict[str, str] = field(default_factory=dict)
    baseline: str | None = None
    include_incomparable: bool = False
    strict: bool = False
    seed: int = DEFAULT_SEED
    n_boot: int = DEFAULT_N_BOOT
    schema_path: str | Path | None = None
    cache_dir: str | Path | None = None


def _fail(errors: list[LoadError], exc: LoadError, strict: bool) -> None:
    if strict:
        raise exc
    log.debug("left out: %s", exc)
    errors.append(exc)


def load_runs(inputs: Iterable[str | Path], schema: Schema,
              opts: Options) -> tuple[list[RunResult], list[LoadError], DocIndex]:
    """Read every results file and its samples; a broken one is reported and left out."""
    from tqdm.auto import tqdm

    found, errors = discover(inputs)
    if opts.strict and errors:
        raise errors[0]
    index, runs = DocIndex(), []
    for found_run in tqdm(found, desc="reading runs", unit="run", disable=None):
        try:
            run = read_run(found_run, schema.tasks)
            apply_names(run, opts.names)
            attach_samples(run, index, Path(opts.cache_dir) if opts.cache_dir is not None else None)
        except LoadError as exc:
            _fail(errors, exc, opts.strict)
            continue
        runs.append(run)
    return runs, errors, index


def _pick(candidates: list[tuple[RunResult, list[str]]]) -> tuple[RunResult, list[str]]:
    """The newest comparable run of a task, else the newest run."""
    pool = [c for c in candidates if not c[1]] or candidates
    return max(pool, key=lambda c: (c[0].date, str(c[0].path)))


def merge_runs(runs: list[RunResult], refs: dict) -> tuple[list[Row], dict[str, dict[str, TaskRun]], list[str]]:
    """One row per name; a task run more than once takes the newest comparable run.

    A later ``--limit`` smoke test thus never hides a full run of the same model.
    """
    candidates: dict[str, dict[str, list]] = {}
    for run in runs:
        for task in run.tasks:
            found = (run, guards.reasons(run, refs, [task]))
            candidates.setdefault(run.name, {}).setdefault(task, []).append(found)
    rows, task_runs, notes = [], {}, []
    for name in sorted(candidates):
        row, task_runs[name] = Row(name=name, source=MEASURED), {}
        for task, found in candidates[name].items():
            run, why = _pick(found)
            task_runs[name][task] = run.tasks[task]
            row.reasons += [w for w in why if w not in row.reasons]
            row.files += [str(run.path)] * (str(run.path) not in row.files)
            if run.tasks[task].samples_path:
                row.files.append(str(run.tasks[task].samples_path))
            row.run_names.add(run.run_name)
            others = [str(r.path) for r, _ in found if r is not run]
            if others:
                notes.append(f"{name}: {task} taken from {run.path}, not from {', '.join(others)}")
        row.comparable = not row.reasons
        rows.append(row)
    return rows, task_runs, notes


def reported(schema: Schema, score_tasks: list[str]) -> tuple[list[Row], str]:
    """The paper's rows, with Score and gap computed from the published cells."""
    paper = load_paper()
    rows = reported_rows(schema, paper)
    values = paper_task_values(paper)
    for row in rows:
        for col in schema.columns:
            stat = reported_stat(col, schema, values.get(row.name, {}), score_tasks)
            if stat is not None:
                row.cells[col.key] = stat.cell()
                row.cells[col.key].note = "computed from the published cells"
    return rows, " ".join(paper["citation"].split())


def build_leaderboard(inputs: Iterable[str | Path], judges: Iterable[str | Path] = (),
                      out: str | Path | None = None, options: Options | None = None) -> Leaderboard:
    """Build the leaderboard (and write it under ``out`` when given).

    Args:
        inputs: lm-eval output folders or ``results_*.json`` files.
        judges: Folders holding judge summaries.
        out: Folder for the Markdown, CSV, JSON, HTML and PNG outputs; nothing is written when None.
        options: See :class:`Options`.

    Raises:
        LoadError: with ``strict``, on the first unreadable input.
        ValueError: when the baseline is not a shown measured row.
    """
    opts = options or Options()
    schema = load_schema(opts.schema_path)
    runs, errors, index = load_runs(inputs, schema, opts)
    rows, task_runs, notes = merge_runs(runs, guards.references(runs, opts.baseline))
    shown = [r for r in rows if r.comparable or opts.include_incomparable]
    excluded = [r for r in rows if r not in shown]
    names = [r.name for r in shown]
    if opts.baseline is not None and opts.baseline not in names:
        why = " (it is not comparable; see --include-incomparable)" if opts.baseline in task_runs else ""
        raise InputError(None, None, "--baseline", f"{opts.baseline!r} is not a measured row{why}; rows: {', '.join(names)}")
    result = analyse(schema, shown, task_runs, opts.baseline, index.roles, Resampling(opts.n_boot, opts.seed))
    summaries, judge_errors = find_summaries(judges)
    for exc in judge_errors:
        _fail(errors, exc, opts.strict)
    judge_cols, judge_notes = attach_judges(schema, shown, summaries)
    paper_rows, citation = reported(schema, result.score_tasks)
    board = Leaderboard(
        columns=list(schema.columns) + judge_cols, rows=result.ordered + paper_rows, excluded=excluded,
        errors=errors, notes=notes + judge_notes, score_tasks=result.score_tasks,
        breakdowns=result.breakdowns, roles_by_task=result.roles_by_task, baseline=opts.baseline,
        settings={"seed": opts.seed, "n_boot": opts.n_boot, "interval": INTERVAL,
                  "test": TEST, "package_version": rolebench_eval.__version__,
                  "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")},
        citation=citation,
    )
    if out is not None:
        from .render import write_outputs

        write_outputs(board, Path(out))
    return board
