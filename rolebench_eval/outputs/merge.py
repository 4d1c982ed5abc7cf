"""Merging shard runs (``rolebench-eval run --shard K/N``) into the single run they are parts of.

A pure function of lm-eval output files: :func:`merge_parts` takes the parts' results and
samples and returns one results dict and one samples file per task that no reader can tell
from a single-process run:

- every sample line is a part's line, byte for byte (the shards keep the single run's
  ``doc_id``), in the single run's order (filter, then ``doc_id``);
- every task aggregate and stderr is recomputed from the samples, in that order, with
  lm-eval's own aggregation functions (``lm_eval.api.metrics``, the registry's aggregation of
  each metric), and every group row by lm-eval's own :meth:`lm_eval.api.group.Group.aggregate`;
- ``n-samples``, ``task_hashes`` and the evaluation time are the whole run's; the shard record
  (``configs.<task>.metadata.shard``) is dropped.

The parts must be the same model, tasks, task versions, data and generation settings, and
form a complete partition of every task without overlap; the first part that does not is
refused with one line naming it (:class:`~rolebench_eval.errors.InputError`, exit status 2).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable

from rolebench_eval.data import item_id
from rolebench_eval.errors import InputError
from rolebench_eval.fileio import whole_folder

from .runs import find_runs

SHARD_KEY = "shard"  # configs.<task>.metadata.shard: the shard record of tasks/shard.py
# Top-level fields every part must share, beside the per-task configs.
SAME = ("config.model", "config.model_args", "config.gen_kwargs", "config.limit", "config.bootstrap_iters",
        "model_name", "chat_template_sha", "system_instruction_sha", "fewshot_as_multiturn", "versions",
        "group_subtasks", "n-shot", "higher_is_better")


@dataclass
class Part:
    """One shard run: its results file and, per task, its samples file's lines."""

    path: Path  # the results file (named in every error about this part)
    results: dict
    samples: dict[str, list[str]]  # task -> the samples file's lines, as written
    sample_paths: dict[str, Path]


@dataclass
class Merged:
    results: dict
    samples: dict[str, list[str]]  # task -> lines, in the single run's order


def _get(data: dict, dotted: str):
    for key in dotted.split("."):
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _task_identity(config: dict) -> dict:
    """A task's config minus what differs between the parts of one run (the shard, the data folder's path)."""
    meta = dict(config.get("metadata") or {})
    meta.pop(SHARD_KEY, None)
    data = meta.pop("data", None)
    return {**config, "metadata": meta, "data.sha256": (data or {}).get("sha256"), "data.file": (data or {}).get("file")}


def check_same_run(parts: list[Part]) -> None:
    """Every part is the first part's model, tasks, versions, data and generation settings."""
    first = parts[0]
    tasks = sorted(first.results.get("configs") or {})
    for part in parts[1:]:
        for field in SAME:
            if _get(part.results, field) != _get(first.results, field):
                raise InputError(part.path, None, field, f"differs from {first.path}: not a part of the same run")
        if sorted(part.results.get("configs") or {}) != tasks:
            raise InputError(part.path, None, "configs", f"other tasks than {first.path} ({', '.join(tasks)})")
        for task in tasks:
            mine, theirs = (_task_identity(p.results["configs"][task]) for p in (part, first))
            for key in sorted(set(mine) | set(theirs)):
                if mine.get(key) != theirs.get(key):
                    raise InputError(part.path, None, f"configs.{task}.{key}",
                                     f"differs from {first.path}: not a part of the same run")
            if _get(part.results, f"n-samples.{task}.original") != _get(first.results, f"n-samples.{task}.original"):
                raise InputError(part.path, None, f"n-samples.{task}.original", f"differs from {first.path}")


def _record(part: Part, task: str) -> dict:
    record = _get(part.results, f"configs.{task}.metadata.{SHARD_KEY}")
    if not (isinstance(record, dict) and {"index", "count", "docs", "item_ids_sha256"} <= record.keys()):
        raise InputError(part.path, None, f"configs.{task}.metadata.{SHARD_KEY}",
                         "no shard record: not a shard run (run it with rolebench-eval run ... --shard K/N)")
    if part.results.get("config", {}).get("limit") is not None:
        raise InputError(part.path, None, "config.limit", "a run with --limit is not a whole shard")
    return record


def check_partition(parts: list[Part], task: str) -> None:
    """Shards 0..N-1 of ``task``, each exactly once, all of N."""
    seen: dict[int, Part] = {}
    count = _record(parts[0], task)["count"]
    for part in parts:
        record = _record(part, task)
        if record["count"] != count:
            raise InputError(part.path, None, f"configs.{task}.metadata.{SHARD_KEY}.count",
                             f"shard of {record['count']} parts, {parts[0].path} of {count}: not a part of the same run")
        if record["index"] in seen:
            raise InputError(part.path, None, f"configs.{task}.metadata.{SHARD_KEY}.index",
                             f"duplicated part: shard {record['index']}/{count} is also {seen[record['index']].path}")
        seen[record["index"]] = part
    missing = [f"{k}/{count}" for k in range(count) if k not in seen]
    if missing:
        raise InputError(None, None, f"configs.{task}.metadata.{SHARD_KEY}",
                         f"missing part: shard {', '.join(missing)} of {task} is not among the inputs "
                         f"(given: {', '.join(f'{k}/{count}' for k in sorted(seen))})")


def _rows(part: Part, task: str) -> list[tuple[dict, str]]:
    """The part's samples of ``task`` (parsed, raw line), checked against its shard record."""
    if task not in part.samples:
        raise InputError(part.path, None, "samples", f"no samples file for {task} beside it (run with --log_samples)")
    path, rows = part.sample_paths[task], []
    for number, line in enumerate(part.samples[task], 1):
        try:
            rows.append((json.loads(line), line))
        except ValueError as err:
            raise InputError(path, number, None, f"not JSON: {err}") from None
    record = _record(part, task)
    docs = {row["doc_id"] for row, _ in rows}
    items = sorted({row["doc"].get("item_id") or item_id(row["doc"]["role"], row["doc"]["question"]) for row, _ in rows})
    if len(docs) != record["docs"] or hashlib.sha256("\n".join(items).encode()).hexdigest() != record["item_ids_sha256"]:
        raise InputError(path, None, "doc_id", f"these samples are not the documents of its results' shard record "
                                               f"({record['docs']} documents)")
    return rows


def merged_samples(parts: list[Part], task: str) -> list[tuple[dict, str]]:
    """All parts' samples of ``task`` in the single run's order: lm-eval logs filter by filter, then by doc_id."""
    rows, owner = [], {}
    for part in parts:
        for row, line in _rows(part, task):
            key = (row["filter"], row["doc_id"])
            if key in owner:
                raise InputError(part.sample_paths[task], None, "doc_id",
                                 f"document {row['doc_id']} is also in {owner[key]}: the parts overlap")
            owner[key] = part.sample_paths[task]
            rows.append((row, line))
    filters = list(dict.fromkeys(row["filter"] for row, _ in rows))
    rows.sort(key=lambda r: (filters.index(r[0]["filter"]), r[0]["doc_id"]))
    original = _get(parts[0].results, f"n-samples.{task}.original")
    ids = {row["doc_id"] for row, _ in rows}
    if original is not None and ids != set(range(original)):
        raise InputError(None, None, task, f"the parts hold {len(ids)} of its {original} documents")
    return rows


def task_row(rows: list[dict], config: dict, alias: str, bootstrap_iters) -> dict:
    """A task's results row from its samples, as lm-eval aggregates (registry aggregation, its stderr)."""
    from lm_eval.api.metrics import stderr_for_metric
    from lm_eval.api.registry import get_aggregation

    declared = {m["metric"]: m.get("aggregation") for m in config.get("metric_list") or []}
    values: dict[tuple[str, str], list] = {}
    for row in rows:
        for metric in row["metrics"]:
            values.setdefault((metric, row["filter"]), []).append(row[metric])
    out, sample_len = {}, 0
    for (metric, filter_key), items in values.items():
        name = declared.get(metric) or "mean"
        agg = get_aggregation(name) if isinstance(name, str) else None
        if agg is None:
            raise InputError(None, None, f"configs.{config.get('task')}.metric_list.{metric}",
                             f"aggregation {str(name)[:40]!r} is not one of lm-eval's registered aggregations: "
                             "cannot recompute it from the samples")
        out[f"{metric},{filter_key}"] = agg(items)
        sample_len = max(sample_len, len(items))
        stderr = None
        if isinstance(bootstrap_iters, int) and bootstrap_iters > 0:
            iters = min(bootstrap_iters, 100) if metric in ("bleu", "chrf", "chrf++", "ter") else bootstrap_iters
            stderr = stderr_for_metric(metric=agg, bootstrap_iters=iters)
        out[f"{metric}_stderr,{filter_key}"] = stderr(items) if stderr and len(items) > 1 else "N/A"
    return {"name": config.get("task"), "alias": alias, "sample_len": sample_len, **out}


def _leaves(name: str, subtasks: dict[str, list[str]]) -> list[str]:
    return [leaf for child in subtasks.get(name, []) for leaf in (_leaves(child, subtasks) if child in subtasks
                                                                   else [child])]


def group_rows(rows: dict[str, dict], subtasks: dict[str, list[str]],
               group_config: Callable[[str], dict]) -> dict[str, dict]:
    """Every group's row, children before parents, by lm-eval's own ``Group.aggregate``."""
    from lm_eval.api.group import Group

    class Leaves(Group):  # the group's leaf tasks by name: the merge has their rows, not Task objects
        def get_all_tasks(self, recursive: bool = True):
            return [_Named(leaf) for leaf in _leaves(self.name, subtasks)]

    done: dict[str, dict] = {}

    def visit(name: str) -> None:
        for child in subtasks.get(name, []):
            if child in subtasks and child not in done:
                visit(child)
        done[name] = Leaves.from_config(group_config(name)).aggregate({**rows, **done})

    for name in subtasks:
        if name not in done:
            visit(name)
    return done


@dataclass
class _Named:
    task_name: str


def merge_parts(parts: list[Part], group_config: Callable[[str], dict]) -> Merged:
    """The single run of which ``parts`` are the shards (see the module docstring)."""
    from lm_eval.utils import hash_string

    if not parts:
        raise InputError(None, None, None, "no parts to merge")
    check_same_run(parts)
    first = parts[0].results
    results = json.loads(json.dumps(first))  # a deep copy of the first part, then every merged field replaced
    subtasks = first.get("group_subtasks") or {}
    bootstrap_iters = _get(first, "config.bootstrap_iters")
    samples, rows = {}, {}
    for task in sorted(first.get("configs") or {}):
        check_partition(parts, task)
        merged = merged_samples(parts, task)
        samples[task] = [line for _, line in merged]
        parsed = [row for row, _ in merged]
        alias = (first["results"].get(task) or {}).get("alias", task)
        rows[task] = task_row(parsed, first["configs"][task], alias, bootstrap_iters)
        results["configs"][task]["metadata"].pop(SHARD_KEY, None)
        results["n-samples"][task] = {"original": first["n-samples"][task]["original"],
                                      "effective": rows[task]["sample_len"]}
        results.setdefault("task_hashes", {})[task] = hash_string(
            "".join(r["doc_hash"] + r["prompt_hash"] + r["target_hash"] for r in parsed))
    groups = group_rows(rows, subtasks, group_config)
    results["results"] = {name: rows.get(name) or groups[name] for name in first["results"]}
    if "groups" in first:
        results["groups"] = {name: groups[name] for name in first["groups"]}
    times = [_get(p.results, "total_evaluation_time_seconds") for p in parts]
    if all(t is not None for t in times):
        results["total_evaluation_time_seconds"] = str(sum(float(t) for t in times))
    dates = [p.results.get("date") for p in parts if isinstance(p.results.get("date"), (int, float))]
    if dates:
        results["date"] = min(dates)
    return Merged(results, samples)


# ------------------------------------------------------------------ the edges: read the parts, write the run


def read_parts(inputs: Iterable[str | os.PathLike]) -> list[Part]:
    """Every run under ``inputs`` (folders, results files) as a part, with its samples files' lines."""
    runs, errors = find_runs(inputs)
    if errors:
        raise errors[0]
    parts = []
    for run in runs:
        # split on "\n" only: lm-eval writes ensure_ascii=False, so U+2028 may sit inside a line
        samples = {task: path.read_text(encoding="utf-8").split("\n") for task, path in run.samples.items()}
        parts.append(Part(run.results_path, run.results,
                          {task: [line for line in lines if line] for task, lines in samples.items()},
                          dict(run.samples)))
    return parts


def write_merged(merged: Merged, out: str | os.PathLike) -> Path:
    """``OUT/<model>/results_<date>.json`` and ``samples_<task>_<date>.jsonl``, as lm-eval lays them out.

    The folder is built beside ``out`` and renamed into place: ``out`` is whole or absent.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(out, None, "--output_path", "already exists and is not empty; merge writes a new folder")
    date = datetime.now().isoformat().replace(":", "-")
    name = str(merged.results.get("model_name_sanitized") or "merged")
    with whole_folder(out, "the merged run") as staging:
        folder = staging / name
        folder.mkdir()
        text = json.dumps(merged.results, indent=2, ensure_ascii=False)
        (folder / f"results_{date}.json").write_text(text, encoding="utf-8")
        for task, lines in merged.samples.items():
            (folder / f"samples_{task}_{date}.jsonl").write_text("".join(f"{line}\n" for line in lines),
                                                                  encoding="utf-8")
    return out / name / f"results_{date}.json"
