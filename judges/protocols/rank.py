"""``rank``: the paper's joint ranking (RoleLLM, PAPER.md section 4).

Every candidate run's answer to a (role, question) and the baseline's go into ONE prompt,
as the paper's list of ``{"model": "model_1", "answer": ...}``; the judge replies with a
list of ``{"model", "reason", "rank"}`` (a Python literal or JSON; ties allowed).

* **Order.** The answers are shown in an order permuted per item: systems sorted by
  sha256(order_seed, role, question, system), so the order is stable across reruns (the
  cache works), independent of the other systems shown, and about uniform over items.
  The labels model_1..model_k follow the presentation order, so they say nothing of
  which system is which.
* **Ranks** are normalised to competition ranks (1 + the number of systems ranked
  strictly above), whatever numbering the judge used for ties ([1, 1, 2] -> [1, 1, 3]).
* **Per candidate:** outcome against the baseline (ranked above = win 1, tie 0.5, below
  = loss 0), its rank among the k systems of the item; items a run lacks are ranked
  among the systems that have them. Items are matched on (role, question, occurrence),
  so each system is shown once per prompt even where a split repeats a question.

Settings (config section ``rank``): ``max_systems`` (default 5; more systems in one task
is an error) and ``order_seed``. With one input this is candidate vs baseline, k = 2.
When the runs cover different items, k varies across a run's prompts (a warning says so);
``common_items`` (``--common-items``) ranks only the items every run answered.

An ensemble's rank of a candidate is the mean of its members' ranks (and likewise the baseline's);
the candidate wins when its mean rank is the lower. Agreement is measured on the candidate's ranks.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from rolebench_eval.errors import InputError

from .. import stats
from ..errors import JudgeConfigError
from ..parsing import ParseError, parse_ranking
from .base import OUTCOME_SCORE, Item, Job, Judgment, Unit, VersusBaseline, check_keys, template_variables

BASELINE = "baseline"
log = logging.getLogger(__name__)


def shown_order(item: Item, systems: list[tuple[str, str]], seed: int) -> list[int]:
    """Indexes of ``systems`` ((kind, name) pairs) in presentation order for ``item``.

    Example:
        >>> item = Item(0, "Captain Brine", "qid-1", "en", "general", (), "", "", None)
        >>> shown_order(item, [("candidate", "a"), ("baseline", "rolegpt")], 0) in ([0, 1], [1, 0])
        True
    """
    def position(index: int) -> bytes:
        kind, name = systems[index]
        return hashlib.sha256("\x1f".join([str(seed), item.role, item.question, kind, name]).encode("utf-8")).digest()

    return sorted(range(len(systems)), key=position)


def competition_ranks(raw: dict[str, int]) -> dict[str, int]:
    """1 + the number of labels ranked strictly better, for each label.

    Example:
        >>> competition_ranks({"model_1": 1, "model_2": 1, "model_3": 2})
        {'model_1': 1, 'model_2': 1, 'model_3': 3}
    """
    return {label: 1 + sum(1 for other in raw.values() if other < rank) for label, rank in raw.items()}


class Rank(VersusBaseline):
    name = "rank"
    detail = "mean_rank"
    ensemble_rule = ("the mean of the members' ranks of the candidate, and of the baseline (members whose reply "
                     "parsed); the candidate wins when its mean rank is lower, ties when they are equal")
    agreement_level = "ordinal"

    def check_settings(self, where: Path, section: Any) -> dict:

        settings = check_keys(where, "rank", section, {"max_systems", "order_seed"})
        for key in ("max_systems", "order_seed"):
            value = settings.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < (2 if key == "max_systems" else 0):
                raise JudgeConfigError(where, None, f"rank.{key}", "expected an integer "
                                       f"{'of at least 2' if key == 'max_systems' else '>= 0'}, got {value!r}")
        return settings

    def jobs(self, units: list[Unit], judge, options: dict) -> list[Job]:
        """One job per (role, question, occurrence) of the task, with every candidate that has it.

        Each unit gives at most one member per key (a repeated question meets the same
        repeat of the other runs), so k never exceeds the systems counted against ``max_systems``.
        """
        limit = options.get("max_systems") or judge.settings["max_systems"]
        systems = [u.system for u in units] + [units[0].baseline_name]
        group = units[0].group or units[0].task
        if len(set(systems[:-1])) < len(units):
            raise InputError(f"task {group}", None, None, f"two inputs give the same system name "
                             f"({', '.join(systems[:-1])}); their answers could not be told apart")
        if len(systems) > limit:
            raise InputError(f"task {group}", None, None, f"{len(systems)} systems to rank in one prompt "
                             f"({', '.join(systems)}), more than max_systems={limit}; judge fewer runs at once, "
                             f"or raise --max-systems (long prompts with many answers judge worse)")
        if options.get("common_items"):
            keep_common(units)
        groups: dict[tuple[str, str, int], list[tuple[Unit, Item]]] = {}
        for unit in units:
            for item in unit.items:
                groups.setdefault(item.key, []).append((unit, item))
        jobs = [Job(members) for members in groups.values()]
        _record_systems(units, jobs, systems)
        _warn_uneven(units, jobs, group)
        return jobs

    def _shown(self, judge, job: Job) -> list[tuple[str, str, str]]:
        """(kind, system name, answer) in presentation order; kind is "candidate" or "baseline"."""
        unit, item = job.members[0]
        entries = [("candidate", u.system, i.candidate) for u, i in job.members]
        entries.append((BASELINE, unit.baseline_name, item.baseline))
        if len({(kind, name) for kind, name, _ in entries}) < len(entries):
            raise ValueError(f"one system twice in the prompt of {item.key}: {[e[:2] for e in entries]}")
        order = shown_order(item, [(kind, name) for kind, name, _ in entries], judge.settings["order_seed"])
        return [entries[i] for i in order]

    def requests(self, judge, job: Job) -> list:
        shown = self._shown(judge, job)
        answers = [{"model": f"model_{n}", "answer": answer} for n, (_, _, answer) in enumerate(shown, 1)]
        return [judge.render(**template_variables(job.item), answers=answers)]

    def parse(self, judge, job: Job, texts: list[str]) -> list[Judgment]:
        shown = self._shown(judge, job)
        labels = [f"model_{n}" for n in range(1, len(shown) + 1)]
        try:
            ranks = competition_ranks(parse_ranking(texts[0], labels))
        except ParseError as err:
            return [Judgment(error=str(err)) for _ in job.members]
        listing = []
        for label, (kind, name, _) in zip(labels, shown):
            listing.append({"model": label, "system": name, "rank": ranks[label]})
            if kind == BASELINE:
                listing[-1]["baseline"] = True
        label_of = {(kind, name): label for label, (kind, name, _) in zip(labels, shown)}
        base_label = label_of[BASELINE, job.members[0][0].baseline_name]
        judgments = []
        for unit, _ in job.members:
            label = label_of["candidate", unit.system]
            cand, base = ranks[label], ranks[base_label]
            outcome = "win" if cand < base else "tie" if cand == base else "loss"
            value = {"outcome": outcome, "candidate": cand, "baseline": base, "candidate_label": label,
                     "baseline_label": base_label, "shown": listing}
            judgments.append(Judgment(value=value, score=OUTCOME_SCORE[outcome],
                                      extra={"rank": cand, "n_systems": len(shown)}))
        return judgments

    def combine(self, judge, judged: list[dict]) -> tuple[dict, bool]:
        cand, base = (stats.mean([r["value"][side] for r in judged]) for side in ("candidate", "baseline"))
        outcome = "win" if cand < base else "tie" if cand == base else "loss"
        return {"value": {"outcome": outcome, "candidate": cand, "baseline": base}, "score": OUTCOME_SCORE[outcome],
                "rank": cand, "n_systems": judged[0]["n_systems"]}, False

    def agreement_value(self, record: dict) -> float:
        return record["rank"]

    def statistics(self, parsed: list[dict], judge) -> dict:
        return {**super().statistics(parsed, judge), "mean_rank": stats.mean([r["rank"] for r in parsed])}


def keep_common(units: list[Unit]) -> None:
    """Rank only the items every unit answered: each unit's others move to its ``not_common``."""
    common = set.intersection(*({item.key for item in unit.items} for unit in units))
    for unit in units:
        unit.not_common = [item for item in unit.items if item.key not in common]
        unit.items = [item for item in unit.items if item.key in common]


def _warn_uneven(units: list[Unit], jobs: list[Job], group: str) -> None:
    """One warning when the runs cover different items: their prompts rank different numbers of
    systems, and a run's mean rank then mixes k (its summary says n_systems_min and _max)."""
    uneven = sum(1 for job in jobs if len(job.members) < len(units))
    if uneven:
        log.warning("%s: the runs cover different items (%s answered); %d of %d prompts rank fewer than all "
                    "%d systems, so the mean ranks mix k (see n_systems_min/_max); pass --common-items to rank "
                    "only the items every run answered", group,
                    ", ".join(f"{u.system}: {len(u.items)}" for u in units), uneven, len(jobs), len(units) + 1)


def _record_systems(units: list[Unit], jobs: list[Job], systems: list[str]) -> None:
    """Set each unit's ``systems`` (those shown with its items, in ``systems`` order) and ``k_range``."""
    shown: dict[int, set[str]] = {id(u): set() for u in units}
    ks: dict[int, list[int]] = {id(u): [] for u in units}
    for job in jobs:
        names = {u.system for u, _ in job.members} | {systems[-1]}
        for unit, _ in job.members:
            shown[id(unit)] |= names
            ks[id(unit)].append(len(names))
    for unit in units:
        unit.systems = [s for s in systems if s in shown[id(unit)]] or [unit.system, systems[-1]]
        unit.k_range = (min(ks[id(unit)]), max(ks[id(unit)])) if ks[id(unit)] else None


PROTOCOL = Rank()
