"""What one run sends, adapted once when the endpoint refuses a setting (newer OpenAI models refuse
``max_tokens`` and a non-default ``temperature`` with a 400 naming the parameter).

Proxies and other servers phrase the refusal differently (no ``param``, a ``detail`` string, pydantic's
"Extra inputs are not permitted"), so the parameter is read from ``param`` if any, else from the message.
:class:`Decoding` changes it once for the run: the token cap moves to the other name, ``temperature`` /
``top_p`` / ``seed`` are left out. The cache key stays that of the settings asked for.

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
    """The JSON error object of an ``openai.APIStatusError`` (the SDK parsed and unwrapped it; else ``{}``)."""
    body = getattr(exc, "body", None)
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
        """After a 400 naming ``param`` for what was ``sent``: change what is sent; True when a retry
        may now succeed (also when another thread already changed it)."""
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

