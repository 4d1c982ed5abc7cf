"""Secrets out of every text the client keeps or prints: answers, errors, cache rows, log lines.

The API key, the password and user info of the base URL (``http://user:pass@host/v1``) and
anything shaped like an OpenAI key (``sk-...``) become ``***``. A server that echoes the key
inside an answer or an error message gets it stored and printed scrubbed. (httpx sends URL user
info as a Basic ``Authorization`` header, so its base64 form is scrubbed too.)

Example:
    >>> s = Scrubber("sk-live-0123456789", "http://bob:hunter2pass@llm.local/v1")
    >>> s("key sk-live-0123456789 at http://bob:hunter2pass@llm.local/v1")
    'key *** at http://***@llm.local/v1'
    >>> scrub_url("https://u:p@example.org/v1")
    'https://***@example.org/v1'
"""

from __future__ import annotations

import base64
import logging
import re
from typing import Any
from urllib.parse import unquote, urlsplit

_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_\-*.]{4,}")
_URL_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
MIN_SECRET = 6  # shorter "keys" (a local server's "x") are not secrets worth mangling text for


def scrub_url(url: str | None) -> str | None:
    """``url`` with its user info (``user:password@``) replaced by ``***@``."""
    return None if url is None else _URL_USERINFO.sub("***@", url)


class Scrubber:
    """A callable that removes the given secrets (and key-shaped strings) from text."""

    def __init__(self, key: str | None = None, base_url: str | None = None):
        secrets = {key} if key else set()
        if base_url:
            parts = urlsplit(base_url)
            user, password = unquote(parts.username or ""), unquote(parts.password or "")
            secrets |= {p for p in (parts.password, parts.username, user, password) if p}
            if user or password:  # httpx sends URL user info as Basic auth: its base64 form is secret too
                secrets.add(base64.b64encode(f"{user}:{password}".encode()).decode())
        self.secrets = sorted((s for s in secrets if len(s) >= MIN_SECRET), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        text = _URL_USERINFO.sub("***@", text)
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
