"""``rolebench-eval board BOARD.yaml``: from a list of models to a leaderboard, resumable step by step.

The spec (:mod:`rolebench_eval.outputs.board_spec`) becomes a plan of steps, each one ``rolebench-eval``
verb with its own output folder: (model x task x shard) ``run`` -> ``merge`` per (model, task) ->
``judge`` per judge step -> ``leaderboard``, and a ``converse`` per chat-endpoint model when the spec
has ``conversations`` (the same scenario file for every model). A step calls the verb itself (:func:`rolebench_eval.cli.main`,
handed in as ``verb``, in a worker process, its output in a log file), so the board does nothing a verb does not.

A step writes into ``OUT/.staging/`` and its folder is renamed into place when the verb exits 0, then
its record (``OUT/.steps/<step>.json``: the command) is written: a step is done when its folder and a
record of the same command exist. A rerun after a kill at any moment redoes only unfinished steps; a
rerun of a finished board does no work. A failed step is reported with its log and the rest of the
grid goes on; the steps that need it are not run; the board then exits 4.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rolebench_eval.board_steps import LocalBackend, RayBackend, Step, Verb, is_done
from rolebench_eval.errors import EXIT_OK, EXIT_REQUESTS, EXIT_WRITE, CouldNotWrite, InputError
from rolebench_eval.fileio import ensure_writable, folder_lock
from rolebench_eval.outputs.board_spec import BoardSpec, read_spec

@dataclass
class Outcome:
    skipped: list[str] = field(default_factory=list)  # done before this run
    ran: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # name -> log path
    codes: dict[str, int] = field(default_factory=dict)  # name -> exit status of a failed step
    blocked: list[str] = field(default_factory=list)  # not run: a step they need failed


def _staging(out: Path, name: str) -> str:
    return str(out / ".staging" / name)


def _run_steps(spec: BoardSpec, out: Path, model, task: str) -> list[Step]:
    """The run steps of one (model, task), then its merge step when it has more than one shard."""
    n = spec.shards_of(task)
    base = f"{model.folder}.{task}"
    flags = ["--model", model.model, "--model_args", model.lm_eval_model_args(), "--tasks", task,
             "--log_samples", *(["--apply_chat_template"] if model.apply_chat_template else []), *model.run_args]
    merged = out / "runs" / model.folder / task
    if n == 1:
        return [Step(base, f"run {model.name} {task}", ("run", *flags, "--output_path", _staging(out, base)),
                     str(merged), gpus=model.resources.gpus, cpus=model.resources.cpus)]
    parts = [Step(f"{base}.{k}-of-{n}", f"run {model.name} {task} {k}/{n}",
                  ("run", *flags, "--shard", f"{k}/{n}", "--output_path", _staging(out, f"{base}.{k}-of-{n}")),
                  str(out / "parts" / model.folder / task / f"{k}-of-{n}"),
                  gpus=model.resources.gpus, cpus=model.resources.cpus) for k in range(n)]
    merge = Step(f"{base}.merge", f"merge {model.name} {task}",
                 ("merge", *(p.out for p in parts), "--output-path", _staging(out, f"{base}.merge")),
                 str(merged), needs=tuple(p.name for p in parts))
    return [*parts, merge]


def _converse_steps(spec: BoardSpec, out: Path) -> dict[str, Step]:
    """One ``converse`` per chosen chat-endpoint model (by its name), into ``OUT/conversations/<model>``."""
    conv = spec.conversations
    if conv is None:
        return {}
    steps = {}
    for model in conv.chosen(spec.models):
        served, url = model.chat_endpoint()
        name = f"converse.{model.folder}"
        argv = ("converse", conv.scenarios, "--model", served, *(["--base-url", url] if url else []), *conv.args,
                "--no-progress", "--out", _staging(out, name))
        steps[model.name] = Step(name, f"converse {model.name}", argv, str(out / "conversations" / model.folder),
                                 cpus=model.resources.cpus)
    return steps


def plan(spec: BoardSpec) -> list[Step]:
    """Every step of the board, each after the steps it needs (a pure function of the spec)."""
    out = Path(spec.out)
    grid = [_run_steps(spec, out, model, task) for model in spec.models for task in spec.tasks]
    by_model = _converse_steps(spec, out)
    conversing = list(by_model.values())
    steps = [s for cell in grid for s in cell] + conversing
    finals = {cell[-1].out: cell[-1].name for cell in grid}  # the step that writes runs/<model>/<task>
    inputs = list(finals)
    judged = []
    for i, judge in enumerate(spec.judges):
        name = f"judge.{i}"
        flags = [*(["--model", judge.model] if judge.model else []),
                 *(["--base-url", judge.base_url] if judge.base_url else []), *judge.args]
        # every judge is given the conversations too: the conversation judge reads only them, the others leave them out
        steps.append(Step(name, f"judge {judge.judge}", ("judge", *inputs, *(s.out for s in conversing), "--judge",
                                                         judge.judge, *flags, "--out", _staging(out, name)),
                          str(out / "judgments" / str(i)), needs=(*finals.values(), *(s.name for s in conversing))))
        judged.append(steps[-1])
    opts = spec.leaderboard
    names = [f"{out / 'runs' / m.folder / task}={m.name}" for m in spec.models for task in spec.tasks]
    names += [f"{s.out}={name}" for name, s in by_model.items()]
    flags = [*(a for n in names for a in ("--name", n)), "--models", str(models_file(spec)[0]),
             *(["--baseline", opts.baseline] if opts.baseline else []),
             *(["--include-incomparable"] if opts.include_incomparable else []),
             *(["--seed", str(opts.seed)] if opts.seed is not None else []),
             *(["--n-boot", str(opts.n_boot)] if opts.n_boot is not None else []), *opts.args,
             *(["--judges", *(j.out for j in judged)] if judged else [])]
    steps.append(Step("leaderboard", "leaderboard", ("leaderboard", *inputs, *(s.out for s in conversing), *flags,
                                                     "--out", _staging(out, "leaderboard")),
                      str(out / "leaderboard"), needs=(*finals.values(), *(j.name for j in judged),
                                                       *(s.name for s in conversing))))
    return steps


def models_file(spec: BoardSpec) -> tuple[Path, bytes]:
    """Where the leaderboard step reads the models' display data, and what it holds: named by its
    hash, so that the step's command, hence its record, changes when the display data does."""
    import hashlib

    from rolebench_eval.outputs.models import models_document

    data = models_document(spec.models)
    return Path(spec.out) / ".models" / f"{hashlib.sha256(data).hexdigest()[:16]}.yaml", data


def run_board(spec: BoardSpec, backend, progress: bool = True) -> Outcome:
    """Run every step not done yet on ``backend`` (:class:`LocalBackend`, :class:`RayBackend`), each step
    after those it needs."""
    from concurrent.futures import FIRST_COMPLETED, wait

    from tqdm import tqdm

    from rolebench_eval.fileio import write_atomic

    out, result = Path(spec.out), Outcome()
    # resolved here: a Ray worker has neither this process's environment nor its working folder
    data_dir = spec.data_dir or os.environ.get("ROLEBENCH_DATA_DIR")
    data_dir = data_dir and str(Path(data_dir).resolve())
    steps = plan(spec)
    models, document = models_file(spec)
    try:
        models.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(models, document)
    except OSError as err:  # before any step: nothing done yet to keep
        raise CouldNotWrite.from_os_error(err, "the models' display data", path=models) from None
    pending = {s.name: s for s in steps if not is_done(out, s)}
    result.skipped = [s.name for s in steps if s.name not in pending]
    bar = tqdm(total=len(steps), initial=len(result.skipped), desc="board", unit="step", disable=not progress)
    running = {}
    try:
        while pending or running:
            busy = {s.name for s in running.values()}
            for step in list(pending.values()):
                if any(n in result.failed or n in result.blocked for n in step.needs):
                    result.blocked.append(pending.pop(step.name).name)
                    bar.update()
                elif all(n not in pending and n not in busy for n in step.needs):
                    running[backend.submit(pending.pop(step.name), str(out), data_dir)] = step
                    busy.add(step.name)
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                step = running.pop(future)
                died = future.exception()
                code = 1 if died is not None else future.result()
                if code == EXIT_OK:
                    result.ran.append(step.name)
                else:
                    result.failed[step.name] = str(out / "logs" / f"{step.name}.log")
                    result.codes[step.name] = code
                    why = f"its worker died: {died!r}" if died is not None else f"exit {code}"
                    bar.write(f"failed: {step.label} ({why}); log: {result.failed[step.name]}")
                bar.update()
    finally:
        backend.close()
        bar.close()
    return result


def main(path: str, verb: Verb, jobs: int = 1, out: str | None = None, backend: str = "local",
         ray_address: str | None = None) -> int:
    """The verb: run the board at ``path``; 0 when every step is done, 4 when one failed."""
    if jobs < 1:
        raise InputError(None, None, "--jobs", f"expected a count >= 1, got {jobs}")
    spec = read_spec(path)
    if out is not None:
        spec.out = str(Path(out).resolve())
    ensure_writable(spec.out, "the board folder")  # before any step runs
    with folder_lock(spec.out, "the board folder"):  # a second board on it waits, then finds the steps done
        result = run_board(spec, RayBackend(ray_address, verb) if backend == "ray" else LocalBackend(jobs, verb))
    print(f"board {spec.out}: {len(result.ran)} step(s) run, {len(result.skipped)} already done, "
          f"{len(result.failed)} failed, {len(result.blocked)} not run (a step they need failed)")
    refused = [name for name, code in result.codes.items() if code == EXIT_WRITE]
    if refused:  # the machine refused a step's writes: the board's one line of exit 6
        raise CouldNotWrite(spec.out, f"the output of {len(refused)} step(s)", "the step exited 6 (no space, "
                            f"read-only, ...): see {result.failed[refused[0]]}", "finished steps are kept: make room "
                            "and rerun the same command")
    if result.failed or result.blocked:
        for name, log in result.failed.items():
            print(f"failed: {name}: see {log}", file=sys.stderr)
        return EXIT_REQUESTS
    print(f"leaderboard: {Path(spec.out) / 'leaderboard'}")
    return EXIT_OK
