"""Secrets out of every text the client keeps or prints: answers, errors, cache rows, log lines.

The API key and anything shaped like an OpenAI key (``sk-...``) become ``***``: a server that
echoes the key inside an answer or an error message gets it stored and printed scrubbed.
(Credentials in the base URL are refused: :meth:`~rolebench_eval.llm.config.ClientConfig.resolved_base_url`.)

Example:
    >>> Scrubber("live-0123456789")("key live-0123456789, or sk-proj-abcdef")
    'key ***, or ***'
"""

from __future__ import annotations

import contextlib
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


# The HTTP library logs one INFO line per request; httpcore's DEBUG trace is never wanted here.
# (openai 3 is built on httpx2/httpcore2, earlier versions on httpx/httpcore.)
PER_REQUEST_LOGGERS = ("httpx", "httpx2", "openai")
QUIET_LOGGERS = (*PER_REQUEST_LOGGERS, "httpcore", "httpcore2")


@contextlib.contextmanager
def quiet_and_scrubbed(scrub: Scrubber, verbose: bool):
    """Inside: the HTTP library's per-request INFO lines are silenced unless ``verbose``, and every
    printed line is scrubbed (a filter on the root logger's handlers, where lines are printed)."""
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
