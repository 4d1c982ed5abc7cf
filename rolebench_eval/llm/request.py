"""One chat request against any OpenAI-compatible endpoint: send, adapt, classify the failure, read the answer.

:class:`ChatClient` is shared by the worker threads of a batch. It holds the API key (read
from the environment, kept in memory only), the scrubber that takes it out of every text,
the run's :class:`~rolebench_eval.llm.compat.Decoding` and the ``openai`` client. The SDK's
own retries are off: :mod:`rolebench_eval.llm.client` retries, so that waits are
configurable, malformed bodies are retried too, and a stopping run stops waiting.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import threading
import time

from .compat import Decoding, error_body, error_message, sdk_arguments, unsupported_parameter
from .config import OPENAI_URL, ClientConfig, LLMConfigError, Messages
from .scrub import Scrubber, scrub_url
from .transport import deadline, http_client

log = logging.getLogger(__name__)

MAX_RETRY_AFTER = 120.0
RETRY_STATUS = {408, 409, 429}
_FATAL_HINTS = {
    401: "the endpoint rejected the API key: check ${env} (the key is read from there)",
    403: "the key may not use this model or endpoint: check ${env}, the model name and your access",
    404: "nothing there: check --base-url (it usually ends in /v1) and --model",
}


class EndpointError(LLMConfigError):
    """The endpoint refuses the run's settings (key, URL, model, a parameter): fix the config, exit 2."""


class MalformedResponse(Exception):
    """The endpoint answered 200 with a body that is not a chat completion (an HTML page, no choices)."""


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


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of a failed request, None for transport failures."""
    return getattr(exc, "status_code", None)


def is_retryable(exc: BaseException) -> bool:
    """Transient failures: 408/409/429/5xx, connection errors, timeouts, malformed bodies."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in RETRY_STATUS or exc.status_code >= 500
    return isinstance(exc, (openai.APIConnectionError, json.JSONDecodeError, MalformedResponse))


def is_congestion(exc: BaseException) -> bool:
    """Failures that say "fewer requests at once, please": timeouts, dropped connections, 429, 5xx."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return isinstance(exc, openai.APIConnectionError)


def failure_kind(exc: BaseException) -> str:
    """``timeout``, ``connection``, ``rate_limit``, ``server``, ``malformed`` or ``rejected`` (other 4xx)."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection"
    status = status_of(exc)
    if status == 429:
        return "rate_limit"
    if status is not None and (status >= 500 or status in RETRY_STATUS):
        return "server"
    if status is None:
        return "malformed"
    return "rejected"


class ChatClient:
    """One ``openai.OpenAI`` client for the threads of a run (see the module docstring)."""

    def __init__(self, config: ClientConfig, stop: threading.Event | None = None):
        import openai

        self.config = config
        self.stop = stop or threading.Event()
        key = os.environ.get(config.api_key_env)
        base_url = config.base_url or os.environ.get("OPENAI_BASE_URL")
        if not key:
            if not base_url:
                raise LLMConfigError(f"${config.api_key_env}", None, None, "no API key: set this environment variable "
                                     "(or give --base-url for a local server, which needs none)")
            key = "EMPTY"  # local servers (vLLM, Ollama, llama.cpp, transformers serve) accept any key
        self.redact = Scrubber(None if key == "EMPTY" else key, base_url)
        self.endpoint = scrub_url(base_url or OPENAI_URL)
        self.decoding = Decoding(config)
        self._client = openai.OpenAI(api_key=key, base_url=config.base_url, max_retries=0, timeout=config.timeout,
                                     http_client=http_client(config.timeout, config.workers + 4))

    def send(self, messages: Messages) -> dict:
        """One answer for ``messages``: a single HTTP try, plus one more per setting the endpoint refuses."""
        import openai

        for _ in range(len(self.config.decoding()) + 2):
            fields = self.decoding.current()
            try:
                with deadline(self.config.timeout):
                    response = self._client.chat.completions.create(
                        **sdk_arguments(messages, self.config.model, fields))
            except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:  # 400, 422 (pydantic servers)
                message = self.redact(error_message(exc))
                if not self.decoding.adapt(fields, unsupported_parameter(error_body(exc), message), message,
                                           self.endpoint):
                    raise
                continue
            return self._answer(response, fields)
        raise MalformedResponse("the endpoint kept refusing the adapted settings")  # pragma: no cover

    def _answer(self, response, fields: dict) -> dict:
        choices = getattr(response, "choices", None)
        if not choices or getattr(choices[0], "message", None) is None:
            raise MalformedResponse("the answer has no choices" if isinstance(choices, list)
                                    else "the answer is not a chat completion")
        choice, message = choices[0], choices[0].message
        refusal = getattr(message, "refusal", None)
        if message.content is None and refusal is None and choice.finish_reason is None:
            raise MalformedResponse("the answer has no content, no refusal and no finish reason")
        usage = response.usage
        prompt, completion = (usage.prompt_tokens, usage.completion_tokens) if usage else (None, None)
        return {"text": self.redact(message.content or ""), "refusal": self.redact(refusal) if refusal else None,
                "finish_reason": choice.finish_reason, "model": response.model, "decoding": fields,
                "usage": {"prompt_tokens": prompt, "completion_tokens": completion},
                "prompt_tokens": prompt, "completion_tokens": completion}

    def describe(self, exc: BaseException) -> str:
        """A failure in one scrubbed line: ``<status or kind>: <the server's words>``."""
        status = status_of(exc)
        head = f"{status}" if status else type(exc).__name__
        return self.redact(f"{head}: {error_message(exc) if status else exc}")

    def fatal(self, exc: BaseException) -> EndpointError | None:
        """The run-stopping error for a 401, 403 or 404 (wrong key, URL or model), else None."""
        status = status_of(exc)
        if status not in _FATAL_HINTS:
            return None
        hint = _FATAL_HINTS[status].replace("${env}", f"${self.config.api_key_env}")
        return EndpointError(self.endpoint, None, None,
                             f"{self.describe(exc)} (model {self.config.model!r}); {hint}")

    def close(self) -> None:
        self._client.close()
