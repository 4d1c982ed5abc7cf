"""Comparability guard rails: which runs may share a ranking.

A run is not comparable when it was made with ``--limit``, when a task's version or
prompt version differs from the installed task's, or when its data (the sha256 of the
test file, else the Hub commit) or its role descriptions differ from the reference:
the value most runs of that task share (ties go to the baseline's, then to the smallest
value, so the choice is deterministic). A run without recorded data provenance cannot
be checked and is not comparable either.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from rolebench_eval.catalogue import tasks as catalogue_tasks

from .inputs import RunResult


def installed_versions(tasks: Iterable[str]) -> dict[str, str | None]:
    """The installed ``metadata.version`` of each task (the catalogue's; None for a task it lacks)."""
    known = catalogue_tasks(custom=True, family=None)
    return {task: known[task].version if task in known else None for task in tasks}


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

    tasks = sorted({t for run in runs for t in run.tasks})
    versions = installed_versions(tasks)
    refs = {}
    for task in tasks:
        usable = [r.tasks[task] for r in runs if task in r.tasks and r.limit is None]
        base = next((r.tasks[task] for r in runs if r.name == baseline and task in r.tasks), None)
        refs[task] = {
            "version": versions[task],
            "prompt_version": PROMPT_VERSION,
            "data": _reference([t.data for t in usable], base.data if base else None),
            "role_descriptions": _reference([t.role_descriptions for t in usable],
                                            base.role_descriptions if base else None),
        }
    return refs


def reasons(run: RunResult, refs: dict[str, dict[str, str | None]], tasks: Iterable[str] | None = None) -> list[str]:
    """Why ``run`` (or its ``tasks`` only) is not comparable; an empty list when it is."""
    found = []
    if run.limit is not None:
        found.append(f"{run.path.name}: run with --limit {run.limit:g} (config.limit)")
    for task in sorted(run.tasks if tasks is None else tasks):
        tr = run.tasks[task]
        ref = refs[task]
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
