"""lm-eval runs as leaderboard inputs: aggregates, labels and the comparability checks.

Runs are found and named through the core's output contract (``rolebench_eval.outputs``:
base model plus adapter, ``base+adapter``); judge summaries are matched on that same run
name. A run of the ``rolegpt`` replay is labelled ``RoleGPT (replay)`` (``outputs.models``). A
``PATH=LABEL`` rename applies to the runs found at an input, results file, folder, run name or
adapter; every rename must match a run.

A run is not comparable when it was made with ``--limit``, when a task's version or prompt
version differs from the installed task's, or when its data (the sha256 of the test file,
else the Hub commit) or its role descriptions differ from the reference: the value most
runs of that task share (ties go to the baseline's, then to the smallest value, so the
choice is deterministic). A run without recorded data provenance cannot be checked and is
not comparable either.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rolebench_eval import outputs
from rolebench_eval.catalogue import live_tasks
from rolebench_eval.catalogue import metrics as catalogue_metrics
from rolebench_eval.catalogue import split_depth_metric
from rolebench_eval.catalogue import tasks as catalogue_tasks
from rolebench_eval.errors import InputError
from rolebench_eval.outputs.models import REPLAY_LABEL, REPLAY_MODEL

from .model import TaskInfo, clean


@dataclass(eq=False)
class TaskRun:
    """One task of one run: aggregate scores, provenance and (when logged) per-item scores."""

    task: str
    values: dict[str, float]
    version: str | None
    data: str | None  # data fingerprint: sha256 of the test file, else the Hub commit
    prompt_version: str | None
    role_descriptions: str | None
    n_original: int | None
    raw_coverage: str | None = None  # what the task recorded (metadata.raw.coverage), e.g. "4 of 6 items ..."
    samples_path: Path | None = None
    items: outputs.Scores | None = None


@dataclass(eq=False)
class RunResult:
    """One ``results_*.json`` file and what it says about the model."""

    path: Path
    source: Path  # the input argument it was found under
    run_name: str  # the contract's name of the run (what judge summaries carry)
    model: str
    adapter: str | None
    date: str
    limit: float | None
    samples: dict[str, Path] = field(default_factory=dict)
    tasks: dict[str, TaskRun] = field(default_factory=dict)
    label: str | None = None  # from a rename; else the row gets a short default name
    ignored: dict[str, str] = field(default_factory=dict)  # catalogue task -> why it has no place on the board

    @property
    def key(self) -> str:
        """What the run's row is keyed on: its label, else its run name."""
        return self.label if self.label is not None else self.run_name


def per_item_metrics(info: TaskInfo, values: Mapping[str, float]) -> tuple[str, ...]:
    """The per-item metrics to read from a samples file of this task: its catalogue metrics; of a
    multi-turn task the main ones (paper metric, character breaks) at each depth the run has; of a
    conversations task both (each conversation's means and its turns' values: the drift curve)."""
    main = {m for m in info.metrics if catalogue_metrics()[m].main}
    per_depth = tuple(sorted(m for m in values if (hit := split_depth_metric(m)) and hit[0] in main))
    if info.multi_turn:
        return per_depth
    if info.live:
        return tuple(m for m in info.metrics if m in values) + per_depth
    return tuple(m for m in info.metrics if m in values)


def _metric_values(path: Path, task: str, block: Mapping) -> dict[str, float]:
    values = {}
    for key, value in block.items():
        metric, _, filt = key.partition(",")
        if filt != "none" or metric.endswith("_stderr") or value in (None, "N/A"):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(path, None, f"results.{task}.{key}", f"expected a number, got {value!r}")
        values[metric] = float(value)
    return values


def _task_run(run: outputs.Run, task: str) -> TaskRun:
    data = run.results
    meta = run.task_metadata(task)
    provenance = meta.get("data") if isinstance(meta.get("data"), dict) else {}
    version = meta.get("version", (data.get("versions") or {}).get(task))
    n_samples = (data.get("n-samples") or {}).get(task) or {}
    return TaskRun(
        task=task,
        values=_metric_values(run.results_path, task, data["results"][task]),
        version=None if version is None else str(float(version)) if isinstance(version, (int, float)) else str(version),
        data=provenance.get("sha256") or provenance.get("commit"),
        prompt_version=None if meta.get("prompt_version") is None else str(meta["prompt_version"]),
        role_descriptions=meta.get("role_descriptions"),
        n_original=n_samples.get("original") if isinstance(n_samples, dict) else None,
        raw_coverage=clean(meta["raw"]["coverage"]) if isinstance(meta.get("raw"), dict)
        and isinstance(meta["raw"].get("coverage"), str) else None,
    )


def read_run(run: outputs.Run, tasks: Iterable[str]) -> RunResult:
    """The aggregate part of a run (no per-item scores yet)."""
    config = run.results.get("config")
    if not isinstance(config, dict):
        raise InputError(run.results_path, None, "config", f"expected an object, got {type(config).__name__}")
    limit = config.get("limit")
    result = RunResult(
        path=run.results_path, source=run.source, run_name=clean(run.name), model=clean(run.model),
        adapter=None if run.adapter is None else clean(run.adapter),
        date=run.date,  # lm-eval's save time, ISO-like: sorts as text
        limit=float(limit) if isinstance(limit, (int, float)) and not isinstance(limit, bool) else None,
        samples=dict(run.samples),
        label=REPLAY_LABEL if config.get("model") == REPLAY_MODEL else None,  # else a short name
    )
    tasks = list(tasks)
    for task in tasks:
        if isinstance(run.results["results"].get(task), dict):
            task_run = _task_run(run, task)
            if task_run.values:
                result.tasks[task] = task_run
    known = catalogue_tasks(custom=True, family=None)
    for task in run.results["results"]:
        if task in known and task not in tasks:
            result.ignored[task] = (f"a prompting-study variant ({known[task].family}), which has no column "
                                    "on the board" if known[task].family in ("fewshot", "dialogue")
                                    else f"a {known[task].family} task, which has no column on the board")
    if not result.tasks:
        also = f" (only {', '.join(sorted(result.ignored))}: no columns)" if result.ignored else ""
        raise InputError(run.results_path, None, "results", f"no RoleBench task of the board with scores in this "
                                                            f"file{also}")
    return result


def ignored_notes(runs: list[RunResult]) -> list[str]:
    """One line per catalogue task that some runs hold but the board has no place for."""
    by_task: dict[tuple[str, str], list[str]] = {}
    for run in runs:
        for task, why in run.ignored.items():
            by_task.setdefault((task, why), []).append(run.run_name)
    out = []
    for (task, why), names in sorted(by_task.items()):
        shown = ", ".join(sorted(set(names))[:3]) + (f" and {len(set(names)) - 3} more" if len(set(names)) > 3 else "")
        out.append(f"{task} left out of {len(names)} run(s) ({shown}): {why}")
    return out


# --------------------------------------------------------------------------- labels


def _keys(run: RunResult) -> tuple[set[str], set[str]]:
    """What a rename may name a run by: (names, resolved paths)."""
    names = {str(run.source), str(run.path), str(run.path.parent), run.run_name}
    if run.adapter:
        names.add(run.adapter)
    paths = {str(Path(p).resolve()) for p in (run.source, run.path, run.path.parent)}
    return names, paths


def _matches(key: str, run: RunResult) -> bool:
    names, paths = _keys(run)
    return key in names or (key not in ("", ".") and str(Path(key).resolve()) in paths)


def split_name(spec: str, runs: list[RunResult]) -> tuple[str, str]:
    """``PATH=LABEL`` split at the ``=`` whose PATH names a run (a label may hold ``=`` too)."""
    cuts = [i for i, ch in enumerate(spec) if ch == "="]
    fits = [(spec[:i], spec[i + 1:]) for i in cuts if spec[:i] and spec[i + 1:].strip()
            and any(_matches(spec[:i], r) for r in runs)]
    if not cuts:
        raise InputError(None, None, "--name", f"{spec!r}: expected PATH=LABEL")
    if not fits:
        raise InputError(None, None, "--name", f"{spec!r}: no input, results file, folder or model name matches "
                                               "the text before any '='")
    if len(fits) > 1:
        raise InputError(None, None, "--name", f"{spec!r}: ambiguous, both {fits[0][0]!r} and {fits[1][0]!r} "
                                               "name runs")
    return fits[0]


def apply_names(runs: list[RunResult], names: Mapping[str, str], reserved: Iterable[str] = ()) -> None:
    """Label the runs each ``PATH -> LABEL`` names; a PATH that names no run, or a LABEL that is
    one of the ``reserved`` row names (the paper's), is an error."""
    reserved = set(reserved)
    for key, label in names.items():
        if clean(label) in reserved:
            raise InputError(None, None, "--name", f"label {clean(label)!r} is the name of a row of the RoleLLM "
                                                   f"paper on the board; choose another label")
        hits = [r for r in runs if _matches(key, r)]
        if not hits:
            raise InputError(None, None, "--name", f"{key!r} names no input, results file, folder or model "
                                                   f"(runs: {', '.join(sorted({r.run_name for r in runs}))})")
        for run in hits:
            run.label = clean(label)


def _parts(name: str) -> list[str]:
    return [p for p in re.split(r"[/\\]+", name) if p] or [name]


def _abbrev(model: str, adapter: str | None, depth: int) -> str:
    return "+".join("/".join(_parts(part)[-depth:]) for part in (model, adapter) if part)


def short_names(full: dict[str, tuple[str, str | None]], taken: set[str]) -> dict[str, str]:
    """Short unique labels: the model's last path part (``+`` the adapter's), longer where two collide.

    Args:
        full: row key (its run name) -> (model, adapter).
        taken: labels already used (renames), never given out again.
    """
    depth = {key: 1 for key in full}
    longest = {key: max(len(_parts(part)) for part in parts if part) for key, parts in full.items()}
    while True:
        made = {key: _abbrev(*full[key], depth[key]) for key in full}
        counts = Counter(made.values())
        clash = [k for k in full if counts[made[k]] > 1 or made[k] in taken]
        grow = [k for k in clash if depth[k] < longest[k]]
        if not grow:
            break
        for key in grow:
            depth[key] += 1
    used = set(taken) | {made[k] for k in full if k not in clash}
    for key in clash:  # as long as they can get and still the same: the run name, numbered if need be
        name, n = key, 1
        while name in used:
            n += 1
            name = f"{key} #{n}"
        made[key] = name
        used.add(name)
    return made


# --------------------------------------------------------------------------- comparability


def _reference(values: list[str | None], preferred: str | None) -> str | None:
    counts = Counter(v for v in values if v is not None)
    if not counts:
        return None
    top = max(counts.values())
    tied = sorted(v for v, c in counts.items() if c == top)
    return preferred if preferred in tied else tied[0]


def _short(value: str) -> str:
    return value[:12] + "…" if len(value) > 13 else value


def references(runs: list[RunResult], baseline: str | None) -> dict[str, dict[str, str | None]]:
    """Per task: the installed version and prompt version, and the reference data and descriptions."""
    from rolebench_eval.prompts import PROMPT_VERSION

    known = {**catalogue_tasks(custom=True, family=None), **live_tasks()}  # every family's installed version
    refs = {}
    for task in sorted({t for run in runs for t in run.tasks}):
        usable = [r.tasks[task] for r in runs if task in r.tasks and r.limit is None]
        base = next((r.tasks[task] for r in runs if baseline in (r.key, r.run_name) and task in r.tasks), None)
        refs[task] = {
            "version": known[task].version if task in known else None,
            "prompt_version": PROMPT_VERSION,
            "data": _reference([t.data for t in usable], base.data if base else None),
            "role_descriptions": _reference([t.role_descriptions for t in usable],
                                            base.role_descriptions if base else None),
        }
    return refs


def reasons(run: RunResult, refs: dict[str, dict[str, str | None]], tasks: Iterable[str]) -> list[str]:
    """Why ``run`` (its ``tasks`` only) is not comparable; an empty list when it is."""
    found = []
    if run.limit is not None:
        found.append(f"{run.path.name}: run with --limit {run.limit:g} (config.limit)")
    for task in sorted(tasks):
        tr, ref = run.tasks[task], refs[task]
        if ref["version"] is not None and tr.version != ref["version"]:
            found.append(f"{task}: task version {tr.version}, the installed task is {ref['version']}")
        if tr.prompt_version is not None and tr.prompt_version != ref["prompt_version"]:
            found.append(f"{task}: prompt version {tr.prompt_version}, the installed prompts are "
                         f"{ref['prompt_version']}")
        if tr.data is None:
            found.append(f"{task}: no data sha256 or commit recorded (configs.{task}.metadata.data)")
        elif ref["data"] is not None and tr.data != ref["data"]:
            found.append(f"{task}: data {_short(tr.data)} differs from {_short(ref['data'])}, "
                         "which most runs used")
        if ref["role_descriptions"] is not None and tr.role_descriptions not in (None, ref["role_descriptions"]):
            found.append(f"{task}: role descriptions {tr.role_descriptions!r}, most runs had "
                         f"{ref['role_descriptions']!r}")
    return found
