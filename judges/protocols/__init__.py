"""The judging protocols, one module each; a judge config's ``protocol:`` names the module.

Adding a protocol is one module here (defining ``PROTOCOL``, an instance of a
:class:`~.base.Protocol` subclass) and one judge folder using it; nothing else changes.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from .base import Item, Job, Judgment, Protocol, Unit

__all__ = ["Item", "Job", "Judgment", "Protocol", "Unit", "get", "names"]


def names() -> tuple[str, ...]:
    """The protocols shipped: every module of this package but ``base``."""
    return tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name != "base"))


@lru_cache(maxsize=None)
def get(name: str) -> Protocol:
    """The protocol object called ``name`` (one of :func:`names`); KeyError otherwise."""
    if name not in names():
        raise KeyError(name)
    return importlib.import_module(f"{__name__}.{name}").PROTOCOL
