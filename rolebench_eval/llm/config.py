"""Where and how to ask: :class:`ClientConfig` (its defaults live here once) and the flags every
verb that asks an LLM shares (:func:`add_llm_arguments`, read back by :meth:`ClientConfig.from_args`).

    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_llm_arguments(parser)
    >>> config = ClientConfig.from_args(parser.parse_args(["--model", "gpt-5", "--timeout", "30"]))
    >>> config.model, config.timeout, config.concurrency
    ('gpt-5', 30.0, 'auto')
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from rolebench_eval.errors import InputError
from rolebench_eval.flags import Checked, number_arg

Messages = list[dict[str, str]]
TOKEN_PARAMS = ("max_tokens", "max_completion_tokens")
OPENAI_URL = "https://api.openai.com/v1"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_FIRST_CLASS = frozenset({"model", "messages", "temperature", "top_p", "seed", *TOKEN_PARAMS})


class LLMConfigError(InputError):
    """The client cannot be built or the endpoint refuses the settings (no key, bad URL or model, ...)."""


@dataclass(frozen=True)
class ClientConfig:
    """Endpoint, model, decoding (part of every cache key) and request settings.

    ``base_url`` None: ``$OPENAI_BASE_URL``, else OpenAI; ``api_key_env`` names the variable holding
    the key. ``temperature``, ``top_p``, ``seed`` None: not sent. ``max_tokens``, the completion cap,
    is sent as ``max_tokens_param``; ``extra_body`` fields are sent as they are. ``timeout``: seconds
    one request may take in all; ``max_retries`` after the first try, backing off from
    ``backoff_base`` up to ``backoff_max`` s. ``concurrency``: ``"auto"`` (up to ``max_concurrency``,
    see :mod:`~rolebench_eval.llm.limiter`) or a number. ``verbose``: the HTTP library's lines too.
    """

    model: str
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float | None = 0.0
    top_p: float | None = None
    seed: int | None = 0
    max_tokens: int = 512
    max_tokens_param: str = "max_tokens"
    extra_body: dict | None = None
    timeout: float = 120.0
    max_retries: int = 6
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    concurrency: int | str = "auto"
    max_concurrency: int = 64
    verbose: bool = False

    def __post_init__(self) -> None:
        if self.max_tokens_param not in TOKEN_PARAMS:
            raise LLMConfigError(None, None, "max_tokens_param",
                                 f"expected one of {', '.join(TOKEN_PARAMS)}, got {self.max_tokens_param!r}")
        if self.concurrency != "auto" and not (isinstance(self.concurrency, int) and self.concurrency >= 1):
            raise LLMConfigError(None, None, "concurrency", f"expected 'auto' or a whole number >= 1, "
                                                            f"got {self.concurrency!r}")
        if self.extra_body is not None and not isinstance(self.extra_body, dict):
            raise LLMConfigError(None, None, "extra_body", "expected a mapping of field names to values")
        clash = sorted(set(self.extra_body or {}) & _FIRST_CLASS)
        if clash:
            raise LLMConfigError(None, None, "extra_body", f"{clash[0]!r} has a setting of its own; set it there")
        for name in ("timeout", "max_tokens", "max_concurrency", "max_retries", "backoff_base", "backoff_max"):
            value, positive = getattr(self, name), name in ("timeout", "max_tokens", "max_concurrency")
            if not math.isfinite(value) or value < 0 or (positive and value == 0):
                raise LLMConfigError(None, None, name, f"must be {'positive' if positive else '>= 0'}, got {value!r}")

    def resolved_base_url(self) -> str:
        """``base_url``, else ``$OPENAI_BASE_URL``, else OpenAI's API. Credentials in it (``user:pass@``)
        are refused: the HTTP library would send them as Basic auth in place of the API key."""
        url = self.base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL
        if "@" in urlsplit(url.strip()).netloc:
            where = "--base-url" if self.base_url else "$OPENAI_BASE_URL"
            raise LLMConfigError(None, None, where, "holds credentials (user:password@): remove them and put the "
                                                    f"key in the environment variable ${self.api_key_env}")
        return url

    def endpoint_id(self) -> str:
        return endpoint_id(self.resolved_base_url())

    @property
    def workers(self) -> int:
        """The most requests that can ever be in flight at once."""
        return self.max_concurrency if self.concurrency == "auto" else int(self.concurrency)

    def request_body(self, messages: Messages) -> dict:
        """What decides an answer, and so the cache key: model, messages, decoding (the token cap
        always as ``max_tokens``, whatever name it is sent under)."""
        decoding = {"temperature": self.temperature, "max_tokens": self.max_tokens, "seed": self.seed,
                    "top_p": self.top_p}
        return ({"model": self.model, "messages": messages} | {k: v for k, v in decoding.items() if v is not None}
                | (self.extra_body or {}))

    def decoding(self) -> dict:
        """The decoding fields as first sent (before any adaptation)."""
        body = self.request_body([])
        body = {k: v for k, v in body.items() if k not in ("model", "messages")}
        body[self.max_tokens_param] = body.pop("max_tokens")
        return body

    @classmethod
    def layered(cls, base: dict, *overrides: dict) -> "ClientConfig":
        """A config from ``base`` (None = not sent) and ``overrides`` (later ones win; None = not given)."""
        settings: dict[str, Any] = dict(base)
        for layer in overrides:
            settings.update({k: v for k, v in layer.items() if v is not None})
        if not settings.get("model"):
            raise LLMConfigError(None, None, "--model", "no model given")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - names)
        if unknown:
            raise LLMConfigError(None, None, unknown[0], f"not a client setting; known: {', '.join(sorted(names))}")
        return cls(**settings)

    @classmethod
    def from_args(cls, args: argparse.Namespace, **base: Any) -> "ClientConfig":
        """The flags of :func:`add_llm_arguments` over ``base`` (e.g. a verb's decoding defaults)."""
        return cls.layered(base, overrides_from_args(args))


def endpoint_id(url: str) -> str:
    """``scheme://host:port/path`` of a base URL (the cache key's endpoint): no credentials, query or final ``/``.

        >>> endpoint_id("HTTP://bob:secret@LocalHost:8000/v1/?token=x")
        'http://localhost:8000/v1'
        >>> endpoint_id("https://api.openai.com/v1") == endpoint_id("https://api.openai.com:443/v1/")
        True
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port that is not a number: keep what was written (never its credentials)
        port = parts.netloc.rpartition("@")[2].rpartition(":")[2]
    host = (parts.hostname or "").lower()
    return f"{scheme}://{host}{'' if port is None else f':{port}'}{parts.path.rstrip('/')}"


def _concurrency(text: str) -> int | str:
    if text != "auto" and (not text.isdigit() or int(text) < 1):
        raise ValueError("expected 'auto' or a whole number >= 1")
    return text if text == "auto" else int(text)


def _json_object(text: str) -> dict:
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"not JSON ({err})") from None
    if not isinstance(parsed, dict):
        raise ValueError('expected a JSON object, e.g. \'{"reasoning_effort": "low"}\'')
    return parsed


def overrides_from_args(args: argparse.Namespace) -> dict:
    """The client settings given as flags (ClientConfig field names; flags left out are absent)."""
    given = {f.name: getattr(args, "max_new_tokens" if f.name == "max_tokens" else f.name, None)
             for f in dataclasses.fields(ClientConfig) if f.name != "max_concurrency"}
    return {k: v for k, v in given.items() if v is not None and v is not False}


def add_llm_arguments(parser: argparse.ArgumentParser, model_required: bool = False,
                      defaults_from: str = "the defaults", model_help: str = "model name at the endpoint, "
                                                                             "e.g. gpt-4o",
                      several_models: bool = False) -> None:
    """The endpoint, decoding, request, cache and budget flags. Each defaults to None (not given), so
    the defaults named by ``defaults_from`` apply underneath; ``several_models``: ``--model`` repeats."""
    from .budget import add_budget_arguments

    end = parser.add_argument_group("endpoint (key from the environment only)")
    end.add_argument("--model", required=model_required, help=model_help,
                     action="append" if several_models else "store")
    end.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 "
                                        "(default: $OPENAI_BASE_URL, else api.openai.com)")
    end.add_argument("--api-key-env", help="NAME of the environment variable holding the API key "
                                           "(default: OPENAI_API_KEY; local servers need none)")
    dec = parser.add_argument_group(f"decoding (default: {defaults_from})")
    dec.add_argument("--temperature", **number_arg())
    dec.add_argument("--top-p", **number_arg())
    dec.add_argument("--seed", **number_arg(int, low=None))
    dec.add_argument("--max-new-tokens", **number_arg(int, 1), help="completion-token cap per request")
    dec.add_argument("--max-tokens-param", choices=TOKEN_PARAMS,
                     help="the name the cap is sent under (default max_tokens; switched automatically "
                          "when the endpoint asks for the other)")
    dec.add_argument("--extra-body", action=Checked, parse=_json_object, metavar="JSON",
                     help='provider-specific fields sent as they are, e.g. \'{"reasoning_effort": "low"}\'')
    req = parser.add_argument_group("requests")
    req.add_argument("--concurrency", action=Checked, parse=_concurrency,
                     help="requests in flight: 'auto' (default: starts at 1, grows while latency holds, "
                          "backs off on timeouts, 429 and 5xx) or a number")
    req.add_argument("--timeout", **number_arg(strict=True), help="seconds one request may take in all (default 120)")
    req.add_argument("--max-retries", **number_arg(int), help="retries per request (default 6)")
    req.add_argument("--backoff-base", **number_arg(), help="first backoff window in seconds, doubling per retry "
                                                        "(default 1)")
    req.add_argument("--cache", help="SQLite cache file (default: $ROLEBENCH_CACHE_DIR or "
                                     "~/.cache/rolebench-eval, file llm_cache.sqlite)")
    req.add_argument("--dry-run", action="store_true", help="print requests, tokens and cost bound; send nothing")
    req.add_argument("--no-progress", action="store_true", help="no progress bar")
    req.add_argument("--verbose", action="store_true", help="also log every HTTP request (scrubbed)")
    add_budget_arguments(parser)

