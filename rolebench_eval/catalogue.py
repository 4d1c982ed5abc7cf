"""The catalogue (``splits.yaml``): the package's vocabulary of splits, tasks, metrics and languages.

One file states each name once; the task classes, ``run``, ``reproduce``, ``data check``, the
metrics, the leaderboard and the fine-tuning recipes read it through this module, and the task
YAMLs are generated from it (``tasks/configs.py``).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from rolebench_eval.errors import InputError
from rolebench_eval.fileio import load_yaml

CATALOGUE = Path(__file__).with_name("splits.yaml")


@dataclass(frozen=True)
class Split:
    """A RoleBench test split: where its files live and what its items are."""

    name: str
    lang: str  # one of `languages`, or "auto" (a generated folder says which)
    kind: str  # "general" or "specific"
    dir: str
    profiles: str
    roles: str = "seen"  # "seen" in training, or "unseen" (role generalization)
    raw: str | None = None  # general splits: the instructions file with RAW's original answers
    custom: bool = False  # a folder written by `rolebench-eval generate`


@dataclass(frozen=True)
class Metric:
    """A per-item metric: where it applies and how lm-eval aggregates it."""

    name: str
    higher_is_better: bool | None
    aggregation: str = "mean"
    kinds: tuple[str, ...] = ()  # split kinds it applies to; empty: every kind
    families: tuple[str, ...] = ()  # task families it applies to; empty: every family
    needs: str | None = None  # a Split field that must be set (raw: the original answers)
    main: bool = False  # a headline metric: a task's first one is its paper metric
    paper: bool = False  # the paper reports it (CUS, SPE, RAW)

    def applies(self, family: str, split: Split) -> bool:
        return ((not self.kinds or split.kind in self.kinds) and (not self.families or family in self.families)
                and (self.needs is None or bool(getattr(split, self.needs))))


@dataclass(frozen=True)
class Family:
    """How a task asks its split; what its YAML names besides the shared template."""

    name: str
    task_class: str | None = None  # default: the template's RoleBenchTask
    process_results: str | None = None  # default: the template's
    comment: str | None = None  # heads each task YAML of the family


@dataclass(frozen=True)
class Task:
    """An lm-eval task of this package."""

    name: str
    split: Split
    label: str
    version: str  # metadata.version of the task YAML, as lm-eval writes it ("1.0")
    metrics: tuple[str, ...]  # what it reports, in the order of the catalogue's metrics table
    family: str = "single"
    comment: str | None = None

    @property
    def metric(self) -> str:
        """The paper's metric: "cus" (general), "spe" (role-specific); "break" for probes."""
        main = [m for m in self.metrics if catalogue().metrics[m].main]
        return main[0]

    @property
    def paper_metrics(self) -> tuple[str, ...]:
        """Its metrics the paper reports: the paper metric, and RAW on general splits."""
        return tuple(m for m in self.metrics if catalogue().metrics[m].paper)

    @property
    def lang(self) -> str:
        return self.split.lang

    @property
    def kind(self) -> str:
        return self.split.kind


@dataclass(frozen=True)
class LiveTask:
    """A task name of ``converse``'s results (lm-eval's layout; never run by lm-eval): one mode, one language."""

    name: str
    mode: str  # "replay" or "live" (rolebench_eval.outputs.conversation.MODES)
    lang: str
    label: str
    version: str
    metrics: tuple[str, ...] = ()  # family `live`'s, in the metrics table's order

    @property
    def metric(self) -> str:
        """Its first main metric (as :attr:`Task.metric`)."""
        return next(m for m in self.metrics if catalogue().metrics[m].main)


@dataclass(frozen=True)
class Group:
    """An lm-eval group: its members (tasks or groups) and what its YAML says."""

    name: str
    alias: str
    tasks: tuple[str, ...]
    version: float
    comment: str | None = None


@dataclass(frozen=True)
class Language:
    """What differs between languages: tokens, the role prompt, the few-shot study's turn."""

    name: str
    tokens: str  # "words" or "characters" (see splits.yaml)
    role_prompt: str
    role_clause: tuple[str, str]  # the description clause, and what replaces it without a description
    fewshot_turn: tuple[str, str, str]  # header, one demonstration, the question
    quotes: tuple[str, str]  # around a quoted phrase (a catchphrase)
    list_separator: str  # between the items of a list in running text
    catchphrases: str  # a role description followed by its catchphrases (generate)
    segment_size: int  # Context-Instruct's default script segment, in `tokens`


@dataclass(frozen=True)
class Catalogue:
    splits: dict[str, Split]
    tasks: dict[str, Task]
    groups: dict[str, Group]
    held_out_roles_en: tuple[str, ...]
    families: dict[str, Family]
    metrics: dict[str, Metric]
    languages: dict[str, Language]
    reasoning: tuple[str, str]  # the start and end markers of a reasoning block
    live_tasks: dict[str, LiveTask] = dataclasses.field(default_factory=dict)


def _table(raw: dict, table: str, cls: type) -> dict:
    """The entries of ``raw[table]`` as ``cls`` by name; an :class:`InputError` names an entry that does not fit."""
    import msgspec

    out, known = {}, {f.name for f in dataclasses.fields(cls)}
    for name, fields in raw[table].items():
        if unknown := set(fields) - known:
            raise InputError(CATALOGUE, None, f"{table}.{name}.{min(unknown)}", "unknown field")
        try:
            out[name] = msgspec.convert({"name": name, **fields}, cls)
        except msgspec.ValidationError as err:
            raise InputError(CATALOGUE, None, f"{table}.{name}", str(err)) from None
    return out


def _task(name: str, fields: dict, splits: dict[str, Split], metrics: dict[str, Metric], families) -> Task:
    fields = dict(fields)
    split = splits[fields.pop("split")]
    family = fields.pop("family", "single")
    if family not in families:
        raise InputError(CATALOGUE, None, f"tasks.{name}.family", f"expected one of {', '.join(families)}")
    reported = tuple(m.name for m in metrics.values() if m.applies(family, split))
    if not any(metrics[m].main for m in reported):
        raise InputError(CATALOGUE, None, f"tasks.{name}", "no main metric applies to this task")
    return Task(name=name, split=split, version=str(float(fields.pop("version"))), metrics=reported,
                family=family, **fields)


@lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    """The parsed catalogue (read once)."""
    raw = load_yaml(CATALOGUE.read_text(encoding="utf-8"))
    splits, families = _table(raw, "splits", Split), _table(raw, "families", Family)
    metrics = _table(raw, "metrics", Metric)
    for metric in metrics.values():
        if unknown := set(metric.families) - set(families):
            raise InputError(CATALOGUE, None, f"metrics.{metric.name}.families", f"unknown family {min(unknown)!r}")
    tasks = {name: _task(name, fields, splits, metrics, families) for name, fields in raw["tasks"].items()}
    languages = _table(raw, "languages", Language)
    return Catalogue(splits, tasks, _table(raw, "groups", Group), tuple(raw["held_out_roles_en"]), families, metrics,
                     languages, _reasoning(raw.get("reasoning")), _live_tasks(raw, metrics, languages))


def _live_tasks(raw: dict, metrics: dict[str, Metric], languages: dict) -> dict[str, LiveTask]:
    reported = tuple(m.name for m in metrics.values() if not m.families or "live" in m.families)
    out = {}
    for name, task in _table({"live_tasks": {n: {**f, "version": str(float(f["version"])), "metrics": reported}
                                             for n, f in raw.get("live_tasks", {}).items()}},
                             "live_tasks", LiveTask).items():
        if task.lang not in languages:
            raise InputError(CATALOGUE, None, f"live_tasks.{name}.lang", f"expected one of {', '.join(languages)}")
        if name in raw["tasks"] or name in raw["groups"]:
            raise InputError(CATALOGUE, None, f"live_tasks.{name}", "already the name of an lm-eval task or group")
        out[name] = task
    return out


def _reasoning(raw) -> tuple[str, str]:
    if not (isinstance(raw, dict) and all(isinstance(raw.get(k), str) and raw[k].strip() for k in ("start", "end"))):
        raise InputError(CATALOGUE, None, "reasoning",
                         "expected {start: <marker>, end: <marker>}, two non-empty strings")
    return raw["start"], raw["end"]


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

    ``family`` picks one of the catalogue's families (the paper's single-turn tasks by default);
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


def live_tasks() -> dict[str, LiveTask]:
    """The task names of ``converse``'s results by name (not lm-eval tasks: :func:`names` leaves them out)."""
    return catalogue().live_tasks


def live_task(mode: str, lang: str) -> LiveTask:
    """The task a conversation of ``mode`` in ``lang`` is written under."""
    for task in catalogue().live_tasks.values():
        if task.mode == mode and task.lang == lang:
            return task
    raise InputError(CATALOGUE, None, "live_tasks", f"no task for {mode} conversations in language {lang!r}")


def held_out_roles_en() -> tuple[str, ...]:
    """The 10 English roles of role generalization, never seen in its training data."""
    return catalogue().held_out_roles_en


def metrics() -> dict[str, Metric]:
    """Every per-item metric by name, in the order task YAMLs list them."""
    return catalogue().metrics


@lru_cache(maxsize=None)
def paper_metric(kind: str) -> str:
    """The paper's metric of a single-turn item of split kind ``kind`` ("cus" for general, "spe" for specific)."""
    for metric in catalogue().metrics.values():
        if metric.main and kind in metric.kinds and (not metric.families or "single" in metric.families):
            return metric.name
    raise KeyError(kind)


def reasoning_markers() -> tuple[str, str]:
    """(start, end): the markers of a reasoning block, whose answer follows the end marker."""
    return catalogue().reasoning


def languages() -> dict[str, Language]:
    """Every language a RoleBench split may be in, by code ("en", "zh")."""
    return catalogue().languages


def language(lang: str) -> Language:
    """The language ``lang``; an :class:`InputError` lists the known ones otherwise."""
    known = catalogue().languages
    if lang not in known:
        raise InputError(None, None, "lang", f"unsupported language {lang!r}; expected one of {', '.join(known)}")
    return known[lang]


@lru_cache(maxsize=None)
def token_unit(lang: str) -> str:
    """How texts in ``lang`` are cut into tokens: "words" or "characters" (see splits.yaml)."""
    return language(lang).tokens


# Multi-turn tasks report each metric per conversation depth: spe at depth 4 is spe_d4.
_DEPTH = re.compile(r"^(?P<metric>.+)_d(?P<depth>\d+)$")


def depth_metric(metric: str, depth: int) -> str:
    """The name of ``metric`` at conversation depth ``depth`` (``spe_d4``)."""
    return f"{metric}_d{depth}"


def split_depth_metric(name: str) -> tuple[str, int] | None:
    """(metric, depth) of a per-depth name (``spe_d4`` -> ("spe", 4)); None for another name."""
    hit = _DEPTH.match(name)
    if hit is None or hit["metric"] not in catalogue().metrics:
        return None
    return hit["metric"], int(hit["depth"])
