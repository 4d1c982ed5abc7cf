"""One chat request to an OpenAI-compatible endpoint: send, adapt, read within a deadline, classify failures.

:class:`ChatClient` is shared by a batch's threads: the API key (from the environment, in memory only),
the :class:`Scrubber` that takes it out of every text, the run's :class:`~.compat.Decoding` and the
``openai`` client with its retries off (:mod:`.client` retries). ``--timeout`` is a whole-request
deadline: the body is read as a stream (``with_streaming_response``) and the deadline checked after
every chunk, so a 200 that trickles in ends at it (httpx's timeouts bound each read, not the request).
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import os
import re
import sys
import threading
import time
from types import ModuleType
from typing import Any

from rolebench_eval.fileio import replace_surrogates

from .compat import Decoding, error_body, error_message, unsupported_parameter
from .config import OPENAI_URL, ClientConfig, LLMConfigError, Messages

RETRY_STATUS = {408, 409, 429}
_FATAL_HINTS = {
    401: "the endpoint rejected the API key: check ${env} (the key is read from there)",
    403: "the key may not use this model or endpoint: check ${env}, the model name and your access",
    404: "nothing there: check --base-url (it usually ends in /v1) and --model",
}
_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_\-*.]{4,}")
MIN_SECRET = 6  # shorter "keys" (a local server's "x") are not secrets worth mangling text for
# The HTTP library's per-request INFO lines (openai 3 is built on httpx2/httpcore2, earlier on httpx/httpcore).
PER_REQUEST_LOGGERS = ("httpx", "httpx2", "openai")
QUIET_LOGGERS = (*PER_REQUEST_LOGGERS, "httpcore", "httpcore2")


class EndpointError(LLMConfigError):
    """The endpoint refuses the run's settings (key, URL, model, a parameter): fix the config, exit 2."""


class MalformedResponse(Exception):
    """The endpoint answered 200 with a body that is not a chat completion (an HTML page, no choices)."""


def retry_after_seconds(exc: BaseException) -> float | None:
    """The server-requested delay of a failed request (``retry-after-ms`` or ``Retry-After``)."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000
        value = headers.get("retry-after")
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def failure_kind(exc: BaseException) -> str:
    """``timeout``, ``connection``, ``rate_limit``, ``server`` (5xx, 408, 409), ``malformed`` (all transient)
    or ``rejected``."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection"
    if isinstance(exc, openai.RateLimitError):
        return "rate_limit"
    if isinstance(exc, openai.APIStatusError):
        return "server" if exc.status_code >= 500 or exc.status_code in RETRY_STATUS else "rejected"
    return "malformed" if isinstance(exc, MalformedResponse) else "rejected"


def httpx_module() -> ModuleType:
    """The httpx package the installed ``openai`` SDK is built on (``httpx``, or ``httpx2`` for openai 3)."""
    import openai

    client = next(c for c in openai.DefaultHttpxClient.__mro__[1:] if c.__name__ == "Client")
    return sys.modules[client.__module__.split(".")[0]]


def sendable(messages: Messages) -> Messages:
    """``messages`` as UTF-8 can carry them: a lone surrogate is sent as U+FFFD (the cache keeps the text)."""
    return [{k: replace_surrogates(v) if isinstance(v, str) else v for k, v in m.items()} for m in messages]


def answer_from(data, fields: dict, redact=str) -> dict:
    """The cache's answer record (texts ``redact``-ed) from a chat-completion body sent with ``fields``,
    synchronous or batch; raises :class:`MalformedResponse`."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices or not isinstance(choices[0], dict) or not isinstance(choices[0].get("message"), dict):
        raise MalformedResponse("the answer has no choices" if isinstance(choices, list)
                                else "the answer is not a chat completion")
    choice, message = choices[0], choices[0]["message"]
    content, refusal = message.get("content"), message.get("refusal")
    if content is None and refusal is None and choice.get("finish_reason") is None:
        raise MalformedResponse("the answer has no content, no refusal and no finish reason")
    usage = data.get("usage") or {}
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return {"text": redact(content or ""), "refusal": redact(refusal) if refusal else None,
            "finish_reason": choice.get("finish_reason"), "model": data.get("model"), "decoding": fields,
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion},
            "prompt_tokens": prompt, "completion_tokens": completion}


class ChatClient:
    """One ``openai.OpenAI`` client (``sdk``) for the threads of a run."""

    def __init__(self, config: ClientConfig):
        import openai

        self.config, self.stop, self.hx = config, threading.Event(), httpx_module()
        self.endpoint = config.resolved_base_url()
        key = os.environ.get(config.api_key_env)
        if not key:
            if self.endpoint == OPENAI_URL:
                raise LLMConfigError(f"${config.api_key_env}", None, None, "no API key: set this environment variable "
                                     "(or give --base-url for a local server, which needs none)")
            key = "EMPTY"  # local servers (vLLM, Ollama, llama.cpp, transformers serve) accept any key
        self.redact = Scrubber(None if key == "EMPTY" else key)
        self.decoding = Decoding(config)
        self.reached = False  # the endpoint answered something (a status, a body) in this run
        timeout = self.hx.Timeout(config.timeout, connect=min(config.timeout, openai.DEFAULT_TIMEOUT.connect))
        self.sdk = openai.OpenAI(api_key=key, base_url=self.endpoint, max_retries=0, timeout=timeout)

    def send(self, messages: Messages) -> dict:
        """One answer for ``messages``: a single HTTP try, plus one more per setting the endpoint refuses."""
        import openai

        for _ in range(len(self.config.decoding()) + 2):
            fields = self.decoding.current()
            try:
                return answer_from(self._post(messages, fields), fields, self.redact)
            except openai.APIStatusError as exc:
                self.reached = True
                if not isinstance(exc, (openai.BadRequestError, openai.UnprocessableEntityError)):  # 400, 422
                    raise
                message = self.redact(error_message(exc))
                if not self.decoding.adapt(fields, unsupported_parameter(error_body(exc), message), message,
                                           self.endpoint):
                    raise
        raise MalformedResponse("the endpoint kept refusing the adapted settings")  # pragma: no cover

    def _post(self, messages: Messages, fields: dict) -> dict:
        """The answer's JSON, read before the deadline. The decoding goes in ``extra_body``: the token
        cap's name can change mid-run, and older SDKs lack the newer name."""
        import openai

        deadline = time.monotonic() + self.config.timeout
        create = self.sdk.chat.completions.with_streaming_response.create
        with create(model=self.config.model, messages=sendable(messages), extra_body=dict(fields)) as response:
            self.reached, body = True, bytearray()
            try:
                for chunk in response.iter_bytes():
                    body += chunk
                    if time.monotonic() > deadline:
                        raise self.hx.ReadTimeout("the request's deadline (--timeout) passed")
            except self.hx.TimeoutException as exc:
                raise openai.APITimeoutError(request=response.http_request) from exc
            except self.hx.RequestError as exc:  # the body was cut short
                raise openai.APIConnectionError(request=response.http_request) from exc
        try:
            return json.loads(body)
        except ValueError as exc:
            raise MalformedResponse(f"the answer is not JSON ({exc})") from None

    def describe(self, exc: BaseException) -> str:
        """A failure in one scrubbed line: ``<status or kind>: <the server's words>``."""
        status = getattr(exc, "status_code", None)
        return self.redact(f"{status}: {error_message(exc)}" if status else f"{type(exc).__name__}: {exc}")

    def fatal(self, exc: BaseException) -> EndpointError | None:
        """The run-stopping error for a wrong key, URL or model (401, 403, 404, nothing listening), else None."""
        status, cause = getattr(exc, "status_code", None), exc.__cause__
        if status is None and not self.reached and isinstance(cause, (self.hx.ConnectError, self.hx.ConnectTimeout)):
            return EndpointError(self.endpoint, None, None,
                                 f"nothing answers there ({type(cause).__name__}: {self.redact(str(cause))}): "
                                 "check --base-url and that the server is running")
        if status not in _FATAL_HINTS:
            return None
        hint = _FATAL_HINTS[status].replace("${env}", f"${self.config.api_key_env}")
        return EndpointError(self.endpoint, None, None, f"{self.describe(exc)} (model {self.config.model!r}); {hint}")

    def close(self) -> None:
        self.sdk.close()


class Scrubber:
    """Puts ``***`` for the API key and anything shaped like an OpenAI key (``sk-...``) in a text.

    >>> Scrubber("live-0123456789")("key live-0123456789, or sk-proj-abcdef")
    'key ***, or ***'
    """

    def __init__(self, key: str | None = None):
        self.secrets = [key] if key and len(key) >= MIN_SECRET else []

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return _KEY_LIKE.sub("***", text)

    def value(self, value: Any) -> Any:
        """Scrub every string inside a JSON-like value."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value


@contextlib.contextmanager
def quiet_and_scrubbed(scrub: Scrubber, verbose: bool):
    """Inside: the HTTP library's per-request INFO lines only if ``verbose``; every line the root
    logger's handlers print is scrubbed."""
    def scrubbed(record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub(record.getMessage()), ()
        return True

    loggers = {name: logging.getLogger(name) for name in QUIET_LOGGERS}
    levels = {name: logger.level for name, logger in loggers.items()}
    handlers = list(logging.getLogger().handlers)
    for name, logger in loggers.items():
        logger.setLevel(logging.INFO if verbose and name in PER_REQUEST_LOGGERS else logging.WARNING)
    for handler in handlers:
        handler.addFilter(scrubbed)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(scrubbed)
        for name, logger in loggers.items():
            logger.setLevel(levels[name])
