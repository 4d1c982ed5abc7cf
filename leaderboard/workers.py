"""How a build uses the machine: its worker processes, started once, for reading samples files and drawing
figures; and the cycle collector, paused while it builds.

``spawn``, not ``fork``: the board's process may hold threads (tqdm's monitor, BLAS pools).
A worker imports the package once; the workers that read the samples also draw the figures
(pyplot imported while the board is computed), one task per figure, not one more process
started for them. They start when first needed, or first thing when a build will likely need
them (:func:`start_early`); they leave a Ctrl-C to the build, and leave without tearing their
interpreter down.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

PARALLEL_BYTES = 64 << 20  # below this much to read, starting worker processes costs more than it saves
BLOCKS = hasattr(signal, "pthread_sigmask")  # not on Windows


class Workers:
    """A process pool of up to ``n`` workers (None: one per CPU), started on first use; a context manager."""

    def __init__(self, n: int | None = None):
        self.n, self._pool = n, None

    def pool(self, wanted: int | None = None):
        """The pool, started with its workers on the first call (no more of them than ``wanted``, the tasks
        that call has for them)."""
        if self._pool is None:
            import multiprocessing
            import os
            from concurrent.futures import ProcessPoolExecutor

            self.n = max(1, min(self.n or os.cpu_count() or 1, wanted or 1 << 16))
            self._pool = ProcessPoolExecutor(self.n, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_worker_start)
            with _ctrl_c_held():
                for _ in range(self.n):  # each task submitted while no worker is idle starts one
                    self._pool.submit(int)
        return self._pool

    def start(self) -> Workers:
        """Start every worker now, not at first use: they import the samples reader (numpy, the package)
        while this process goes on with its own imports and reads the results files."""
        self.pool()
        self.prepare(_import_reader)
        return self

    def prepare(self, fn) -> None:
        """Call ``fn`` (an import ahead of later work) as many times as there are workers, shared out by the
        idle ones (in practice one each), without waiting; nothing when no worker was started."""
        if self._pool is not None:
            for _ in range(self.n):
                self._pool.submit(fn)

    def close(self, failed: bool = False) -> None:
        """Stop the workers once their work is done; ``failed`` (a Ctrl-C, an error): once what they are
        doing is done, the rest dropped."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=failed)
            self._pool = None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, kind, *exc) -> None:
        self.close(failed=kind is not None)


def start_early(inputs: Iterable[str | Path], cache: Path | None) -> bool:
    """Whether a build of ``inputs`` will likely read samples files in worker processes, so that they may start
    first thing, importing beside the caller's own imports: a first build with this cache (none, or no extract
    kept in it yet), on more than one CPU, of folders holding PARALLEL_BYTES of samples files or more (hidden
    folders left out, as the build leaves them). Otherwise they start when the build finds what it must read.
    A guess: an unreadable file counts for nothing here (the build reports it)."""
    import os

    from .cache import holds_extracts

    if (os.cpu_count() or 1) < 2 or (cache is not None and holds_extracts(cache)):
        return False
    total = 0
    for folder in (Path(p) for p in inputs if Path(p).is_dir()):
        for path in folder.rglob("samples_*.jsonl"):
            if not any(part.startswith(".") for part in path.relative_to(folder).parts):
                try:
                    total += path.stat().st_size
                except OSError:
                    continue
    return total >= PARALLEL_BYTES


def _import_reader() -> None:
    import rolebench_eval.leaderboard.scores  # noqa: F401  (what reading samples files needs)


@contextmanager
def _ctrl_c_held():
    """Workers started in this block start with SIGINT held back (blocked: a mask is inherited), until they
    ignore it (:func:`_worker_start`): a Ctrl-C while one starts would print its traceback and leave the pool
    half made. This process's own Ctrl-C meanwhile is noted and raised after the block (the mask alone does
    not hold it back: another thread, BLAS's or tqdm's, would take the signal)."""
    if not BLOCKS or threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread; elsewhere (and on Windows) the workers are on their own
        return
    seen = []
    previous = signal.signal(signal.SIGINT, lambda *_: seen.append(True))
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        signal.signal(signal.SIGINT, previous)
        if seen:
            signal.raise_signal(signal.SIGINT)  # to the handler that was there: the CLI's, or Python's


def _worker_start() -> None:
    """A worker's set-up. A Ctrl-C is this process's to handle (the build stops, and closes the workers once
    what they are doing is done): a worker ignores it, where it would print its traceback and break the pool.
    And a worker leaves without tearing its interpreter down (a third of a second with numpy and matplotlib
    loaded, which the build waited for at its end), as workers of the ``fork`` start method do: by the time
    its interpreter exits, multiprocessing has sent the results, run its finalizers, joined the threads and
    flushed the streams."""
    import atexit

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if BLOCKS:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # held back since it started: dropped
    atexit.register(_exit_now)


def _exit_now() -> None:
    import logging
    import os
    import sys

    try:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    finally:
        os._exit(0)  # the exit status is the pool's to judge, by what it was sent (a worker that dies is seen)


@contextmanager
def collector_paused():
    """Python's cycle collector off for the build: the build makes millions of small objects (the browser's
    items, the tables' cells), frees them by reference count, and the collector's passes over a heap this
    large were a third of the item browser's time; what cycles there are go at the next collection."""
    import gc

    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
