"""The task catalogue (``splits.yaml``): which splits and tasks exist, and what each one is.

One file states the task list; the task classes, ``run``, ``reproduce``, ``data check``, the
leaderboard schema and the fine-tuning recipes read it through this module, and a test
checks the task YAMLs against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from rolebench_eval.errors import InputError

CATALOGUE = Path(__file__).with_name("splits.yaml")


@dataclass(frozen=True)
class Split:
    """A RoleBench test split: where its files live and what its items are."""

    name: str
    lang: str  # "en", "zh", or "auto" (a generated folder says which)
    kind: str  # "general" or "specific"
    dir: str
    profiles: str
    roles: str = "seen"  # "seen" in training, or "unseen" (role generalization)
    raw: str | None = None  # general splits: the instructions file with RAW's original answers
    custom: bool = False  # a folder written by `rolebench-eval generate`


# How a task asks its split (splits.yaml's `family`): the paper's single-turn tasks; multi-turn
# continuity and identity probes (tasks/multiturn.py); the prompting studies (tasks/studies.py).
FAMILIES = ("single", "multiturn", "probe", "fewshot", "dialogue")


@dataclass(frozen=True)
class Task:
    """An lm-eval task of this package."""

    name: str
    split: Split
    label: str
    metric: str  # the paper's metric: "cus" (general) or "spe" (role-specific); "break" for probes
    version: str  # metadata.version of the task YAML, as lm-eval writes it ("1.0")
    family: str = "single"  # one of FAMILIES

    @property
    def lang(self) -> str:
        return self.split.lang

    @property
    def kind(self) -> str:
        return self.split.kind


@dataclass(frozen=True)
class Catalogue:
    splits: dict[str, Split]
    tasks: dict[str, Task]
    groups: dict[str, tuple[str, ...]]
    held_out_roles_en: tuple[str, ...]


@lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    """The parsed catalogue (read once)."""
    raw = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))
    splits = {name: Split(name=name, **fields) for name, fields in raw["splits"].items()}
    tasks = {}
    for name, fields in raw["tasks"].items():
        fields = dict(fields)
        split = splits[fields.pop("split")]
        if fields.get("family", "single") not in FAMILIES:
            raise InputError(CATALOGUE, None, f"tasks.{name}.family", f"expected one of {', '.join(FAMILIES)}")
        tasks[name] = Task(name=name, split=split, version=str(float(fields.pop("version"))), **fields)
    groups = {name: tuple(members) for name, members in raw["groups"].items()}
    return Catalogue(splits, tasks, groups, tuple(raw["held_out_roles_en"]))


def splits(custom: bool = False) -> dict[str, Split]:
    """RoleBench's own test splits by name (``specific_en``, ...); ``custom`` adds the generated-folder ones."""
    return {n: s for n, s in catalogue().splits.items() if custom or not s.custom}


def custom_splits() -> dict[str, Split]:
    """The splits of a folder written by ``rolebench-eval generate``."""
    return {n: s for n, s in catalogue().splits.items() if s.custom}


def get_split(name: str) -> Split:
    """The split called ``name``; an :class:`InputError` lists the known names otherwise."""
    known = catalogue().splits
    if name not in known:
        raise InputError(None, None, "split", f"unknown RoleBench split {name!r}; known: {', '.join(known)}")
    return known[name]


def tasks(custom: bool = False, family: str | None = "single") -> dict[str, Task]:
    """The tasks on RoleBench's own splits by name; ``custom`` adds the generated-folder tasks.

    ``family`` picks one family of :data:`FAMILIES` (the paper's single-turn tasks by default);
    None gives every task.
    """
    return {n: t for n, t in catalogue().tasks.items()
            if (custom or not t.split.custom) and (family is None or t.family == family)}


def get_task(name: str) -> Task:
    """The task called ``name``; an :class:`InputError` lists the known names otherwise."""
    known = catalogue().tasks
    if name not in known:
        raise InputError(None, None, "task", f"unknown RoleBench task {name!r}; known: {', '.join(known)}")
    return known[name]


def task_of_split(split: str) -> Task:
    """The single-turn task that evaluates ``split``."""
    for task in catalogue().tasks.values():
        if task.split.name == split and task.family == "single":
            return task
    raise KeyError(split)


def names() -> set[str]:
    """Every task and group name this package defines (what ``run`` recognises as ours)."""
    return set(catalogue().tasks) | set(catalogue().groups)


def held_out_roles_en() -> tuple[str, ...]:
    """The 10 English roles of role generalization, never seen in its training data."""
    return catalogue().held_out_roles_en
