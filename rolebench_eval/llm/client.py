"""A cached, budgeted, fault-tolerant batch of chat requests to an OpenAI-compatible endpoint.

:func:`run_batch`: cached answers cost nothing (a request another process has claimed is waited for);
the rest go out as many at once as the :class:`~.limiter.Limiter` allows, within a :class:`~.budget.Budget`,
each cached (scrubbed) as it arrives. Transient failures (408/409/429/5xx, connection errors, timeouts,
malformed bodies) are retried here, not in the SDK: its sleeps are fixed from 0.5 s, the limiter cannot see
them and a stopping run cannot cut them short. A wrong key, URL or model (401, 403, 404, nothing listening,
the same 4xx on the first requests) raises :class:`EndpointError` (exit 2); another 4xx fails its item.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Sequence

from rolebench_eval.errors import EXIT_BUDGET, EXIT_REQUESTS

from .budget import Budget, estimate_tokens
from .cache import CACHED, CLAIMED, ResponseCache, new_owner, split_cached
from .config import ClientConfig, LLMConfigError, Messages
from .limiter import Limiter, Schedule
from .request import (ChatClient, EndpointError, MalformedResponse, failure_kind, quiet_and_scrubbed,
                      retry_after_seconds)
__all__ = ["BatchResult", "ChatClient", "ClientConfig", "EndpointError", "LLMConfigError", "MalformedResponse",
           "Messages", "retry_after_seconds", "run_batch"]

log = logging.getLogger(__name__)
CONFIG_REJECTIONS = 3  # the same 4xx on this many first requests (none answered yet): the settings are wrong
WARN_FIRST = 3  # retries of each kind logged as warnings; later ones only counted
# What to change, by the cause of a stop; a retry warning says the same (without "then rerun").
HINTS = {
    "timeout": "the endpoint did not answer within --timeout {timeout:g} s: raise --timeout (a local model "
               "may need minutes per answer) or lower --concurrency",
    "connection": "cannot reach {endpoint}: check that the server is running and --base-url",
    "rate_limit": "the endpoint kept rate-limiting (429): lower --concurrency or wait",
    "server": "the endpoint kept failing (5xx): wait, lower --concurrency or raise --max-retries",
    "malformed": "the endpoint kept answering with something that is not a chat completion (an HTML page, "
                 "no choices): check --base-url (it should be the OpenAI-compatible /v1 root)",
}
_FINAL = {
    "rejected": "the endpoint rejected {n_failed} request(s) (first: {first}); they are left unanswered. "
                "Fix what the message names, then rerun the same command (answers received are kept)",
    "budget": "rerun the same command with a higher cap to finish",
    "interrupted": "rerun the same command to resume",
    "batch": "rerun the same command to submit them in a new batch job, or without --batch to ask for them "
             "one by one",
}


@dataclass
class BatchResult:
    """What :func:`run_batch` did: ``responses[i]`` answers ``requests[i]`` (None if not answered);
    ``stopped`` says why not ("budget: ...", "error: ...", "interrupted"), ``stop_kind`` its cause (a key
    of :data:`HINTS` or ``_FINAL``); ``errors``: by key, the scrubbed error of each request that failed;
    ``decoding``: what was sent at the end (after ``adaptations``)."""

    keys: list[str]
    responses: list[dict | None]
    n_cached: int = 0
    n_sent: int = 0
    n_retries: int = 0
    n_failed: int = 0
    stopped: str | None = None
    stop_kind: str | None = None
    errors: dict[str, str] = field(default_factory=dict)
    spent: dict = field(default_factory=dict)
    decoding: dict = field(default_factory=dict)
    adaptations: list[str] = field(default_factory=list)
    peak_concurrency: int = 0
    timeout: float = 0.0
    endpoint: str = ""

    @property
    def exit_code(self) -> int:
        """3 for a budget stop, 4 for failed requests, 0 when complete."""
        if self.stopped is None:
            return 0
        return EXIT_BUDGET if self.stop_kind == "budget" else EXIT_REQUESTS

    def hint(self) -> str:
        """What to do about ``stopped``, in words that match its cause."""
        kind, first = self.stop_kind or "", next(iter(self.errors.values()), "")
        text = HINTS[kind] + ", then rerun the same command" if kind in HINTS else _FINAL.get(kind, "rerun")
        return text.format(timeout=self.timeout, endpoint=self.endpoint, n_failed=self.n_failed, first=first)

    def stop_message(self, kept: str = "every answer received is kept") -> str:
        """One line for the terminal: why the run stopped, what is kept, what to do."""
        return f"stopped before the end ({self.stopped}); {kept}. {self.hint()}"


class _Run:
    """The state one batch shares between its worker threads."""

    def __init__(self, client: ChatClient, cache: ResponseCache, budget: Budget, todo: dict, bar, done: int):
        self.client, self.cache, self.budget, self.todo, self.bar, self.done = client, cache, budget, todo, bar, done
        config = client.config
        self.limiter = Limiter(config.concurrency, config.max_concurrency)
        self.schedule = Schedule(list(todo), client.stop)
        self.owner, self.ttl = new_owner(), config.timeout + 30
        self.lock = threading.Lock()
        self.stopped = self.stop_kind = self.fatal = None
        self.errors: dict[str, str] = {}
        self.n_sent = self.n_waited = self.retries = 0  # sent and answered; answered by another process
        self.rejections: list[str] = []
        self.warned: dict[str, int] = {}

    def halt(self, reason: str, kind: str) -> None:
        with self.lock:
            if self.stopped is None:
                self.stopped, self.stop_kind = reason, kind
        if kind != "budget":
            self.client.stop.set()
        self.schedule.stop_new()

    def show(self) -> None:
        """Redraw the bar: sent, cached (or answered by another process), failed, retries."""
        with self.lock:
            n = self.done + self.n_sent + self.n_waited + len(self.errors)
            self.bar.set_postfix(sent=self.n_sent, cached=self.done + self.n_waited, failed=len(self.errors),
                                 retries=self.retries, in_flight=self.limiter.in_flight, refresh=False)
            self.bar.update(n - self.bar.n)

    def worker(self) -> None:
        """Take a slot, then a key; claim it; send it (or wait for whoever holds it)."""
        while True:
            token = self.limiter.acquire(self.client.stop)
            key = self.schedule.next() if token is not None else None
            if key is None:
                if token is not None:
                    self.limiter.release(token)
                return
            state = self.cache.claim(key, self.owner, self.ttl)
            if state == CLAIMED:
                self.schedule.taken(key)
                try:
                    self._ask(key, token)
                finally:
                    self.show()
                continue
            self.limiter.release(token)
            if state == CACHED:  # another process answered it meanwhile
                self.schedule.taken(key)
                with self.lock:
                    self.n_waited += 1
                self.show()
            else:  # another process is asking: look again later
                self.schedule.defer(key)

    def _ask(self, key: str, token: int) -> None:
        messages, reservation = self.todo[key], None
        if not (self.stopped or self.client.stop.is_set()):
            reservation = self.budget.reserve(estimate_tokens(messages), self.client.config.max_tokens)
            if reservation is None:
                self.halt(f"budget: {self.budget.exhausted}", "budget")
        answer = self._with_retries(key, messages, token) if reservation else None
        if answer is None:
            if reservation:
                self.budget.release(reservation)
            else:
                self.limiter.release(token)
            self.cache.release(key, self.owner)
            return
        self.budget.settle(reservation, answer["prompt_tokens"], answer["completion_tokens"])
        body = self.client.redact.value(self.client.config.request_body(messages))
        self.cache.put(key, body, answer, owner=self.owner)
        with self.lock:
            self.n_sent += 1

    def _with_retries(self, key: str, messages: Messages, token: int | None) -> dict | None:
        """The answer, each try in a slot of the limiter; None when it failed for good or the run stopped."""
        config = self.client.config
        for attempt in range(config.max_retries + 1):
            if attempt:
                token = self.limiter.acquire(self.client.stop)
                if token is None:
                    return None
                self.cache.extend(key, self.owner, self.ttl)
            started = time.monotonic()
            try:
                answer = self.client.send(messages)
            except Exception as exc:  # noqa: BLE001 - every failure is classified, none is silent
                kind = failure_kind(exc)
                final = (kind == "rejected" or attempt == config.max_retries or self.client.stop.is_set()
                         or self.client.fatal(exc))
                if final:  # before the slot is freed: a run-stopping answer stops the run before another is sent
                    self._fail(key, exc)
                self.limiter.release(token, congested=kind not in ("rejected", "malformed"))
                if final or self.client.stop.wait(self._retrying(key, exc, kind, attempt)):
                    return None
                continue
            self.limiter.release(token, latency=time.monotonic() - started)
            return answer
        return None  # pragma: no cover - the loop returns

    def _retrying(self, key: str, exc: Exception, kind: str, attempt: int) -> float:
        """Count and (the first few of each kind) log a retry; returns how long to wait before it
        (full-jitter exponential backoff, or what ``Retry-After`` asks up to 120 s)."""
        config, after = self.client.config, retry_after_seconds(exc)
        delay = min(after, 120.0) if after is not None else random.uniform(
            0, min(config.backoff_max, config.backoff_base * 2 ** attempt))
        self.cache.extend(key, self.owner, delay + self.ttl)
        with self.lock:
            self.retries += 1
            seen = self.warned[kind] = self.warned.get(kind, 0) + 1
        if seen <= WARN_FIRST:
            hint = HINTS[kind].format(timeout=config.timeout, endpoint=self.client.endpoint)
            more = "; further retries of this kind are only counted" if seen == WARN_FIRST else ""
            log.warning("retrying in %.1f s (try %d of %d failed: %s). If this repeats: %s%s", delay, attempt + 1,
                        config.max_retries + 1, self.client.describe(exc), hint, more)
        return delay

    def _fail(self, key: str, exc: Exception) -> None:
        text = self.client.describe(exc)
        with self.lock:
            self.errors[key] = text
        if self.client.stop.is_set():
            return
        fatal, kind = self.client.fatal(exc), failure_kind(exc)
        if fatal is not None:
            self.fatal = self.fatal or fatal
        if fatal is not None or kind != "rejected":  # a wrong setting, or retries exhausted: stop sending
            self.halt(f"error: {text}", "rejected" if fatal is not None else kind)
            return
        with self.lock:
            if not self.n_sent:
                self.rejections.append(text)
            first, n_failed = self.rejections[:CONFIG_REJECTIONS], len(self.errors)
        if n_failed <= WARN_FIRST:
            log.error("a request was rejected (%s); its item is left unanswered, the others go on", text)
        if len(self.todo) > 1 and len(first) == min(CONFIG_REJECTIONS, len(self.todo)) and len(set(first)) == 1:
            self.fatal = self.fatal or EndpointError(
                self.client.endpoint, None, None,
                f"the first {len(first)} requests were all rejected with {text} (model "
                f"{self.client.config.model!r}): the settings are wrong, not the items; fix what the message names")
            self.halt(f"error: {text}", "rejected")


def run_batch(requests: Sequence[Messages], config: ClientConfig, cache: ResponseCache,
              budget: Budget | None = None, progress: bool = True, desc: str = "requests",
              key_extras: Sequence[dict | None] | None = None) -> BatchResult:
    """Answer every request (duplicates once): from the cache, else from the endpoint, within the budget.

    ``progress`` draws a bar labelled ``desc``; ``key_extras`` are mixed into each request's cache
    key only (``{"sample": 2}``: several answers to one prompt at temperature > 0). Raises
    :class:`EndpointError` for wrong settings, and ``KeyboardInterrupt`` after the requests in
    flight finished (they are cached).
    """
    return answer_all(requests, config, cache, key_extras,
                      lambda todo, result: _send(todo, config, cache, budget or Budget(), result, progress, desc))


def answer_all(requests: Sequence[Messages], config: ClientConfig, cache: ResponseCache, key_extras,
               send) -> BatchResult:
    """The cached answers, plus what ``send(todo, result)`` stores for the uncached requests (by key)."""
    keys, answers, todo = split_cached(requests, config, cache, key_extras)
    result = BatchResult(keys=keys, responses=[], n_cached=len(set(keys)) - len(todo), timeout=config.timeout)
    if todo:
        send(todo, result)
        answers = cache.get_many(keys)  # what was stored, with its created_at: reruns see the same
    result.responses = [answers.get(k) for k in keys]
    return result


@contextlib.contextmanager
def session(config: ClientConfig, result: BatchResult, desc: str, enabled: bool):
    """``(client, bar)`` for sending the uncached requests of ``result``, the client closed after: a tqdm
    bar with log lines printed above it (never through it), scrubbed, the HTTP library's quiet."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    client = ChatClient(config)
    with logging_redirect_tqdm() if enabled else contextlib.nullcontext(), \
            quiet_and_scrubbed(client.redact, config.verbose), \
            tqdm(total=len(set(result.keys)), initial=result.n_cached, desc=desc, unit="req",
                 disable=not enabled, dynamic_ncols=True) as bar:
        try:
            yield client, bar
        finally:
            client.close()  # inside: its connections close quietly too


def _send(todo: dict, config: ClientConfig, cache: ResponseCache, budget: Budget, result: BatchResult,
          progress: bool, desc: str) -> None:
    with session(config, result, desc, progress) as (client, bar), \
            ThreadPoolExecutor(max_workers=config.workers) as pool:
        run = _Run(client, cache, budget, todo, bar, result.n_cached)
        futures = [pool.submit(run.worker) for _ in range(config.workers)]
        try:
            while wait(futures, timeout=0.5).not_done:
                pass
            for future in futures:
                future.result()
        except KeyboardInterrupt:
            run.halt("interrupted", "interrupted")
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    result.n_sent, result.n_retries, result.errors = run.n_sent, run.retries, run.errors
    result.n_cached += run.n_waited
    result.n_failed, result.spent = len(run.errors), budget.spent()
    result.stopped, result.stop_kind = run.stopped, run.stop_kind
    result.decoding, result.adaptations = client.decoding.current(), list(client.decoding.changes)
    result.peak_concurrency, result.endpoint = run.limiter.peak, client.endpoint
    if result.stopped is None and run.errors:
        result.stopped, result.stop_kind = f"error: {len(run.errors)} request(s) failed", "rejected"
    if run.fatal is not None:
        raise run.fatal
