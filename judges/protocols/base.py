"""What every judging protocol shares: the items it is given and the object it implements.

A protocol is one object (a subclass of :class:`Protocol`, one module in this package,
named like the protocol) that says, for a judge folder whose ``config.yaml`` names it:

* which settings its own config section takes (:meth:`Protocol.check_settings`);
* which items are judged together (:meth:`Protocol.jobs`: one candidate per job, or every
  candidate of a task in one prompt for the joint ``rank``);
* the chat requests of a job (:meth:`Protocol.requests`) and what the answers mean
  (:meth:`Protocol.parse`, one :class:`Judgment` per candidate of the job);
* its summary statistics (:meth:`Protocol.statistics`) and its columns in the CLI table.

The judge sees the role name, the role's description and catchphrases (the doc's
``description``; the role name alone when the data has none, as in the paper), the
question and, for role-specific items only, the reference answer. Pure code, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rolebench_eval.prompts import render_question

from .. import stats
from ..errors import JudgeConfigError

Messages = list[dict[str, str]]
OUTCOME_SCORE = {"win": 1.0, "tie": 0.5, "loss": 0.0}


@dataclass(frozen=True)
class Item:
    """One (role, question) of one task, as the judge is told about it.

    ``description`` is the role's profile text (with its catchphrases) or None when the
    data has none; ``role_prompt`` is the system prompt the candidate was given.
    """

    doc_id: int
    role: str
    question: str
    lang: str
    kind: str
    references: tuple[str, ...]
    role_prompt: str
    candidate: str
    baseline: str | None
    description: str | None = None
    occurrence: int = 0  # how many earlier docs of its run have the same (role, question)
    unfinished_reasoning: bool = False  # the candidate never closed its reasoning: its answer is empty
    turns: tuple[tuple[str, str], ...] = ()  # a conversation's (user turn, reply) pairs (the conversation judge)

    @property
    def key(self) -> tuple[str, str, int]:
        """How runs are matched: the raw (role, question) and its occurrence, so a split that
        repeats a question gives each run one member per key (the n-th repeat meets the n-th)."""
        return self.role, self.question, self.occurrence


@dataclass
class Unit:
    """The items of one (candidate run, task) and what was left out before judging."""

    model: str  # the run's name (rolebench_eval.outputs.run_name)
    task: str
    path: Path  # its samples file
    baseline_name: str | None
    items: list[Item]
    skipped: list[Item]
    no_answer: list[Item]
    systems: list[str] | None = None  # rank: every system shown in a prompt with this unit's items
    k_range: tuple[int, int] | None = None  # rank: fewest and most systems in one of its prompts
    group: str | None = None  # the task whose items it is ranked with (itself unless across variants)
    variant: str | None = None  # across variants: "zero-shot", "fewshot" or "dialogue"
    not_common: list[Item] = field(default_factory=list)  # rank --common-items: items another run lacks

    @property
    def system(self) -> str:
        """Its name among the systems of a joint ranking: the run name, plus the variant if any."""
        return f"{self.model} [{self.variant}]" if self.variant else self.model


@dataclass
class Job:
    """What one group of requests judges: ``members`` are (unit, item) of each candidate shown."""

    members: list[tuple[Unit, Item]]

    @property
    def item(self) -> Item:
        return self.members[0][1]


@dataclass
class Judgment:
    """The meaning of the judge's answer(s) for one candidate; ``value`` is None on a failure.

    Attributes:
        value: the parsed label (verdicts, ranks or rubric scores), or None.
        score: the number statistics use (win 1 / tie 0.5 / loss 0; rubric mean), or None.
        error: why parsing failed, or None.
        extra: protocol fields copied into the annotation (``flip``, ``rank``, ...).
    """

    value: Any = None
    score: float | None = None
    error: str | None = None
    extra: dict = field(default_factory=dict)


def template_variables(item: Item) -> dict:
    """The variables every protocol's prompt templates get (judges/README.md lists them)."""
    reference = item.references[0] if item.kind == "specific" and item.references else None
    description = (item.description or "").strip() or item.role
    return {"role": item.role, "description": description, "role_prompt": item.role_prompt,
            "question": render_question(item.question), "reference": reference.strip() if reference else None,
            "lang": item.lang, "kind": item.kind}


def check_keys(where: Path, section: str, value: Any, allowed: set[str]) -> dict:
    """``value`` as a mapping with only ``allowed`` keys, else a :class:`JudgeConfigError`-style error."""

    if value is None:
        return {}
    if not isinstance(value, dict):
        raise JudgeConfigError(where, None, section, f"expected a mapping, got {type(value).__name__}")
    unknown = set(value) - allowed
    if unknown:
        raise JudgeConfigError(where, None, section, f"unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    return value


class Protocol:
    """The defaults of a protocol; subclasses override what differs.

    Class attributes:
        name: the value of ``protocol:`` in a judge config (and the module's name).
        needs_baseline: items without a baseline answer are skipped and counted.
        headline: the summary key the CLI table shows first.
        detail: the summary key of the table's protocol column.
        reads_conversations: it judges the conversations of ``rolebench-eval converse`` (the catalogue's
            live tasks, one item per conversation), and nothing else; the other protocols leave them out.
    """

    name = ""
    needs_baseline = True
    headline = "win_rate"
    detail: str | None = None
    reads_conversations = False
    #: An ensemble (several judge models): how the members' verdicts make its own (:meth:`combine`),
    #: and the level of measurement of the value their agreement is computed on (:meth:`agreement_value`).
    ensemble_rule = ""
    agreement_level = "interval"

    def check_settings(self, where: Path, section: Any) -> dict | None:
        """The validated settings of the config section named like the protocol (none by default)."""
        if section is not None:

            raise JudgeConfigError(where, None, self.name, f"the {self.name} protocol takes no settings")
        return None

    def jobs(self, units: list[Unit], judge, options: dict) -> list[Job]:
        """The judging jobs of one task's units: by default one per (candidate, item)."""
        return [Job([(unit, item)]) for unit in units for item in unit.items]

    def requests(self, judge, job: Job) -> list[Messages]:
        """The chat requests of ``job``."""
        raise NotImplementedError

    def parse(self, judge, job: Job, texts: list[str]) -> list[Judgment]:
        """One :class:`Judgment` per member of ``job`` from the answers to :meth:`requests`."""
        raise NotImplementedError

    def statistics(self, parsed: list[dict], judge) -> dict:
        """Summary fields from the parsed annotation lines (every key of the summary schema it fills)."""
        raise NotImplementedError

    def combine(self, judge, judged: list[dict]) -> tuple[dict, bool]:
        """An ensemble's verdict fields (``value``, ``score`` and the protocol's own) from the annotation
        lines of the members that judged the item (at least one), and whether the members split evenly
        (the tie rule of :attr:`ensemble_rule` decided)."""
        raise NotImplementedError

    def agreement_value(self, record: dict) -> float:
        """What the members' agreement is measured on for one judged item (Krippendorff's alpha)."""
        return record["score"]

    def rouge_agreement(self, parsed: list[dict]) -> tuple[float | None, str]:
        """Kendall's tau-b between the judge and ROUGE-L across items, and what was compared."""
        scores = [r["score"] for r in parsed]
        return (stats.kendall_tau(scores, [r["rouge_candidate"] - r["rouge_baseline"] for r in parsed]),
                "kendall_tau_b(judge item score, ROUGE-L recall of the candidate minus that of the baseline)")

    def table_cells(self, summary: dict) -> tuple:
        """(headline, its 95% CI, length-controlled value, the protocol column) for the CLI table."""
        return (summary.get(self.headline), summary.get("ci95"), summary.get("lc_win_rate"),
                summary.get(self.detail) if self.detail else None)


class VersusBaseline(Protocol):
    """Protocols that compare a candidate with a baseline: win rate, its CI, and its length control."""

    def statistics(self, parsed: list[dict], judge) -> dict:
        scores = [r["score"] for r in parsed]
        lc = stats.length_controlled_win_rate(
            [len(r["candidate"]) - len(r["baseline"]) for r in parsed], scores)
        return {"win_rate": stats.win_rate(scores), "ci95": stats.bootstrap_ci(scores),
                "lc_win_rate": lc.value, "lc_ci95": lc.ci95, "lc_method": stats.LC_METHOD, "lc_note": lc.note,
                "lc_coefficients": lc.coefficients}


def judge_job(judge, job: Job, responses: list[dict]) -> list[Judgment]:
    """What the answers to a job's requests mean, one :class:`Judgment` per member.

    A refusal (the response's ``refusal`` text, OpenAI's field for declined requests) is a
    failure with reason ``refusal``, never parsed as a verdict. A failure on an answer cut
    at the token limit says so.
    """
    refusals = [r.get("refusal") for r in responses if r.get("refusal")]
    if refusals:
        text = " ".join(str(refusals[0]).split())
        return [Judgment(error=f"refusal: {text[:300]}") for _ in job.members]
    judgments = judge.impl.parse(judge, job, [r.get("text") or "" for r in responses])
    if any(r.get("finish_reason") == "length" for r in responses):
        for judgment in judgments:
            if judgment.error:
                judgment.error += " (the judge's answer was cut at its token limit: raise max_tokens)"
    return judgments
