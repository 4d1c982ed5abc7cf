"""How a build uses the machine: its worker processes, started once, for reading samples files and drawing
figures; and the cycle collector, paused while it builds.

``spawn``, not ``fork``: the board's process may hold threads (tqdm's monitor, BLAS pools).
A worker imports the package once; the figures are drawn by the workers that read the samples
(numpy and the package imported, pyplot imported while the board was computed), not by one
more process started for them. They start when first needed, or first thing when a build
surely needs them (:func:`start_early`); and they leave without tearing their interpreter down.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

PARALLEL_BYTES = 64 << 20  # below this much to read, starting worker processes costs more than it saves
BLOCKS = hasattr(signal, "pthread_sigmask")  # not on Windows


class Workers:
    """A process pool of ``n`` workers (None: one per CPU), started on first use; a context manager."""

    def __init__(self, n: int | None = None):
        self.n, self._pool = n, None

    def pool(self):
        if self._pool is None:
            import multiprocessing
            import os
            from concurrent.futures import ProcessPoolExecutor

            self.n = self.n or os.cpu_count() or 1
            self._pool = ProcessPoolExecutor(self.n, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_worker_start)
            # Every worker starts now (one per task submitted while none is idle), each with a Ctrl-C held
            # back until it ignores it (:func:`_worker_start`): one sent while a worker starts would print its
            # traceback. This process's own is held back meanwhile, and raised after.
            held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if BLOCKS else None
            try:
                for _ in range(self.n):
                    self._pool.submit(int)
            finally:
                if held is not None:
                    signal.pthread_sigmask(signal.SIG_SETMASK, held)
        return self._pool

    def start(self) -> Workers:
        """Start the workers now, not at first use: they import the samples reader (numpy, the package)
        while this process goes on with its own imports and reads the results files."""
        self.pool()
        self.prepare(_import_reader)
        return self

    def prepare(self, fn) -> None:
        """Call ``fn`` (an import ahead of later work) once per worker, shared out by the idle workers,
        without waiting; nothing when no worker was started (a build that read no samples file)."""
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
    """Whether a build of ``inputs`` surely reads samples files in worker processes, so that they may start
    first thing, importing beside the caller's own imports: a first build (no cache, or no extract kept
    in it yet) of folders holding PARALLEL_BYTES of samples files or more. Otherwise they start when the
    build finds what it must read (a board that adds a run to a kept cache)."""
    from .cache import holds_extracts

    if cache is not None and holds_extracts(cache):
        return False
    folders = [Path(p) for p in inputs if Path(p).is_dir()]
    return sum(f.stat().st_size for folder in folders for f in folder.rglob("samples_*.jsonl")) >= PARALLEL_BYTES


def _import_reader() -> None:
    import rolebench_eval.leaderboard.scores  # noqa: F401  (what reading samples files needs)


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

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    os._exit(0)


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
