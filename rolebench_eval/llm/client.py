"""A cached, budgeted, fault-tolerant batch of chat requests to any OpenAI-compatible endpoint.

Used by the judges and the data generators. One call, :func:`run_batch`, takes a list of
chat requests and returns their answers:

* answers already in the :class:`~rolebench_eval.llm.cache.ResponseCache` cost nothing, and
  a request another process is sending (it holds the claim) is waited for, not sent again;
* the rest go out through the ``openai`` SDK (OpenAI, vLLM, Ollama, llama.cpp server,
  ``transformers serve``: anything speaking ``/v1/chat/completions``), as many at once as
  ``concurrency`` allows (``auto``: what the endpoint takes, see
  :mod:`~rolebench_eval.llm.limiter`); ``timeout`` bounds each request in all;
* 408/409/429/5xx answers, connection errors, timeouts and malformed bodies are retried
  with exponential backoff and jitter, waiting what ``Retry-After`` asks when it is sent;
  the first retries of each kind are logged as warnings with what to change;
* a setting the endpoint refuses (``max_tokens``, ``temperature``, ``top_p``, ``seed``) is
  adapted once for the run (:mod:`~rolebench_eval.llm.compat`); every answer records the
  ``decoding`` actually sent;
* 401, 403 and 404 stop the run at once with :class:`EndpointError` (exit status 2): a
  wrong key, URL or model. Another 4xx marks its item failed with the server's words; the
  same one on the first requests stops the run (it is the settings, not the items);
* every answer is written to the cache the moment it arrives (scrubbed of the API key), so
  a killed run resumes; a :class:`~rolebench_eval.llm.budget.Budget` (requests, tokens,
  money) is checked before each request is sent.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Sequence

from .budget import Budget, estimate_tokens
from .cache import CACHED, CLAIMED, ResponseCache, new_owner, request_keys
from .config import ClientConfig, LLMConfigError, Messages
from .limiter import Limiter
from .progress import Progress
from .result import HINTS, BatchResult
from .request import (ChatClient, EndpointError, MalformedResponse, failure_kind, is_congestion, is_retryable,
                      retry_after_seconds)
from .schedule import Schedule

__all__ = ["BatchResult", "ChatClient", "ClientConfig", "EndpointError", "LLMConfigError", "MalformedResponse",
           "Messages", "retry_after_seconds", "run_batch"]

log = logging.getLogger(__name__)
CONFIG_REJECTIONS = 3  # the same 4xx on this many first requests (none answered yet): the settings are wrong
WARN_FIRST = 3  # retries of each kind logged as warnings; later ones only counted


class _Run:
    """The state one batch shares between its worker threads."""

    def __init__(self, client: ChatClient, cache: ResponseCache, budget: Budget, todo: dict, progress: Progress):
        self.client, self.cache, self.budget, self.todo, self.progress = client, cache, budget, todo, progress
        config = client.config
        self.limiter = Limiter(config.concurrency, config.max_concurrency)
        self.schedule = Schedule(list(todo), client.stop)
        self.owner, self.ttl = new_owner(), config.timeout + 30
        self.lock = threading.Lock()
        self.stopped: str | None = None
        self.stop_kind: str | None = None
        self.fatal: Exception | None = None
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
            if state != CLAIMED:
                self.limiter.release(token)
                self._not_sent(key, state)
                continue
            self.schedule.taken(key)
            try:
                self._ask(key, token)
            finally:
                self.progress.update(self)

    def _not_sent(self, key: str, state: str) -> None:
        if state == CACHED:  # another process answered it meanwhile
            self.schedule.taken(key)
            with self.lock:
                self.n_waited += 1
            self.progress.update(self)
        else:  # another process is asking: look again later
            self.schedule.defer(key)

    def _ask(self, key: str, token: int) -> None:
        if self.stopped or self.client.stop.is_set():
            self.limiter.release(token)
            self.cache.release(key, self.owner)
            return
        messages = self.todo[key]
        reservation = self.budget.reserve(estimate_tokens(messages), self.client.config.max_tokens)
        if reservation is None:
            self.limiter.release(token)
            self.cache.release(key, self.owner)
            self.halt(f"budget: {self.budget.exhausted}", "budget")
            return
        answer = self._with_retries(key, messages, token)
        if answer is None:
            self.budget.release(reservation)
            self.cache.release(key, self.owner)
            return
        self.budget.settle(reservation, answer["prompt_tokens"], answer["completion_tokens"])
        body = self.client.redact.value(self.client.config.request_body(messages))
        self.cache.put(key, body, answer, owner=self.owner)
        with self.lock:
            self.n_sent += 1

    def _with_retries(self, key: str, messages: Messages, token: int) -> dict | None:
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
                self.limiter.release(token, congested=is_congestion(exc))
                if (not is_retryable(exc) or attempt == config.max_retries or self.client.stop.is_set()
                        or self.client.fatal(exc)):
                    self._fail(key, exc)
                    return None
                delay = self._delay(exc, attempt)
                self._retrying(exc, attempt, delay)
                self.cache.extend(key, self.owner, delay + self.ttl)
                if self.client.stop.wait(delay):
                    return None
                continue
            self.limiter.release(token, latency=time.monotonic() - started)
            return answer
        return None  # pragma: no cover - the loop returns

    def _delay(self, exc: Exception, attempt: int) -> float:
        after = retry_after_seconds(exc)
        if after is not None:
            return min(after, 120.0)
        config = self.client.config
        return random.uniform(0, min(config.backoff_max, config.backoff_base * 2 ** attempt))  # full jitter

    def _retrying(self, exc: Exception, attempt: int, delay: float) -> None:
        kind = failure_kind(exc)
        with self.lock:
            self.retries += 1
            seen = self.warned[kind] = self.warned.get(kind, 0) + 1
        if seen <= WARN_FIRST:
            hint = HINTS[kind].format(timeout=self.client.config.timeout, endpoint=self.client.endpoint)
            more = "; further retries of this kind are only counted" if seen == WARN_FIRST else ""
            log.warning("retrying in %.1f s (try %d of %d failed: %s). If this repeats: %s%s", delay, attempt + 1,
                        self.client.config.max_retries + 1, self.client.describe(exc), hint, more)

    def _fail(self, key: str, exc: Exception) -> None:
        text = self.client.describe(exc)
        with self.lock:
            self.errors[key] = text
        if self.client.stop.is_set():
            return
        fatal = self.client.fatal(exc)
        if fatal is not None:
            self.fatal = self.fatal or fatal
            self.halt(f"error: {text}", "rejected")
            return
        kind = failure_kind(exc)
        if kind != "rejected":  # retries exhausted: the endpoint is unwell, stop sending
            self.halt(f"error: {text}", kind)
            return
        self._rejected(text)

    def _rejected(self, text: str) -> None:
        with self.lock:
            n_failed = len(self.errors)
            if not self.n_sent:
                self.rejections.append(text)
            first = self.rejections[:CONFIG_REJECTIONS]
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
    """Answer every request: from the cache, else from the endpoint, within the budget.

    Args:
        requests: chat messages, one list per request (duplicates are sent once).
        config: endpoint, model, decoding, timeouts, retries and concurrency.
        cache: where answers are looked up and stored (and other processes' claims seen).
        budget: caps on what may be spent (none by default).
        progress: show a progress bar (sent, cached, failed, retries, in flight).
        desc: the bar's label.
        key_extras: per request, data mixed into its cache key only, e.g. ``{"sample": 2}`` to
            get several independent answers to the same prompt at temperature > 0.

    Returns:
        A :class:`BatchResult`; ``stopped`` says why some answers are missing.

    Raises:
        EndpointError: a 401/403/404, or the same 4xx on the first requests (the settings).
        KeyboardInterrupt: after the requests in flight finished (they are cached).
    """
    keys = request_keys(requests, config, key_extras)
    answers = cache.get_many(keys)
    todo = {k: m for k, m in zip(keys, requests) if k not in answers}
    result = BatchResult(keys=keys, responses=[], n_cached=len(set(keys)) - len(todo), timeout=config.timeout)
    if todo:
        _send(todo, config, cache, budget or Budget(), result, Progress(len(set(keys)), result.n_cached, desc,
                                                                          progress, config.verbose))
        answers = cache.get_many(keys)  # what was stored, with its created_at: reruns see the same
    result.responses = [answers.get(k) for k in keys]
    return result


def _send(todo: dict, config: ClientConfig, cache: ResponseCache, budget: Budget, result: BatchResult,
          bar: Progress) -> None:
    client = ChatClient(config)
    run = _Run(client, cache, budget, todo, bar)
    with bar.session(client.redact), ThreadPoolExecutor(max_workers=config.workers) as pool:
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
        finally:
            client.close()
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
