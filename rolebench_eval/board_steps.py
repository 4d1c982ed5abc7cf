"""How one step of a board runs: in a worker process of a local pool or as a Ray task.

A step calls a ``rolebench-eval`` verb with its output in a log file; its staging folder is renamed into
place when the verb exits 0, and then its record is written (``OUT/.steps/<step>.json``: the command).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rolebench_eval.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_WRITE, WRITE_ERRNOS

Verb = Callable[[list[str]], int]  # a verb's argv -> its exit status: rolebench_eval.cli.main


@dataclass(frozen=True)
class Step:
    """One verb run: ``argv`` writes ``staging``, which becomes ``out`` when it succeeds."""

    name: str  # file-safe, unique in the board: names its record, log and staging folder
    label: str  # for the progress display and the report
    argv: tuple[str, ...]
    out: str
    needs: tuple[str, ...] = ()  # names of the steps whose outputs it reads
    gpus: float = 0.0
    cpus: float = 1.0


def _record_path(out: Path, step: Step) -> Path:
    return out / ".steps" / f"{step.name}.json"


def is_done(out: Path, step: Step) -> bool:
    """The step's folder exists and its record holds the same command (a changed spec redoes the step)."""
    record = _record_path(out, step)
    if not (Path(step.out).is_dir() and record.is_file()):
        return False
    try:
        return json.loads(record.read_text(encoding="utf-8")).get("argv") == list(step.argv)
    except (OSError, ValueError):
        return False


def _clear_keeping_cache(staging: Path) -> None:
    """Remove a killed try's files, except a run step's answer cache (``.cache``: the retry resumes from it)."""
    from rolebench_eval.tasks.resumable import CACHE_FOLDER

    if not staging.is_dir():
        return
    for entry in staging.iterdir():
        if entry.name != CACHE_FOLDER:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


_IN_STEP = False  # a worker process is running a step (else it waits for one)


def _worker_start() -> None:
    """A pool worker's Ctrl-C: the step it runs is interrupted like the verb alone (its log says so, the board
    reports it); a worker waiting for work leaves quietly (nothing to keep; the board says what a rerun redoes)."""
    signal.signal(signal.SIGINT, _worker_sigint)


def _worker_sigint(signum, frame) -> None:
    if _IN_STEP:
        raise KeyboardInterrupt
    os._exit(EXIT_INTERRUPTED)  # no traceback from the pool's queue


def execute(verb: Verb, step: Step, out: str, data_dir: str | None) -> int:
    """Run one step (in a worker process) through ``verb`` (the CLI's ``main``, handed down so that this module
    does not import the CLI that imports it): the verb's output goes to the step's log; returns its exit status."""
    from rolebench_eval.fileio import write_json_atomic

    root = Path(out)
    staging, final = Path(step.argv[-1]), Path(step.out)
    _clear_keeping_cache(staging)  # what a killed try left, but the answers it computed
    staging.parent.mkdir(parents=True, exist_ok=True)
    (root / "logs").mkdir(parents=True, exist_ok=True)
    if data_dir is not None:
        os.environ["ROLEBENCH_DATA_DIR"] = data_dir
    sys.stdout.flush(), sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(root / "logs" / f"{step.name}.log", "w", encoding="utf-8") as log:
        os.dup2(log.fileno(), 1), os.dup2(log.fileno(), 2)
        global _IN_STEP
        try:
            _IN_STEP = True
            code = verb(list(step.argv))
        except SystemExit as exit_:  # lm-eval's own argument errors
            code = exit_.code if isinstance(exit_.code, int) else 1
        except BaseException as err:  # noqa: BLE001  (reported with its log; the grid goes on)
            import traceback

            with contextlib.suppress(OSError):  # a log on a full disk: the exit status still says why
                traceback.print_exc()
            code = EXIT_WRITE if isinstance(err, OSError) and err.errno in WRITE_ERRNOS else 1
        finally:
            _IN_STEP = False
            with contextlib.suppress(OSError):
                sys.stdout.flush(), sys.stderr.flush()
            for fd, saved_fd in zip((1, 2), saved):  # the worker runs the next step with its own streams
                os.dup2(saved_fd, fd)
                os.close(saved_fd)
    if code != EXIT_OK:
        return code
    shutil.rmtree(final, ignore_errors=True)  # a folder whose record did not match
    final.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(final)
    (staging.parent / f".{staging.name}.lock").unlink(missing_ok=True)  # a verb's folder_lock (the board holds its own)
    write_json_atomic(_record_path(root, step), {"argv": list(step.argv)})
    return EXIT_OK


class LocalBackend:
    """A pool of ``jobs`` spawned worker processes (a worker imports lm-eval once and runs step after step)."""

    def __init__(self, jobs: int, verb: Verb):
        self.jobs, self.verb, self.pools = jobs, verb, []

    def submit(self, step: Step, out: str, data_dir: str | None):
        """A future of the step's exit status; a fresh pool when a worker died (which breaks a pool whole)."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        for _ in range(2):
            if not self.pools:
                self.pools.append(ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("spawn"),
                                                      initializer=_worker_start))
            try:
                return self.pools[-1].submit(execute, self.verb, step, out, data_dir)
            except BrokenProcessPool:
                self.pools.pop().shutdown(wait=False)
        raise RuntimeError("cannot start worker processes")

    def close(self) -> None:
        for pool in self.pools:
            pool.shutdown(cancel_futures=True)


class RayBackend:
    """Each step a Ray task with the CPUs and GPUs its model asks for, on the cluster at ``address``."""

    def __init__(self, address: str | None, verb: Verb):
        try:
            import ray
        except ImportError as err:
            raise ImportError("the ray backend needs the 'ray' extra", name="ray") from err
        ray.init(address=address or os.environ.get("RAY_ADDRESS") or "auto", log_to_driver=False)
        self.ray, self.task, self.verb = ray, ray.remote(execute), verb

    def submit(self, step: Step, out: str, data_dir: str | None):
        options = self.task.options(num_cpus=step.cpus, num_gpus=step.gpus, max_retries=0)
        return options.remote(self.verb, step, out, data_dir).future()

    def close(self) -> None:
        self.ray.shutdown()


