"""How many requests are in flight (:class:`Limiter`) and which one goes next (:class:`Schedule`).

``concurrency auto`` finds what the endpoint can take without being told (a CPU ``transformers
serve`` answering one at a time should get about one request in flight, an API dozens), by the
latency-gradient rule of TCP Vegas and Netflix's concurrency-limits:

* Start with one request in flight. Latency is measured in rounds of ``max(limit, 4)`` answers;
  a round's median is compared with the lowest round median seen (the no-queue latency).
* While it holds (at most 1.25x the lowest) the limit doubles (slow start), later grows by one.
* Over 1.6x (requests queue at the server) the limit drops by a quarter, and growing back to the
  limit that queued waits 2, 4, 8 ... rounds (up to 32).
* A timeout, 429, 5xx or dropped connection halves the limit at once (once per round).
"""

from __future__ import annotations

import heapq
import itertools
import statistics
import threading
import time
from collections import deque

MIN_ROUND = 4
GROW_BELOW, SHRINK_ABOVE = 1.25, 1.6
MAX_HOLD = 32
FIRST_PAUSE, MAX_PAUSE = 0.25, 2.0


class Limiter:
    """At most ``limit`` holders at once; ``auto`` moves the limit (see the module docstring)."""

    def __init__(self, concurrency: int | str, ceiling: int):
        self.auto = concurrency == "auto"
        self.ceiling = ceiling if self.auto else int(concurrency)
        self.limit = 1 if self.auto else self.ceiling
        self.in_flight = 0
        self.peak = 0
        self._cond = threading.Condition()
        self._epoch = 0
        self._samples: list[float] = []
        self._base: float | None = None
        self._slow_start = True
        self._queued_at: int | None = None  # the limit at which requests queued last
        self._hold, self._wait = 0, 1
        self.history: list[int] = [self.limit]

    def acquire(self, stop: threading.Event) -> int | None:
        """Wait for a free slot; returns a token for :meth:`release` (None when ``stop`` is set)."""
        with self._cond:
            while self.in_flight >= self.limit:
                if stop.is_set():
                    return None
                self._cond.wait(0.1)
            if stop.is_set():
                return None
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            return self._epoch

    def release(self, token: int, latency: float | None = None, congested: bool = False) -> None:
        """Free a slot; ``latency`` of an answered request, or ``congested`` for a timeout, 429, 5xx."""
        with self._cond:
            self.in_flight -= 1
            if self.auto and congested and token == self._epoch:
                self._set(max(1, self.limit // 2))
                self._slow_start = False
            elif self.auto and latency is not None and token == self._epoch:
                self._samples.append(latency)
                if len(self._samples) >= max(self.limit, MIN_ROUND):
                    self._end_round(statistics.median(self._samples))
            self._cond.notify(max(0, self.limit - self.in_flight))  # wake only as many waiters as slots

    def _set(self, limit: int) -> None:
        self.limit, self._epoch, self._samples = limit, self._epoch + 1, []
        self.history.append(limit)

    def _end_round(self, median: float) -> None:
        self._samples = []
        self._base = median if self._base is None else min(self._base, median)
        ratio = median / self._base
        if ratio > SHRINK_ABOVE:
            if self._queued_at == self.limit:
                self._wait = min(MAX_HOLD, self._wait * 2)
            else:
                self._queued_at, self._wait = self.limit, 2
            self._hold = self._wait
            self._slow_start = False
            self._set(max(1, self.limit - max(1, self.limit // 4)))
        elif ratio <= GROW_BELOW and self.limit < self.ceiling:
            if self._queued_at is not None and self.limit == self._queued_at:
                self._queued_at, self._wait = None, 1  # the limit that queued before holds now
            grow = self.limit if self._slow_start else 1
            target = min(self.ceiling, self.limit + grow)
            if self._queued_at is not None and target >= self._queued_at:
                if self._hold > 0:
                    self._hold -= 1
                    return
                target = self._queued_at
            self._set(target)


class Schedule:
    """A thread-safe queue of keys. A key another process is sending is put aside and looked at again
    after a pause (0.25 s doubling to 2 s) until it is answered or its claim expires; meanwhile the
    workers take other keys, so two processes on one cache split the work."""

    def __init__(self, keys: list[str], stop: threading.Event):
        self._queue = deque(keys)
        self._deferred: list[tuple[float, int, str]] = []  # (when to look again, tie-break, key)
        self._pause: dict[str, float] = {}
        self._in_transit = 0  # taken by a worker, not yet sent, answered or deferred
        self._count = itertools.count()
        self._cond = threading.Condition()
        self._stop = stop
        self._closed = False

    def next(self) -> str | None:
        """The next key to try; None when nothing is left (or the run stops)."""
        with self._cond:
            while not (self._closed or self._stop.is_set()):
                if self._queue:
                    self._in_transit += 1
                    return self._queue.popleft()
                if self._deferred:
                    due = self._deferred[0][0] - time.monotonic()
                    if due <= 0:
                        self._in_transit += 1
                        return heapq.heappop(self._deferred)[2]
                    self._cond.wait(min(due, 0.5))
                elif self._in_transit:
                    self._cond.wait(0.5)  # a key in transit may come back deferred
                else:
                    return None
            return None

    def taken(self, key: str) -> None:
        """``key`` is being sent or was answered: it does not come back."""
        with self._cond:
            self._in_transit -= 1
            self._pause.pop(key, None)
            self._cond.notify_all()

    def defer(self, key: str) -> None:
        """Look at ``key`` again later (another process holds it)."""
        with self._cond:
            self._in_transit -= 1
            pause = self._pause[key] = min(MAX_PAUSE, self._pause.get(key, FIRST_PAUSE / 2) * 2)
            heapq.heappush(self._deferred, (time.monotonic() + pause, next(self._count), key))
            self._cond.notify_all()

    def stop_new(self) -> None:
        """Hand out no more keys (a budget or an error stopped the run)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
