"""The characters scenarios are written for: the roles of one split of a data folder.

A RoleBench copy (``specific_en``, ``specific_zh``, ...) or a folder written by ``rolebench-eval
generate`` (``custom_specific``) is read through :func:`rolebench_eval.source.load_split`, the one
validator, so a file ``run`` refuses is refused here with the same line. Each character keeps its
items with a usable reference, ordered by item id: own-story scenarios draw their questions from
them, the same ones on every machine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from rolebench_eval.data import Item, is_degenerate, item_id
from rolebench_eval.errors import InputError


@dataclass(frozen=True)
class Character:
    name: str
    lang: str
    description: str
    items: tuple[Item, ...]  # usable items (a reference that is not a placeholder), by item id


@dataclass(frozen=True)
class CharacterSet:
    split: str
    sha256: str  # of the split's test file
    data: str  # "local", or the Hub commit
    characters: dict[str, Character]


def _usable(items: list[Item], role: str) -> tuple[Item, ...]:
    mine = [i for i in items if i.role == role and not all(is_degenerate(r) for r in i.references)]
    return tuple(sorted(mine, key=lambda i: item_id(i.role, i.question)))


def default_split(data_dir: str | os.PathLike | None) -> str:
    """``custom_specific`` for a folder written by ``generate`` (it has ``rolebench_custom.json``), else
    ``specific_en``: the split whose items own-story scenarios ask."""
    from rolebench_eval.source import CUSTOM_META, DataSource

    root = DataSource.resolve(data_dir).local_root
    return "custom_specific" if root is not None and (root / CUSTOM_META).is_file() else "specific_en"


def load_characters(split: str, data_dir: str | os.PathLike | None, roles: list[str] | None) -> CharacterSet:
    """The characters of ``split`` (all, or ``roles`` in that order: an unknown one is refused)."""
    from rolebench_eval.source import load_split

    data = load_split(split, data_dir)
    known = list(dict.fromkeys(i.role for i in data.items))
    missing = [r for r in roles or [] if r not in known]
    if missing:
        raise InputError("--roles", None, None, f"{missing[0]!r} is not a role of split {split} "
                                                f"({len(known)} roles, e.g. {', '.join(known[:3])})")
    chosen = roles or known
    lang = data.split.lang
    characters = {r: Character(r, lang, data.descriptions.get(r, ""), _usable(data.items, r)) for r in chosen}
    origin = data.provenance.get("commit", data.provenance.get("origin", "local"))
    return CharacterSet(split, data.provenance["sha256"], origin, characters)


def references(split: str, data_dir: str | os.PathLike | None) -> tuple[str, dict[str, tuple[str, ...]]]:
    """(the test file's sha256, item id -> references) of ``split``: what scores own-story turns."""
    from rolebench_eval.source import load_split

    data = load_split(split, data_dir)
    return data.provenance["sha256"], {item_id(i.role, i.question): i.references for i in data.items}
