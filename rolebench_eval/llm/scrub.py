"""Secrets out of every text the client keeps or prints: answers, errors, cache rows, log lines.

The API key and anything shaped like an OpenAI key (``sk-...``) become ``***``: a server that
echoes the key inside an answer or an error message gets it stored and printed scrubbed.
(Credentials in the base URL are refused: :meth:`~rolebench_eval.llm.config.ClientConfig.resolved_base_url`.)

Example:
    >>> Scrubber("live-0123456789")("key live-0123456789, or sk-proj-abcdef")
    'key ***, or ***'
"""

from __future__ import annotations

import logging
import re
from typing import Any

_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_\-*.]{4,}")
MIN_SECRET = 6  # shorter "keys" (a local server's "x") are not secrets worth mangling text for


class Scrubber:
    """A callable that removes the API key (and key-shaped strings) from text."""

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


class ScrubFilter(logging.Filter):
    """A logging filter that scrubs the formatted message (for our and the HTTP library's loggers)."""

    def __init__(self, scrub: Scrubber):
        super().__init__()
        self.scrub = scrub

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.scrub(record.getMessage()), ()
        return True


# The HTTP library logs one INFO line per request; httpcore's DEBUG trace is never wanted here.
# (openai 3 is built on httpx2/httpcore2, earlier versions on httpx/httpcore.)
PER_REQUEST_LOGGERS = ("httpx", "httpx2", "openai")
QUIET_LOGGERS = (*PER_REQUEST_LOGGERS, "httpcore", "httpcore2")


def install_log_filters(scrub: Scrubber, verbose: bool) -> list:
    """Silence the HTTP library's per-request INFO lines unless ``verbose``; scrub every printed line.

    The filter goes on the root logger's handlers (where lines are printed, whichever logger
    wrote them). Returns what :func:`remove_log_filters` undoes.
    """
    undo = []
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        undo.append((logger, None, logger.level))
        logger.setLevel(logging.INFO if verbose and name in PER_REQUEST_LOGGERS else logging.WARNING)
    for handler in logging.getLogger().handlers:
        flt = ScrubFilter(scrub)
        handler.addFilter(flt)
        undo.append((handler, flt, None))
    return undo


def remove_log_filters(undo: list) -> None:
    """Undo :func:`install_log_filters`."""
    for target, flt, level in reversed(undo):
        if flt is not None:
            target.removeFilter(flt)
        else:
            target.setLevel(level)
