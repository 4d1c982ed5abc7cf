"""Running RoleBench through lm-eval: a Python API and the ``rolebench-eval run`` pass-through.

Both register this package's models (``rolegpt``) and find the task YAMLs in every
install mode. When only RoleBench tasks are asked for, lm-eval's index of its ~15k
built-in tasks is skipped (about 15 s per run).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterator, Sequence

from rolebench_eval import catalogue
from rolebench_eval.errors import InputError, Interrupted
from rolebench_eval.fileio import ensure_writable

from . import TASKS_DIR, resumable, shard


def rolebench_task_names() -> set[str]:
    """Task and group names this package defines (the catalogue, which the YAMLs match)."""
    return catalogue.names()


def only_rolebench(tasks: Sequence[str] | str) -> bool:
    names = tasks.split(",") if isinstance(tasks, str) else list(tasks)
    known = rolebench_task_names()
    return bool(names) and all(name.strip() in known for name in names)


def _overlay_installed() -> bool:
    """True when a pip install put the YAMLs into lm_eval/tasks/rolebench (found by default)."""
    import lm_eval.tasks

    return (Path(lm_eval.tasks.__file__).parent / "rolebench" / "_rolebench.yaml").is_file()


def _include_paths(include_path, include_defaults: bool) -> list:
    """The caller's include paths plus ours, unless the defaults already hold the overlay."""
    if include_path is None:
        paths = []
    else:
        paths = list(include_path) if isinstance(include_path, (list, tuple)) else [include_path]
    if not (include_defaults and _overlay_installed()):
        paths.append(TASKS_DIR)
    return paths


def task_manager(include_defaults: bool = False, metadata: dict | None = None, include_path=None):
    """An lm-eval TaskManager that knows the RoleBench tasks (and the built-ins if asked)."""
    from lm_eval.tasks import TaskManager

    paths = _include_paths(include_path, include_defaults)
    return TaskManager(include_path=paths, include_defaults=include_defaults, metadata=metadata)


def evaluate(
    model: str = "rolegpt",
    tasks: Sequence[str] = ("rolebench",),
    model_args: str | dict | None = None,
    data_dir: str | os.PathLike | None = None,
    output_path: str | os.PathLike | None = None,
    **kwargs: Any,
) -> dict | None:
    """``lm_eval.simple_evaluate`` on RoleBench tasks; returns lm-eval's results dict.

    ``data_dir`` selects a local RoleBench copy (else ``$ROLEBENCH_DATA_DIR``, else the Hub).
    ``output_path`` writes results (and samples when ``log_samples``) as ``lm_eval
    --output_path`` does. Other keyword arguments go to ``simple_evaluate`` unchanged.
    """
    import lm_eval
    from lm_eval.loggers import EvaluationTracker

    from . import replay  # noqa: F401  (registers the model)

    if model == "rolegpt" and not model_args:
        model_args = "model=rolegpt"  # names the output folder after the model
    from lm_eval.utils import simple_parse_args_string

    # As lm-eval's CLI does: tasks see the model args (e.g. peft=) as metadata.
    args = simple_parse_args_string(model_args) if isinstance(model_args, str) else dict(model_args or {})
    user = dict(kwargs.pop("metadata", None) or {})
    if only_rolebench(tasks):
        check_metadata_keys(user)
    metadata = args | user
    if data_dir is not None:
        metadata["data_dir"] = str(data_dir)
    tm = task_manager(include_defaults=not only_rolebench(tasks), metadata=metadata)
    tracker = EvaluationTracker(output_path=str(output_path)) if output_path else None
    results = lm_eval.simple_evaluate(model=model, model_args=model_args, tasks=list(tasks), task_manager=tm,
                                      evaluation_tracker=tracker, **kwargs)
    if tracker is not None and results is not None:
        samples = results.pop("samples", None)  # lm-eval's CLI saves the aggregate without them
        tracker.save_results_aggregated(results=results, samples=samples)
        for task, task_samples in (samples or {}).items():
            tracker.save_results_samples(task_name=task, samples=task_samples)
        if samples is not None:
            results["samples"] = samples
    return results


def _user_metadata(text: str | None) -> dict:
    """The user's ``--metadata`` as lm-eval reads it (JSON, or ``k=v,...``); {} when absent or unreadable
    (lm-eval then says what is wrong with it)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        from lm_eval.utils import simple_parse_args_string

        try:
            value = simple_parse_args_string(text)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def check_metadata_keys(metadata: dict) -> None:
    """A ``--metadata`` key no RoleBench task reads: one or two edits from a known key (``depth``, ``K``)
    is bad input with a did-you-mean; any other gets a warning naming the keys the tasks read."""
    import difflib
    import logging

    from .multiturn import METADATA_KEYS as CONTINUITY
    from .studies import METADATA_KEYS as STUDIES
    from .task import METADATA_KEYS as EVERY_TASK

    known = (*EVERY_TASK, *CONTINUITY, *STUDIES)
    for key in (k for k in metadata if k not in known):
        near = [k for k in known if _edits(str(key).lower(), k) <= min(2, len(k) // 3)]  # "k": its case only
        if near:
            best = difflib.get_close_matches(str(key).lower(), near, n=1, cutoff=0) or near
            raise InputError("--metadata", None, key, f"no RoleBench task reads this key; did you mean {best[0]!r}?")
        logging.getLogger(__name__).warning("--metadata key %r is read by no RoleBench task (ignored); the tasks "
                                            "read: %s", key, ", ".join(known))


def _edits(a: str, b: str) -> int:
    """How many characters differ between ``a`` and ``b`` (insertions, deletions, replacements; difflib's
    matching blocks, an upper bound of the edit distance)."""
    import difflib

    return sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b).get_opcodes()
               if tag != "equal")


def _flag(argv: Sequence[str], name: str, short: str | None = None) -> str | None:
    """The value given to ``name`` (``--x v`` or ``--x=v``) in an lm-eval command line, if any."""
    for i, arg in enumerate(argv):
        if arg in (name, short) and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _shard_to_metadata(argv: list[str]) -> list[str]:
    """``--shard K/N`` (ours) becomes ``--metadata '{"shard": "K/N"}'``, which lm-eval merges with the user's."""
    value, rest, i = None, [], 0
    while i < len(argv):
        if argv[i] == "--shard":
            if i + 1 >= len(argv):
                raise InputError("--shard", None, None, "expected K/N after --shard")
            value, i = argv[i + 1], i + 2
            continue
        if argv[i].startswith("--shard="):
            value = argv[i].split("=", 1)[1]
        else:
            rest.append(argv[i])
        i += 1
    if value is None:
        return rest
    k, n = shard.parse_shard(value)
    return [*rest, "--metadata", json.dumps({shard.METADATA_KEY: f"{k}/{n}"})]


@contextlib.contextmanager
def _rolebench_task_manager(include_defaults: bool) -> Iterator[None]:
    """Make lm-eval's CLI build its TaskManager through :func:`task_manager`."""
    import lm_eval.tasks

    original = lm_eval.tasks.TaskManager

    class _RoleBenchTaskManager(original):
        def __init__(self, verbosity=None, include_path=None, include_defaults=include_defaults, metadata=None):
            paths = _include_paths(include_path, include_defaults)
            super().__init__(verbosity, paths, include_defaults, metadata)

    lm_eval.tasks.TaskManager = _RoleBenchTaskManager
    try:
        yield
    finally:
        lm_eval.tasks.TaskManager = original


def _without(argv: list[str], flag: str) -> tuple[list[str], bool]:
    """``argv`` without the bare ``flag``, and whether it was there."""
    rest = [a for a in argv if a != flag]
    return rest, len(rest) != len(argv)


def _set_flag(argv: list[str], name: str, short: str | None, value: str) -> list[str]:
    """``argv`` with the value of ``name`` (``--x v``, ``-x v`` or ``--x=v``) replaced by ``value``."""
    out = list(argv)
    for i, arg in enumerate(out):
        if arg in (name, short) and i + 1 < len(out):
            out[i + 1] = value
        elif arg.startswith(name + "="):
            out[i] = f"{name}={value}"
    return out


def _kept(cache: str | None, output: str | None) -> str:
    """What a stopped run leaves, and what the same command then redoes (the Ctrl-C and write-fault lines)."""
    if cache is None:
        why = "no --output_path" if output is None else "--no-cache"
        return f"no answer was kept ({why}): a rerun computes every answer again"
    return (f"{resumable.cached_answers(cache)} answers are kept in the cache {cache}_rank*.db: the same command "
            f"computes only the answers not in it, then scores and writes the results")


def run_lm_eval(argv: Sequence[str]) -> int:
    """``lm_eval run <argv>``, with RoleBench's tasks and models available; returns the exit status.

    lm-eval's own argument errors exit through ``SystemExit`` as usual; a RoleBench input error
    (a bad data folder, a malformed file) propagates as :class:`~rolebench_eval.errors.InputError`.
    With ``--output_path`` every answer is cached beside the output and the output files appear
    whole or not at all (:mod:`.resumable`); Ctrl-C is :class:`~rolebench_eval.errors.Interrupted`,
    saying what a rerun redoes.
    """
    from lm_eval.__main__ import cli_evaluate

    from . import replay  # noqa: F401  (registers the model)

    argv = list(argv)
    if argv and argv[0] == "run":
        argv = argv[1:]
    if "-h" in argv or "--help" in argv:
        print(shard.HELP + "\n\n" + resumable.HELP + "\n")
    if only_rolebench(_flag(argv, "--tasks", "-t") or ""):  # other tasks read keys of their own
        check_metadata_keys(_user_metadata(_flag(argv, "--metadata")))
    output = _flag(argv, "--output_path", "-o")
    if output and not output.endswith(".json"):  # a folder (lm-eval also takes a results file's name)
        ensure_writable(output, "the run's lm-eval outputs")  # before any model is loaded
    argv = _shard_to_metadata(argv)
    if _flag(argv, "--model") == "rolegpt" and _flag(argv, "--model_args") is None:
        argv += ["--model_args", "model=rolegpt"]  # else lm-eval names the output folder at random
    argv, no_cache = _without(argv, resumable.NO_CACHE)
    cache = _flag(argv, "--use_cache")
    if cache is None and output and not no_cache:
        cache = resumable.default_cache(output, _flag(argv, "--model"), _flag(argv, "--model_args"))
        argv += ["--use_cache", cache]
    stage = resumable.staging(output) if output else None
    if stage is not None:
        argv = _set_flag(argv, "--output_path", "-o", resumable.staged_output(output, stage))
    include_defaults = not only_rolebench(_flag(argv, "--tasks", "-t") or "")
    saved = sys.argv
    sys.argv = ["lm_eval", "run", *argv]
    try:
        with _rolebench_task_manager(include_defaults), resumable.save_failures() as failures:
            cli_evaluate()
        if stage is not None:
            resumable.publish(output, stage, "--log_samples" in argv or "-s" in argv, _kept(cache, output), failures)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted: no results were written; {_kept(cache, output)}") from None
    finally:
        sys.argv = saved
        if stage is not None and stage.exists():  # stopped or failed: no half output
            resumable.discard(stage)
    return 0


def group_config(name: str) -> dict:
    """A RoleBench group's YAML config (``rolebench-eval merge`` recomputes group rows with it)."""
    entry = task_manager().task_index.get(name)
    if entry is None or not isinstance(entry.cfg, dict) or "group" not in entry.cfg:
        raise InputError(None, None, name, "not a group of this package: cannot recompute its row")
    return entry.cfg
