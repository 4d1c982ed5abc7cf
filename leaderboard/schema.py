"""The leaderboard's column schema (``schema.yaml``): what each column is and how it is computed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from rolebench_eval.catalogue import tasks as catalogue_tasks
from rolebench_eval.errors import InputError

SCHEMA_PATH = Path(__file__).with_name("schema.yaml")
KINDS = ("score", "task_metric", "mean_of", "task_mean", "gap", "paper", "judge_win_rate", "judge_failures")
_REQUIRED = ("key", "display_name", "format", "higher_is_better", "description", "kind")


class SchemaError(InputError):
    """The schema file is malformed; the message names the file and the column."""


@dataclass(frozen=True)
class TaskInfo:
    """A RoleBench task as the leaderboard sees it."""

    name: str
    label: str
    lang: str
    paper_metric: str
    roles: str  # "seen" or "unseen"


@dataclass(frozen=True)
class Column:
    """One leaderboard column."""

    key: str
    display_name: str
    format: str
    higher_is_better: bool | None
    description: str
    kind: str
    group: str = ""
    task: str | None = None
    metric: str | None = None
    of: tuple[str, ...] = ()
    paper: str | None = None  # "<table>.<field>" in paper.yaml
    pairs: tuple[tuple[str, str], ...] = ()
    judge: str | None = None

    def render(self, value: float | int | None) -> str:
        """The value as shown in tables; a dash when missing."""
        if value is None:
            return "–"
        return format(value, self.format)


@dataclass(frozen=True)
class Schema:
    """The tasks and the static columns, plus the templates of the judge columns."""

    tasks: dict[str, TaskInfo]
    columns: tuple[Column, ...]
    judge_templates: dict[str, dict] = field(default_factory=dict)

    def column(self, key: str) -> Column:
        """The static column called ``key``."""
        for col in self.columns:
            if col.key == key:
                return col
        raise KeyError(key)


def _column(entry: dict, path: Path, index: int) -> Column:
    where = f"{path}: columns[{index}]"
    if not isinstance(entry, dict):
        raise SchemaError(f"{where}: expected a mapping")
    missing = [k for k in _REQUIRED if k not in entry]
    if missing:
        raise SchemaError(f"{where} ({entry.get('key', '?')}): missing field(s) {', '.join(missing)}")
    if entry["kind"] not in KINDS:
        raise SchemaError(f"{where} ({entry['key']}): field 'kind' is {entry['kind']!r}; expected one of {KINDS}")
    unknown = set(entry) - {f.name for f in Column.__dataclass_fields__.values()}
    if unknown:
        raise SchemaError(f"{where} ({entry['key']}): unknown field(s) {', '.join(sorted(unknown))}")
    values = dict(entry)
    values["of"] = tuple(values.get("of", ()))
    values["pairs"] = tuple(tuple(p) for p in values.get("pairs", ()))
    return Column(**values)


def load_schema(path: str | Path | None = None) -> Schema:
    """Read and check a schema YAML (the packaged ``schema.yaml`` by default)."""
    path = Path(path) if path is not None else SCHEMA_PATH
    with path.open(encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    tasks = {name: TaskInfo(name=name, label=t.label, lang=t.lang, paper_metric=t.metric, roles=t.split.roles)
             for name, t in catalogue_tasks().items()}
    columns = tuple(_column(entry, path, i) for i, entry in enumerate(raw["columns"]))
    keys = [c.key for c in columns]
    if len(set(keys)) != len(keys):
        raise SchemaError(f"{path}: duplicate column keys")
    for col in columns:
        for task in [col.task, *(t for pair in col.pairs for t in pair)]:
            if task is not None and task not in tasks:
                raise SchemaError(f"{path}: column {col.key}: field 'task' names unknown task {task!r}")
        for other in col.of:
            if other not in keys:
                raise SchemaError(f"{path}: column {col.key}: field 'of' names unknown column {other!r}")
    return Schema(tasks=tasks, columns=columns, judge_templates=raw.get("judge_columns", {}))


def judge_columns(schema: Schema, task: str, judge: str, summary: dict) -> tuple[Column, Column]:
    """The win-rate and parse-failure columns of one (task, judge) pair."""
    label = schema.tasks[task].label if task in schema.tasks else task
    fill = {"task": task, "task_label": label, "judge": judge, "protocol": summary.get("protocol"),
            "judge_model": summary.get("judge_model"), "baseline": summary.get("baseline")}
    made = []
    for kind, name in (("judge_win_rate", "win_rate"), ("judge_failures", "parse_failures")):
        tpl = schema.judge_templates[name]
        made.append(Column(
            key=f"judge:{name}:{task}:{judge}",
            display_name=tpl["display_name"].format(**fill),
            format=tpl["format"],
            higher_is_better=tpl["higher_is_better"],
            description=" ".join(tpl["description"].split()).format(**fill),
            kind=kind,
            group="Judges",
            task=task,
            judge=judge,
        ))
    return made[0], made[1]
