"""The leaderboard as data: the column schema (``schema.yaml``), cells, rows and the board.

Every other module of the leaderboard reads these types; this one imports none of them.
The tasks (label, language, paper metric, metrics, seen or unseen roles, family) come from the
package's catalogue (``rolebench_eval/splits.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rolebench_eval.catalogue import live_tasks
from rolebench_eval.catalogue import metrics as catalogue_metrics
from rolebench_eval.catalogue import tasks as catalogue_tasks
from rolebench_eval.errors import InputError
from rolebench_eval.fileio import load_yaml, replace_surrogates
from rolebench_eval.outputs.models import ModelInfo

SCHEMA_PATH = Path(__file__).with_name("schema.yaml")
MEASURED, REPORTED = "measured", "reported"
KINDS = ("score", "task_metric", "mean_of", "task_mean", "gap", "paper", "continuity", "judge")
#: Catalogue task families on the board: the paper's single-turn tasks, the multi-turn ones and
#: the probes (character breaks only, metric "break"). The prompting-study variants (fewshot,
#: dialogue) have no columns: a run's results for them are named as left out (``inputs.read_run``).
BOARD_FAMILIES = {"single": False, "multiturn": True, "probe": True}
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
    multi_turn: bool = False
    metrics: tuple[str, ...] = ()  # its per-item metrics (the catalogue's), per depth when multi-turn
    live: bool = False  # conversations of `converse` (the catalogue's live_tasks): one item per conversation


@dataclass(frozen=True)
class Column:
    """One leaderboard column; ``main`` columns stay visible when the per-split ones are folded."""

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
    paper: str | None = None  # "<table>.<field>" in rolebench_eval/paper.yaml
    pairs: tuple[tuple[str, str], ...] = ()
    judge: str | None = None
    main: bool = False
    interval: bool = True  # False: a descriptive column, shown without a bootstrap interval

    def render(self, value: float | int | None) -> str:
        """The value as shown in tables; a dash when missing."""
        if value is None:
            return "–"
        return format(value, self.format)


@dataclass(frozen=True)
class Schema:
    """The tasks, the static columns and the templates of the judge columns."""

    tasks: dict[str, TaskInfo]
    columns: tuple[Column, ...]
    judge_templates: dict[str, dict] = field(default_factory=dict)

    def column(self, key: str) -> Column:
        """The static column called ``key``."""
        for col in self.columns:
            if col.key == key:
                return col
        raise KeyError(key)

    def interval_metrics(self, task: str) -> set[str]:
        """The metrics of ``task`` that get bootstrap intervals: its main and paper metrics (the catalogue's:
        CUS or SPE, RAW; breaks), and those of columns not marked ``interval: false``."""
        out = {m for m in self.tasks[task].metrics if catalogue_metrics()[m].main or catalogue_metrics()[m].paper}
        return out | {c.metric for c in self.columns if c.kind == "task_mean" and c.interval and c.metric}

    @property
    def single_turn(self) -> list[str]:
        return [t for t, info in self.tasks.items() if not info.multi_turn and not info.live]

    @property
    def live(self) -> list[str]:
        return [t for t, info in self.tasks.items() if info.live]

    @property
    def multi_turn(self) -> list[str]:
        return [t for t, info in self.tasks.items() if info.multi_turn]


def _column(entry: dict, path: Path, index: int) -> Column:
    where = f"columns[{index}]"
    if not isinstance(entry, dict):
        raise SchemaError(path, None, where, "expected a mapping")
    missing = [k for k in _REQUIRED if k not in entry]
    if missing:
        raise SchemaError(path, None, where, f"({entry.get('key', '?')}) missing field(s) {', '.join(missing)}")
    if entry["kind"] not in KINDS:
        raise SchemaError(path, None, f"{where}.kind",
                          f"({entry['key']}) is {entry['kind']!r}; expected one of {KINDS}")
    unknown = set(entry) - set(Column.__dataclass_fields__)
    if unknown:
        raise SchemaError(path, None, where, f"({entry['key']}) unknown field(s) {', '.join(sorted(unknown))}")
    values = dict(entry)
    values["of"] = tuple(values.get("of", ()))
    values["pairs"] = tuple(tuple(p) for p in values.get("pairs", ()))
    return Column(**values)


def _tasks() -> dict[str, TaskInfo]:
    """The board's tasks, from the catalogue: single-turn ones in its order, then multi-turn specific,
    general and probe tasks, English first (the order the averaging columns add them up in), then the
    conversations' tasks (never in a Score: they have columns and drift curves of their own)."""
    known = catalogue_tasks(family=None)

    def order(name: str) -> tuple:
        t = known[name]
        return (0,) if t.family == "single" else (1, t.family == "probe", t.split.kind != "specific", t.lang)

    return {name: TaskInfo(name, known[name].label, known[name].lang, known[name].metric, known[name].split.roles,
                           multi_turn=BOARD_FAMILIES[known[name].family], metrics=known[name].metrics)
            for name in sorted((n for n, t in known.items() if t.family in BOARD_FAMILIES), key=order)} | {
        name: TaskInfo(name, t.label, t.lang, t.metric, "seen", metrics=t.metrics, live=True)
        for name, t in live_tasks().items()}


def load_schema(path: str | Path | None = None) -> Schema:
    """Read and check a schema YAML (the packaged ``schema.yaml`` by default)."""
    path = Path(path) if path is not None else SCHEMA_PATH
    with path.open(encoding="utf-8") as handle:
        raw = load_yaml(handle)
    tasks = _tasks()
    columns = tuple(_column(entry, path, i) for i, entry in enumerate(raw["columns"]))
    keys = [c.key for c in columns]
    if len(set(keys)) != len(keys):
        raise SchemaError(path, None, "columns", "duplicate column keys")
    for i, col in enumerate(columns):
        for task in [col.task, *(t for pair in col.pairs for t in pair)]:
            if task is not None and task not in tasks:
                raise SchemaError(path, None, f"columns[{i}].task", f"({col.key}) names unknown task {task!r}")
        for other in col.of:
            if other not in keys:
                raise SchemaError(path, None, f"columns[{i}].of", f"({col.key}) names unknown column {other!r}")
    return Schema(tasks=tasks, columns=columns, judge_templates=raw.get("judge_columns", {}))


def judge_columns(schema: Schema, task: str, judge: str, summary) -> list[Column]:
    """The columns of one (task, judge): those of its protocol (see ``judge_columns`` in the schema).

    A protocol added to the judges later, and not named in the schema, gets every column
    whose statistic its summary fills: no edit here is needed to show it.
    """
    label = schema.tasks[task].label if task in schema.tasks else task
    k, protocol = summary.n_systems, summary.protocol  # a rolebench_eval.outputs.judge.JudgeSummary
    fill = {"task": task, "task_label": label, "judge": judge, "protocol": protocol,
            "judge_model": summary.judge_model, "baseline": summary.baseline, "k": k}
    made = []
    known = any(protocol in tpl["protocols"] for tpl in schema.judge_templates.values())
    for metric, tpl in schema.judge_templates.items():
        if known:
            applies = protocol in tpl["protocols"]
        else:  # a protocol the schema does not list gets the columns its summary fills
            applies = getattr(summary, tpl.get("statistic", metric), None) is not None
        if not applies:
            continue
        made.append(Column(
            key=f"judge:{metric}:{task}:{judge}",
            display_name=(tpl["display_name"] if k is not None else tpl.get("display_name_no_k", tpl["display_name"]))
            .format(**fill),
            format=tpl["format"], higher_is_better=tpl["higher_is_better"],
            description=" ".join(tpl["description"].split()).format(**{**fill, "k": k if k is not None else "k"}), kind="judge",
            group=f"{judge} · {label}", task=task, metric=metric, judge=judge, main=True))
    return made


# --------------------------------------------------------------------------- the board


@dataclass
class Cell:
    """One value with its 95% bootstrap interval (None for reported values and plain aggregates)."""

    value: float | None
    lo: float | None = None
    hi: float | None = None
    n: int | None = None
    note: str | None = None


@dataclass(frozen=True)
class PairedTest:
    """A paired bootstrap test of a row minus ``other`` on the items both scored.

    Attributes:
        other: The row compared against.
        diff: Observed difference of the Scores on the paired items.
        lo: Lower end of the 95% bootstrap interval of the difference.
        hi: Upper end.
        p: Two-sided bootstrap p-value, ``2 * min(P(d* <= 0), P(d* >= 0))``, capped at 1.
        n_items: Paired items, over all tasks.
        tie: True when the interval contains 0: the two rows are not told apart.
    """

    other: str
    diff: float
    lo: float
    hi: float
    p: float
    n_items: int
    tie: bool


@dataclass(eq=False)
class Row:
    """One model: ``measured`` (from lm-eval runs) or ``reported`` (from the paper).

    ``name`` is the short label shown on the page (unique on the board); ``full_name`` the run
    name(s) behind it (``outputs.run_name``), shown on hover. ``twin`` is the other row of the same
    system when it is on the board both ways (measured and reported), ``twin_note`` why they differ.
    """

    name: str
    source: str
    cells: dict[str, Cell] = field(default_factory=dict)
    comparable: bool = True
    reasons: list[str] = field(default_factory=list)
    rank: int | None = None
    vs_above: PairedTest | None = None
    vs_baseline: PairedTest | None = None
    files: list[str] = field(default_factory=list)
    run_names: set[str] = field(default_factory=set)
    citation: str | None = None
    full_name: str = ""
    twin: str | None = None
    twin_note: str | None = None
    about: ModelInfo | None = None  # display data (board spec or --models); the row's name stays ``name``
    date: str | None = None  # of the newest run behind a measured row (YYYY-MM-DD)

    def value(self, key: str) -> float | None:
        """The value of column ``key`` (None when the row has none)."""
        cell = self.cells.get(key)
        return None if cell is None else cell.value


@dataclass
class Leaderboard:
    """Everything the writers need; built by :func:`rolebench_eval.leaderboard.build_leaderboard`.

    Attributes:
        columns: Static schema columns followed by the judge columns of each (task, judge).
        rows: Every row with a Score, measured or reported, in one ranking (``order.one_order``);
            then the unranked measured rows, then the reported rows without a Score.
        excluded: Measured rows left out as not comparable (shown with ``include_incomparable``).
        errors: Inputs that could not be read; their rows are missing.
        notes: Other things a reader should know (duplicates, superseded judge summaries).
        unmatched_judges: Judge summaries that matched no row, with why.
        score_tasks: The tasks the Score averages over.
        column_tasks: For columns averaged over tasks: the tasks they average over.
        breakdowns: kind ("language", "type", "role") -> row name -> group -> Cell.
        roles_by_task: For the heatmap: role -> tasks it was scored on.
        depth_curves: Multi-turn tasks: row name -> task -> [(depth, Cell)].
        drift_curves: Conversations (``live_tasks``): row name -> task -> metric -> [(turn, Cell)].
        baseline: The row every measured row is tested against, when chosen.
        settings: Seed, number of resamples, test used, package version, time.
        citation: The paper, for the reported rows.
        items: The item browser's data (see ``html.items_data``), or None when not built.
        outputs: What was written, by kind.
        judge_summaries: ``(row name, task, judge) -> summary file`` of every judge summary used.
    """

    columns: list[Column]
    rows: list[Row]
    excluded: list[Row] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unmatched_judges: list[str] = field(default_factory=list)
    score_tasks: list[str] = field(default_factory=list)
    column_tasks: dict[str, list[str]] = field(default_factory=dict)
    breakdowns: dict[str, dict[str, dict[str, Cell]]] = field(default_factory=dict)
    roles_by_task: dict[str, list[str]] = field(default_factory=dict)
    depth_curves: dict[str, dict[str, list[tuple[int, Cell]]]] = field(default_factory=dict)
    drift_curves: dict[str, dict[str, dict[str, list[tuple[int, Cell]]]]] = field(default_factory=dict)
    baseline: str | None = None
    settings: dict = field(default_factory=dict)
    citation: str = ""
    items: dict | None = None
    outputs: dict[str, Path] = field(default_factory=dict)
    judge_summaries: dict[tuple[str, str, str], Path] = field(default_factory=dict)
    health: list[dict] = field(default_factory=list)  # judge-health panels (leaderboard/health.py)

    def row(self, name: str) -> Row:
        """The shown row called ``name``, or whose run is called ``name`` (measured first)."""
        for row in self.rows:
            if row.name == name:
                return row
        matches = [r for r in self.rows if name in r.run_names]
        if len(matches) == 1:
            return matches[0]
        raise KeyError(name)

    @property
    def measured(self) -> list[Row]:
        return [r for r in self.rows if r.source == MEASURED]


def clean(text: object) -> str:
    """Text from an input, writable everywhere: lone surrogates (legal in JSON, not in UTF-8) become U+FFFD."""
    return replace_surrogates(str(text))
