"""``build_leaderboard``: read (lm-eval runs, judge summaries, the paper) -> compute -> write.

Example::

    from rolebench_eval.leaderboard import build_leaderboard
    from rolebench_eval.leaderboard.build import Options

    board = build_leaderboard(["outputs/"], judges=["judgments/"], out="site/",
                              options=Options(baseline="rolegpt", names={"outputs/my-run": "My model"}))
    board.rows[0].name, board.rows[0].cells["score"].lo, board.rows[0].vs_above
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

import rolebench_eval
from rolebench_eval import outputs
from rolebench_eval.errors import InputError
from rolebench_eval.outputs.models import ModelEntry
from rolebench_eval.paper import paper_tables

from . import inputs as run_inputs
from . import scores
from .about import describe
from .analysis import analyse
from .bootstrap import DEFAULT_N_BOOT, DEFAULT_SEED, Resampling
from .inputs import RunResult, TaskRun
from .health import find_health, panels
from .judges import attach_judges, find_summaries
from .model import Leaderboard, Row, Schema, load_schema
from .order import link_twins, one_order
from .rows import merge_runs, reported_names, reported_rows
from .workers import Workers, collector_paused

log = logging.getLogger(__name__)
TEST = "paired bootstrap on per-item differences matched by doc_id; tie when the 95% interval contains 0"
INTERVAL = "95% percentile bootstrap, items resampled within each role"
BACKGROUND_ITEMS = 200_000  # per-item scores from which the figures are drawn by the worker processes


@dataclass
class Options:
    """How to build the board.

    Attributes:
        names: Renames, ``{PATH: LABEL}`` or ``["PATH=LABEL", ...]`` (the CLI's ``--name``; each ``=``
            is tried as the split). PATH is an input, results file, folder, run name or adapter;
            one that names no run is an error.
        baseline: The measured row (its label or run name) every row is tested against.
        include_incomparable: Show runs that fail the comparability checks (unranked).
        strict: Raise on the first unreadable input instead of leaving its row out.
        seed: Seed of every bootstrap.
        n_boot: Bootstrap resamples.
        schema_path: Another column schema YAML.
        cache_dir: Folder caching the per-item scores read from samples files, and the figures (None: no cache).
        browse_items: Items per role in the item browser (``items.html``); 0 writes no browser.
        browse_models: Measured rows (by rank) whose answers the item browser shows.
        workers: Processes reading samples files (None: one per CPU); only with ``processes``.
        models: Display data of the rows (``models.yaml``, :func:`rolebench_eval.outputs.models.read_models`),
            matched by label; an entry with ``run`` also labels the runs it names, as ``names`` does.
        processes: Start worker processes (``spawn``) to read samples files and draw a large
            board's figures. The CLI sets it; a script that sets it must guard its entry point
            with ``if __name__ == "__main__":`` (each worker imports the main module), which is
            why a library call works in this process only unless asked.
    """

    names: Mapping[str, str] | Sequence[str] = field(default_factory=dict)
    baseline: str | None = None
    include_incomparable: bool = False
    strict: bool = False
    seed: int = DEFAULT_SEED
    n_boot: int = DEFAULT_N_BOOT
    schema_path: str | Path | None = None
    cache_dir: str | Path | None = None
    browse_items: int = 20
    browse_models: int = 10
    workers: int | None = None
    processes: bool = False
    models: Sequence[ModelEntry] = ()
    models_source: str = "models"  # what the models came from, for the notes (the models.yaml path)


def _fail(errors: list[InputError], exc: InputError, strict: bool) -> None:
    if strict:
        raise exc
    log.debug("left out: %s", exc)
    errors.append(exc)


def _check_means(run: RunResult, task_run: TaskRun, got: outputs.Scores, path: Path, metric: str) -> None:
    """The samples' mean of the paper metric must be the results file's: else they are another run's."""
    value = task_run.values.get(metric)
    if value is not None and metric in got.metrics:
        scored = got.metrics[metric][~np.isnan(got.metrics[metric])]
        mean = float(scored.mean()) if scored.size else math.nan
        if not math.isclose(mean, value, rel_tol=1e-6, abs_tol=1e-9):
            raise InputError(path, None, metric, f"mean over {scored.size} items is {mean!r} but "
                                                 f"{run.path.name} reports {value!r}; samples of another run?")


def load_runs(inputs: Iterable[str | Path], schema: Schema, opts: Options, pool: Workers | None = None
              ) -> tuple[list[RunResult], list[InputError], scores.DocIndex]:
    """Read every results file and its per-item scores (``pool``: the build's worker processes);
    a broken run is reported and left out."""
    found, errors = outputs.find_runs(inputs)
    if opts.strict and errors:
        raise errors[0]
    runs = []
    for run in found:
        try:
            runs.append(run_inputs.read_run(run, schema.tasks))
        except InputError as exc:
            _fail(errors, exc, opts.strict)
    names = opts.names
    if not isinstance(names, Mapping):
        names = dict(run_inputs.split_name(spec, runs) for spec in names)
    names = {**{e.run: e.name for e in opts.models if e.run is not None}, **names}
    run_inputs.apply_names(runs, names, reported_names())
    tasks = [[t for t in run.tasks if t in run.samples] for run in runs]
    jobs = [[(run.samples[t], run_inputs.per_item_metrics(schema.tasks[t], run.tasks[t].values)) for t in ts]
            for run, ts in zip(runs, tasks)]
    cache_dir = Path(opts.cache_dir) if opts.cache_dir is not None else None
    index, kept = scores.DocIndex(), []
    read = scores.read_all(jobs, cache_dir, opts.workers if opts.processes else 1, _browse(schema, opts, tasks, jobs), pool)
    for run, ts, job, got in zip(runs, tasks, jobs, read):
        try:
            for task, (path, _), one in zip(ts, job, got):
                if isinstance(one, InputError):
                    raise one
                paper = schema.tasks[task].paper_metric  # multi-turn tasks: its first depth's
                metric = paper if paper in one.metrics else min((m for m in one.metrics if m.startswith(f"{paper}_d")),
                                                                default=paper)
                _check_means(run, run.tasks[task], one, path, metric)
        except InputError as exc:
            _fail(errors, exc, opts.strict)
            continue
        for task, (path, _), one in zip(ts, job, got):
            run.tasks[task].samples_path, run.tasks[task].items = path, index.recode(one)
        kept.append(run)
    return kept, errors, index


def _browse(schema: Schema, opts: Options, tasks: list[list[str]], jobs: list) -> list | None:
    """What the item browser will show of each run, to read with its scores: when every run logging samples
    is shown (no more of them than ``browse_models``), the first ``browse_items`` items of each role."""
    if opts.browse_items <= 0 or sum(bool(ts) for ts in tasks) > opts.browse_models:
        return None
    from .items import answer_metrics

    return [(opts.browse_items, [None if schema.tasks[t].live else answer_metrics(schema.tasks[t], metrics)
                                 for t, (_, metrics) in zip(ts, job)]) for ts, job in zip(tasks, jobs)]


def _baseline(name: str | None, rows: list[Row], shown: list[Row]) -> str | None:
    if name is None:
        return None
    hits = [r for r in rows if r.name == name] or [r for r in rows if name in r.run_names]
    if len(hits) == 1 and hits[0] in shown:
        return hits[0].name
    why = " (it is not comparable; see --include-incomparable)" if hits else ""
    raise InputError(None, None, "--baseline", f"{name!r} is not a measured row{why}; rows: "
                                               f"{', '.join(r.name for r in shown)}")


def build_leaderboard(inputs: Iterable[str | Path], judges: Iterable[str | Path] = (),
                      out: str | Path | None = None, options: Options | None = None,
                      pool: Workers | None = None) -> Leaderboard:
    """Build the leaderboard (and write it under ``out`` when given).

    Args:
        inputs: lm-eval output folders or ``results_*.json`` / ``samples_*.jsonl`` files.
        judges: Folders holding judge summaries.
        out: Folder for the Markdown, CSV, JSON, HTML and PNG outputs; nothing is written when None.
        options: See :class:`Options`.
        pool: With ``options.processes``, the :class:`.workers.Workers` to use, which the caller started
            (and closes); else they are started here when first needed.

    Raises:
        InputError: a rename that names no run, an unknown baseline; with ``strict``, the first
            unreadable input.
    """
    from contextlib import nullcontext

    opts = options or Options()
    if pool is not None and not isinstance(pool, Workers):
        raise TypeError(f"pool: a leaderboard.workers.Workers, not {type(pool).__name__}")
    with Workers(opts.workers) if pool is None else nullcontext(pool) as workers, collector_paused():
        return _build(inputs, judges, out, opts, workers if opts.processes else None)


def _build(inputs: Iterable[str | Path], judges: Iterable[str | Path], out: str | Path | None, opts: Options,
           pool: Workers | None) -> Leaderboard:
    clock = _Clock()
    schema = load_schema(opts.schema_path)
    runs, errors, index = load_runs(inputs, schema, opts, pool)
    clock("read")
    drawers = pool if out is not None and pool is not None and _background(runs) else None
    if drawers is not None:
        from .plots import import_pyplot

        drawers.prepare(import_pyplot)  # while this process computes: the figures are drawn by the workers
    rows, task_runs, notes = merge_runs(runs, run_inputs.references(runs, opts.baseline))
    shown = [r for r in rows if r.comparable or opts.include_incomparable]
    baseline = _baseline(opts.baseline, rows, shown)
    cache_dir = Path(opts.cache_dir) if opts.cache_dir is not None else None
    result = analyse(schema, shown, task_runs, baseline, index.roles, Resampling(opts.n_boot, opts.seed, cache_dir))
    clock("compute")
    board, used = _assemble(schema, opts, judges, result, (rows, shown, baseline), errors,
                            run_inputs.ignored_notes(runs) + notes)
    _write(board, schema, task_runs, used, out, (opts, drawers), cache_dir, clock)
    return board


def _assemble(schema: Schema, opts: Options, judges: Iterable[str | Path], result,
              measured: tuple[list[Row], list[Row], str | None], errors: list[InputError],
              notes: list[str]) -> tuple[Leaderboard, dict]:
    """The board: the analysed rows with their judge cells, the paper's rows, what was left out and why;
    and the judge summaries used, by (row, task, judge). ``measured``: (every row, those shown, baseline)."""
    rows, shown, baseline = measured
    judges = list(judges)
    summaries, judge_errors = find_summaries(judges)
    health, health_errors = find_health(judges)
    for exc in judge_errors + health_errors:
        _fail(errors, exc, opts.strict)
    judge_cols, judge_notes, unmatched, used = attach_judges(schema, shown, summaries)
    paper_rows, citation = reported_rows(schema, result.column_tasks)
    ordered = one_order(result.ordered, paper_rows)
    twins = link_twins(ordered, paper_tables().get("remeasured", {}))
    undescribed = describe([*ordered, *(r for r in rows if r not in shown)], opts.models, opts.models_source)
    board = Leaderboard(
        columns=list(schema.columns) + judge_cols, rows=ordered,
        excluded=[r for r in rows if r not in shown], errors=errors, notes=notes + judge_notes + twins + undescribed,
        unmatched_judges=unmatched, score_tasks=result.score_tasks, column_tasks=result.column_tasks,
        breakdowns=result.breakdowns, roles_by_task=result.roles_by_task, depth_curves=result.depth_curves,
        drift_curves=result.drift_curves,
        baseline=baseline, citation=citation, judge_summaries=dict(used),
        health=panels(judge_cols, summaries, used, health),
        settings={"seed": opts.seed, "n_boot": opts.n_boot, "interval": INTERVAL, "test": TEST,
                  "package_version": rolebench_eval.__version__,
                  "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")},
    )
    return board, used


def _write(board: Leaderboard, schema: Schema, task_runs: dict, used: dict, out: str | Path | None,
           how: tuple[Options, Workers | None], cache_dir: Path | None, clock) -> None:
    """The item browser's data, then (with ``out``) every output; a large board's figures are drawn by
    the worker processes (``how``: the options and the workers that draw, None to draw here) while the
    browser's lines are read and the pages written. The site is built whole beside ``out`` and swapped
    in at the end, under the folder's lock: a failure (a full disk) leaves the previous site whole."""
    opts, drawers = how
    if out is None:
        _browser(board, schema, task_runs, used, opts, cache_dir, clock)
        return
    from rolebench_eval.fileio import folder_lock, whole_folder

    from .figures import Drawing

    out = Path(out)
    what = "the leaderboard site"
    with folder_lock(out, what), whole_folder(out, what, marker="leaderboard.json") as stage:
        drawing = Drawing(board, stage, cache_dir, drawers)
        _browser(board, schema, task_runs, used, opts, cache_dir, clock)
        write_outputs(board, stage, cache_dir, drawing)
    board.outputs = {kind: out / path.relative_to(stage) for kind, path in board.outputs.items()}
    clock("write")


def _background(runs: list[RunResult]) -> bool:
    """Whether a board of these runs has its figures drawn by the worker processes."""
    items = sum(tr.items.doc_ids.size for run in runs for tr in run.tasks.values() if tr.items is not None)
    return items >= BACKGROUND_ITEMS and (os.cpu_count() or 1) > 1


def _browser(board: Leaderboard, schema: Schema, task_runs: dict, used: dict, opts: Options,
             cache_dir: Path | None, clock) -> None:
    if opts.browse_items > 0:
        from .items import items_data

        board.items = items_data(board, schema, task_runs, used, opts.browse_items, opts.browse_models, cache_dir)
        clock("item browser")


class _Clock:
    """Logs (at debug level) how long each step of a build took."""

    def __init__(self):
        import time

        self.now, self.last = time.perf_counter, time.perf_counter()

    def __call__(self, step: str) -> None:
        now = self.now()
        log.debug("leaderboard: %s took %.2f s", step, now - self.last)
        self.last = now


def write_outputs(board: Leaderboard, out: Path, cache_dir: Path | None = None, drawing=None) -> dict[str, Path]:
    """Write every output under ``out`` (each file atomically); returns and records the paths.

    ``cache_dir`` keeps the figures, redrawn only when what they show changes; ``drawing``
    is a :class:`figures.Drawing` already under way, waited for after the pages unless they embed a figure.
    """
    from rolebench_eval.fileio import write_atomic

    from . import figures, html, render

    out.mkdir(parents=True, exist_ok=True)
    written = {
        "markdown": write_atomic(out / "leaderboard.md", render.markdown(board)),
        "csv": write_atomic(out / "leaderboard.csv", render.board_csv(board)),
        "breakdowns_csv": write_atomic(out / "breakdowns.csv", render.breakdowns_csv(board)),
        "json": write_atomic(out / "leaderboard.json", render.board_json(board)),
    }
    drawing = drawing or figures.Drawing(board, out, cache_dir)
    if html.embeds_figures(board):
        drawing.result()  # written before the page that embeds them
    pages = html.write_pages(board, out, cache_dir)
    written = {**written, **drawing.result(), **pages}
    board.outputs = written
    return written
