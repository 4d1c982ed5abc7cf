"""A cached, budgeted, fault-tolerant chat client for any OpenAI-compatible endpoint.

Used by the judges and the data generators. One call, :func:`run_batch`, takes a list of
chat requests and returns their answers:

* answers already in the :class:`~rolebench_eval.llm.cache.ResponseCache` cost nothing;
* the rest go out on ``concurrency`` threads through the ``openai`` SDK (OpenAI, vLLM,
  Ollama, llama.cpp server: anything speaking ``/v1/chat/completions``);
* 408/409/429/5xx answers, connection errors, timeouts and malformed bodies are retried
  with exponential backoff and jitter, waiting what ``Retry-After`` asks when it is sent;
* every answer is written to the cache the moment it arrives, so a killed run resumes;
* a :class:`~rolebench_eval.llm.budget.Budget` (requests, tokens, money) is checked before
  each request is sent: when it would be exceeded no new request starts, and all finished
  work is kept.

The API key is read from the environment (``OPENAI_API_KEY`` unless the config names
another variable) when the client is built. It lives in memory only: it is never written,
logged or cached, and error texts are scrubbed of it before they are kept.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Sequence

from rolebench_eval.errors import InputError

from .budget import Budget, estimate_tokens
from .cache import ResponseCache, request_key

log = logging.getLogger(__name__)

Messages = list[dict[str, str]]
_RETRY_STATUS = {408, 409, 429}
_ABORT_STATUS = {401, 403, 404}
MAX_RETRY_AFTER = 120.0
_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_\-*.]{4,}")


class LLMConfigError(InputError):
    """The client cannot be built (no API key for OpenAI, a bad setting)."""


class MalformedResponse(Exception):
    """The endpoint answered 200 with a body that is not a chat completion."""


@dataclass
class ClientConfig:
    """Where and how to ask; the decoding settings are part of every cache key.

    Attributes:
        model: model name sent to the endpoint.
        base_url: endpoint root (``http://localhost:8000/v1``); None = ``$OPENAI_BASE_URL`` or OpenAI.
        api_key_env: name of the environment variable holding the key (never the key).
        temperature, seed, max_tokens: decoding settings.
        timeout: seconds one HTTP request may take before it is abandoned and retried.
        max_retries: retries per request after the first try.
        backoff_base, backoff_max: the exponential backoff window in seconds.
        concurrency: requests in flight at once.
    """

    model: str
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.0
    seed: int | None = 0
    max_tokens: int = 512
    timeout: float = 60.0
    max_retries: int = 6
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    concurrency: int = 8

    def request_body(self, messages: Messages) -> dict:
        """The JSON body sent for ``messages`` (what the cache key is computed from)."""
        body = {"model": self.model, "messages": messages, "temperature": self.temperature,
                "max_tokens": self.max_tokens}
        if self.seed is not None:
            body["seed"] = self.seed
        return body


def retry_after_seconds(exc: BaseException) -> float | None:
    """The server-requested delay of a failed request (``retry-after-ms`` or ``Retry-After``)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000
        value = headers.get("retry-after")
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def is_retryable(exc: BaseException) -> bool:
    """Transient failures: 408/409/429/5xx, connection errors, timeouts, malformed bodies."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in _RETRY_STATUS or exc.status_code >= 500
    return isinstance(exc, (openai.APIConnectionError, json.JSONDecodeError, MalformedResponse))


class ChatClient:
    """One ``openai.OpenAI`` client shared by the worker threads, with our own retries.

    The SDK's retries are switched off: its delays cannot be configured, and ours also
    cover malformed bodies and stop waiting when the run is stopping.
    """

    def __init__(self, config: ClientConfig, stop: threading.Event | None = None):
        import openai

        self.config = config
        self.stop = stop or threading.Event()
        self.retries = 0
        self._retry_lock = threading.Lock()
        key = os.environ.get(config.api_key_env)
        if not key:
            if not (config.base_url or os.environ.get("OPENAI_BASE_URL")):
                raise LLMConfigError(f"no API key: set the environment variable {config.api_key_env}")
            key = "EMPTY"  # local servers (vLLM, Ollama, llama.cpp) accept any key
        self._key = key  # kept only to scrub it (and masked forms) out of error texts
        self._client = openai.OpenAI(api_key=key, base_url=config.base_url, max_retries=0,
                                     timeout=config.timeout)

    def redact(self, text: str) -> str:
        """``text`` without the API key or anything shaped like one (``sk-...``)."""
        if self._key and self._key != "EMPTY":
            text = text.replace(self._key, "***")
        return _KEY_LIKE.sub("sk-***", text)

    def complete(self, messages: Messages) -> dict:
        """Send one request, retrying transient failures; returns text and token usage."""
        from tenacity import RetryError, Retrying, retry_if_exception, stop_after_attempt

        def stop_now(state) -> bool:
            return self.stop.is_set() or stop_after_attempt(self.config.max_retries + 1)(state)

        retrying = Retrying(retry=retry_if_exception(is_retryable), stop=stop_now, wait=self._wait,
                            sleep=self.stop.wait, before_sleep=self._count_retry, reraise=True)
        try:
            return retrying(self._once, messages)
        except RetryError as err:  # pragma: no cover - reraise=True hands back the last error
            raise err.last_attempt.exception() from None

    def _once(self, messages: Messages) -> dict:
        response = self._client.chat.completions.create(**self.config.request_body(messages))
        if not getattr(response, "choices", None):
            raise MalformedResponse("the answer has no choices")
        usage = response.usage
        return {
            "text": response.choices[0].message.content or "",
            "finish_reason": response.choices[0].finish_reason,
            "model": response.model,
            "prompt_tokens": usage.prompt_tokens if usage else None,
            "completion_tokens": usage.completion_tokens if usage else None,
        }

    def _wait(self, state) -> float:
        from tenacity import wait_random_exponential

        after = retry_after_seconds(state.outcome.exception())
        if after is not None:
            return min(after, MAX_RETRY_AFTER)
        return wait_random_exponential(multiplier=self.config.backoff_base, max=self.config.backoff_max)(state)

    def _count_retry(self, state) -> None:
        with self._retry_lock:
            self.retries += 1
        exc = state.outcome.exception()
        log.debug("retry %d after %s: %s", state.attempt_number, type(exc).__name__, self.redact(str(exc)))


@dataclass
class BatchResult:
    """What :func:`run_batch` did. ``responses[i]`` answers ``requests[i]`` (None if not done).

    Attributes:
        stopped: None when every request has an answer, else why not ("budget: ...",
            "error: ...", "interrupted").
        errors: request key -> error text for requests that failed for good.
    """

    keys: list[str]
    responses: list[dict | None]
    n_cached: int = 0
    n_sent: int = 0
    n_retries: int = 0
    stopped: str | None = None
    errors: dict[str, str] = field(default_factory=dict)
    spent: dict = field(default_factory=dict)


class _Run:
    """The state one batch shares between its worker threads."""

    def __init__(self, client: ChatClient, cache: ResponseCache, budget: Budget):
        self.client, self.cache, self.budget = client, cache, budget
        self.lock = threading.Lock()
        self.stopped: str | None = None
        self.errors: dict[str, str] = {}

    def halt(self, reason: str) -> None:
        with self.lock:
            self.stopped = self.stopped or reason
        if not reason.startswith("budget"):
            self.client.stop.set()

    def work(self, key: str, messages: Messages) -> dict | None:
        """Reserve budget, ask, cache; None when skipped or failed."""
        import openai

        if self.stopped or self.client.stop.is_set():
            return None
        reservation = self.budget.reserve(estimate_tokens(messages), self.client.config.max_tokens)
        if reservation is None:
            self.halt(f"budget: {self.budget.exhausted}")
            return None
        try:
            answer = self.client.complete(messages)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded, none is silent
            self.budget.release(reservation)
            self._fail(key, exc, openai)
            return None
        self.budget.settle(reservation, answer["prompt_tokens"], answer["completion_tokens"])
        self.cache.put(key, self.client.config.request_body(messages), answer)
        return answer

    def _fail(self, key: str, exc: Exception, openai) -> None:
        text = self.client.redact(f"{type(exc).__name__}: {exc}")
        with self.lock:
            self.errors[key] = text
        if self.client.stop.is_set():
            return
        status = getattr(exc, "status_code", None)
        if isinstance(exc, openai.APIStatusError) and status not in _ABORT_STATUS and not is_retryable(exc):
            log.error("request failed (%s); the item is left unjudged: %s", status, text)
        else:
            self.halt(f"error: {text}")


def run_batch(requests: Sequence[Messages], config: ClientConfig, cache: ResponseCache,
              budget: Budget | None = None, progress: bool = True, desc: str = "requests",
              key_extras: Sequence[dict | None] | None = None) -> BatchResult:
    """Answer every request: from the cache, else from the endpoint, within the budget.

    Args:
        requests: chat messages, one list per request (duplicates are sent once).
        config: endpoint, model, decoding, timeouts, retries and concurrency.
        cache: where answers are looked up and stored.
        budget: caps on what may be spent (none by default).
        progress: show a tqdm bar (rate and ETA) over the requests to send.
        desc: the bar's label.
        key_extras: per request, data mixed into its cache key only, e.g. ``{"sample": 2}`` to
            get several independent answers to the same prompt at temperature > 0.

    Returns:
        A :class:`BatchResult`; ``stopped`` says why some answers are missing.
        Ctrl-C stops sending, waits for the requests in flight (they are cached) and
        re-raises KeyboardInterrupt.
    """
    from tqdm import tqdm

    extras = list(key_extras) if key_extras is not None else [None] * len(requests)
    if len(extras) != len(requests):
        raise ValueError("key_extras must have one entry per request")
    keys = [request_key(config.request_body(m), x) for m, x in zip(requests, extras)]
    answers = cache.get_many(keys)
    todo = {k: m for k, m in zip(keys, requests) if k not in answers}
    result = BatchResult(keys=keys, responses=[], n_cached=len(set(keys)) - len(todo))
    if todo:
        run = _Run(ChatClient(config), cache, budget or Budget())
        bar = tqdm(total=len(todo), desc=desc, unit="req", disable=not progress, dynamic_ncols=True)
        bar.set_postfix(cached=result.n_cached)
        with ThreadPoolExecutor(max_workers=max(1, config.concurrency)) as pool:
            futures = {pool.submit(run.work, k, m): k for k, m in todo.items()}
            try:
                for future in as_completed(futures):
                    answer = future.result()
                    if answer is not None:
                        answers[futures[future]] = answer
                        result.n_sent += 1
                    bar.update(1)
            except KeyboardInterrupt:
                run.halt("interrupted")
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            finally:
                bar.close()
        result.stopped, result.errors, result.n_retries = run.stopped, run.errors, run.client.retries
        result.spent = run.budget.spent()
        if result.stopped is None and run.errors:
            result.stopped = f"error: {len(run.errors)} request(s) failed"
        answers = cache.get_many(keys)  # what was stored, with its created_at: reruns see the same
    result.responses = [answers.get(k) for k in keys]
    return result
