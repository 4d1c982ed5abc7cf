"""How a build uses the machine: its worker processes, started once, when first needed, for reading samples
files and drawing figures; and the cycle collector, paused while it builds.

``spawn``, not ``fork``: the board's process may hold threads (tqdm's monitor, BLAS pools).
A worker imports the package once; the figures are drawn by a worker that has already read
samples (numpy and the package imported), not by one more process started for them.
"""

from __future__ import annotations

from contextlib import contextmanager


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
            self._pool = ProcessPoolExecutor(self.n, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def prepare(self, fn) -> None:
        """Call ``fn`` (an import ahead of later work) once per worker, shared out by the idle workers,
        without waiting; nothing when no worker was started (a build that read no samples file)."""
        if self._pool is not None:
            for _ in range(self.n):
                self._pool.submit(fn)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
