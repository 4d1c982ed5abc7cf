"""Whole-request deadlines for the ``openai`` SDK's HTTP client.

httpx's timeouts bound each phase and each socket read separately, so a server that sends
a 200 and then one byte every half second keeps a request alive far past ``--timeout``.
Here every socket operation of a request (connect, TLS, send, each read of the headers and
the body) is given only the time left until the request's deadline, and fails once it has
passed: ``--timeout`` is the most one request can take, in all.

The deadline is per thread (:func:`deadline`); the SDK sends and reads a non-streamed
response in the calling thread. It is enforced by a network backend wrapped around
httpcore's: the one seam httpcore has for this (``ConnectionPool(network_backend=...)``);
httpx does not pass it through, so the transport's pool gets it after construction.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from types import ModuleType

_local = threading.local()


@contextlib.contextmanager
def deadline(seconds: float):
    """Every socket operation of this thread inside the block ends by ``now + seconds``."""
    _local.at = time.monotonic() + seconds
    try:
        yield
    finally:
        _local.at = None


def _left(timeout: float | None, error: type[Exception]) -> float | None:
    at = getattr(_local, "at", None)
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise error("the request's deadline (--timeout) passed")
    return left if timeout is None else min(timeout, left)


class _Stream:
    """A network stream whose operations stop at the thread's deadline."""

    def __init__(self, inner, core: ModuleType):
        self._inner, self._core = inner, core

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout, self._core.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(timeout, self._core.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        inner = self._inner.start_tls(ssl_context, server_hostname, _left(timeout, self._core.ConnectTimeout))
        return _Stream(inner, self._core)

    def get_extra_info(self, info: str):
        return self._inner.get_extra_info(info)


class _Backend:
    """Wraps httpcore's network backend so that its streams obey the deadline."""

    def __init__(self, inner, core: ModuleType):
        self._inner, self._core = inner, core

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        stream = self._inner.connect_tcp(host, port, _left(timeout, self._core.ConnectTimeout), local_address,
                                         socket_options)
        return _Stream(stream, self._core)

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        stream = self._inner.connect_unix_socket(path, _left(timeout, self._core.ConnectTimeout), socket_options)
        return _Stream(stream, self._core)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def httpx_module() -> ModuleType:
    """The httpx package the installed ``openai`` SDK is built on (``httpx`` or its successor)."""
    import openai

    client = next(c for c in openai.DefaultHttpxClient.__mro__[1:] if c.__name__ == "Client")
    return sys.modules[client.__module__.split(".")[0]]


def http_client(timeout: float, connections: int):
    """An SDK-compatible HTTP client whose requests each end within ``timeout`` seconds."""
    import openai

    hx = httpx_module()
    limits = hx.Limits(max_connections=connections, max_keepalive_connections=connections)
    transport = hx.HTTPTransport(limits=limits)
    pool = getattr(transport, "_pool", None)
    if pool is None or not hasattr(pool, "_network_backend"):  # pragma: no cover - a future httpx
        raise RuntimeError("this httpx version has no network backend seam; whole-request deadlines "
                           "cannot be enforced (tests/test_llm_endpoints.py checks this)")
    core = sys.modules[type(pool).__module__.split(".")[0]]
    pool._network_backend = _Backend(pool._network_backend, core)
    return openai.DefaultHttpxClient(transport=transport, timeout=hx.Timeout(timeout))
