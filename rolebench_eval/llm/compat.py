"""Endpoint compatibility: what one run actually sends, adapted once when the endpoint refuses a setting.

Newer OpenAI models answer a request carrying ``max_tokens`` or a non-default ``temperature``
with a 400 such as::

    {"error": {"message": "Unsupported parameter: 'max_tokens' is not supported with this model.
               Use 'max_completion_tokens' instead.", "type": "invalid_request_error",
               "param": "max_tokens", "code": "unsupported_parameter"}}
    {"error": {"message": "Unsupported value: 'temperature' does not support 0 with this model.
               Only the default (1) value is supported.", "param": "temperature",
               "code": "unsupported_value"}}

Proxies and other servers phrase it differently (no ``param``, a ``detail`` string, a prefix
such as "Provider API error:", pydantic's "Extra inputs are not permitted"), so the
parameter is read from ``param`` when there is one, else from the message.
:class:`Decoding` applies the change once for the whole run (thread-safe): the token cap
moves to the other name, ``temperature`` / ``top_p`` / ``seed`` are left out (the model's
default). The cache key does not change: it is computed from the settings asked for.

Example:
    >>> unsupported_parameter({"message": "Unsupported parameter: 'max_tokens' is not supported with "
    ...                        "this model. Use 'max_completion_tokens' instead."})
    'max_tokens'
    >>> unsupported_parameter({"detail": "Unsupported parameter: top_p"})
    'top_p'
    >>> unsupported_parameter({"message": "Invalid 'messages[1].content': string too long."}) is None
    True
"""

from __future__ import annotations

import json
import logging
import re
import threading

log = logging.getLogger(__name__)

ADAPTABLE = ("max_tokens", "max_completion_tokens", "temperature", "top_p", "seed")
_REFUSED = re.compile(r"unsupported|not supported|does not support|not permitted|not allowed|unrecognized|"
                      r"unknown (?:parameter|field|argument)|extra (?:inputs|fields)", re.IGNORECASE)
_INSTEAD = re.compile(r"\buse\s+['\"`]?\w+['\"`]?\s+instead", re.IGNORECASE)
_NAMED = re.compile(r"\b(" + "|".join(ADAPTABLE) + r")\b")


def error_body(exc: BaseException) -> dict:
    """The JSON error object of an ``openai.APIStatusError`` (the SDK parsed it; ``{}`` when there is none)."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    return body if isinstance(body, dict) else {}


def error_message(exc: BaseException) -> str:
    """The server's words for a failed request (its ``message`` or ``detail``), else the exception text."""
    body = error_body(exc)
    for field in ("message", "detail", "msg"):
        if isinstance(body.get(field), str) and body[field].strip():
            return body[field].strip()
    if body:
        return json.dumps(body, ensure_ascii=False)[:500]
    return str(exc)


def unsupported_parameter(body: dict, text: str = "") -> str | None:
    """The decoding parameter an error body says the endpoint refuses, or None."""
    message = " ".join(str(body.get(f, "")) for f in ("message", "detail", "msg")) + " " + text
    if not isinstance(body.get("detail"), str) and body.get("detail"):
        message += " " + json.dumps(body["detail"])
    param = body.get("param")
    code = str(body.get("code") or "")
    if param in ADAPTABLE and (code.startswith("unsupported") or _REFUSED.search(message)):
        return param
    if not _REFUSED.search(message):
        return None
    named = _NAMED.search(_INSTEAD.sub(" ", message))
    return named.group(1) if named else None


class Decoding:
    """The decoding fields one run sends, shared by its threads; adapted at most once per parameter."""

    def __init__(self, config):
        self._lock = threading.Lock()
        self._fields = config.decoding()
        self._token_switched = False
        self.changes: list[str] = []

    def current(self) -> dict:
        """The fields sent now (a copy)."""
        with self._lock:
            return dict(self._fields)

    def adapt(self, sent: dict, param: str | None, message: str, endpoint: str) -> bool:
        """After a 400 naming ``param``: change what is sent; True when a retry may now succeed.

        ``sent`` is what the failed request carried. When another thread already adapted
        (the field is no longer sent as it was), this one just retries.
        """
        if param is None or param not in sent:
            return False
        with self._lock:
            if self._fields.get(param) != sent[param] or param not in self._fields:
                return True  # someone else changed it in the meantime
            if param in ("max_tokens", "max_completion_tokens"):
                other = "max_completion_tokens" if param == "max_tokens" else "max_tokens"
                if self._token_switched:
                    return False  # both names refused: nothing left to try
                self._token_switched = True
                self._fields[other] = self._fields.pop(param)
                change = f"sending the token cap as '{other}' instead of '{param}'"
            else:
                self._fields.pop(param)
                change = f"leaving '{param}' out (the model's default applies)"
            self.changes.append(change)
        log.warning("%s refused '%s' (%s); %s for the rest of this run", endpoint, param, message, change)
        return True

