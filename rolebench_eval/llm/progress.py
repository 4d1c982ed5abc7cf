"""The progress bar of a batch (tqdm) and the logging around it.

The bar counts every unique request (those already cached included) and shows what was
sent, found cached (or answered by another process), failed and retried, and how many are
in flight. While it is drawn, log lines go through tqdm (printed above the bar, never
through it), the HTTP library's per-request INFO lines are silenced (``--verbose`` shows
them) and every printed line is scrubbed of the API key.
"""

from __future__ import annotations

import contextlib
import threading

from .scrub import Scrubber, install_log_filters, remove_log_filters


class Progress:
    """A tqdm bar over ``total`` requests, ``done`` of them already answered from the cache."""

    def __init__(self, total: int, done: int, desc: str, enabled: bool, verbose: bool = False):
        self.total, self.done, self.desc, self.enabled, self.verbose = total, done, desc, enabled, verbose
        self._bar = None
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def session(self, scrub: Scrubber):
        """Draw the bar (if enabled) with log lines routed above it and scrubbed."""
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        redirect = logging_redirect_tqdm() if self.enabled else contextlib.nullcontext()
        with redirect:
            undo = install_log_filters(scrub, self.verbose)
            self._bar = tqdm(total=self.total, initial=self.done, desc=self.desc, unit="req",
                             disable=not self.enabled, dynamic_ncols=True)
            try:
                yield self
            finally:
                self._bar.close()
                remove_log_filters(undo)

    def update(self, run) -> None:
        """Redraw from the run's counters (called by the worker threads)."""
        if self._bar is None or not self.enabled:
            return
        with self._lock:
            n = self.done + run.n_sent + run.n_waited + len(run.errors)
            self._bar.set_postfix(sent=run.n_sent, cached=self.done + run.n_waited, failed=len(run.errors),
                                  retries=run.retries, in_flight=run.limiter.in_flight, refresh=False)
            self._bar.update(n - self._bar.n)
