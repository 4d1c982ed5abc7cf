"""Which request a worker takes next, when other processes hold claims on some of them.

Keys come out in order. A key another process is sending (its claim is live) is put aside
and looked at again later, with a growing pause (0.25 s doubling to 2 s), until its answer
is in the cache or its claim has expired; meanwhile the workers take other keys, so two
processes on one cache split the work instead of waiting on each other.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque

FIRST_PAUSE, MAX_PAUSE = 0.25, 2.0


class Schedule:
    """A thread-safe queue of keys with deferral (see the module docstring)."""

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
