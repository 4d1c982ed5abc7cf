"""Multi-turn role continuity and identity probes: does a model still play its role d turns in?

Every document is one role's conversation: d-1 earlier turns (other test items of the same
role: their question as the user turn, their first reference as the assistant turn), then
the scored question. The same scored items appear at every depth, so depth 1 is the
single-turn task on those items, prompt for prompt. Choices are made by a seeded sha256
hash, never by Python's ``hash`` or a random generator, so every machine builds the same
documents:

- the scored items of a role: the ``items_per_role`` items that hash lowest;
- their history: the other items of the role that hash lowest *for that scored item*, the
  lowest one right before the question; a deeper conversation adds older turns in front,
  so the turns next to the question are the same at every depth.

Settings come from ``--metadata`` (``depths``, ``items_per_role``, ``history_seed``) and are
recorded in the results. Per-item metrics are named ``<metric>_d<depth>``.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from rolebench_eval.breaks import breaks_character, patterns_version
from rolebench_eval.catalogue import depth_metric
from rolebench_eval.data import NO_ROLEGPT_ANSWER, is_degenerate, item_id  # noqa: F401  (item_id: re-exported)
from rolebench_eval.errors import InputError
from rolebench_eval.fileio import load_yaml

from .conversation import ConversationTask, Turn
from .reasoning import METRIC as UNFINISHED
from .reasoning import is_unfinished
from .task import process_results

log = logging.getLogger(__name__)
DEFAULTS = {"depths": (1, 4, 8), "items_per_role": 20, "history_seed": 0}
METADATA_KEYS = tuple(DEFAULTS)  # the --metadata keys these tasks read
PROBES_FILE = Path(__file__).with_name("probes.yaml")


def _rank(seed: int, *parts: str) -> str:
    return hashlib.sha256(":".join([str(seed), *parts]).encode("utf-8")).hexdigest()


# ------------------------------------------------------------------ settings


@dataclass(frozen=True)
class Settings:
    depths: tuple[int, ...]
    items_per_role: int
    history_seed: int

    def as_metadata(self) -> dict:
        return {"depths": list(self.depths), "items_per_role": self.items_per_role, "history_seed": self.history_seed}


def _int(value, field: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().lstrip("-").isdigit():
        raise InputError("--metadata", None, field, f"expected an integer, got {value!r}")
    if int(value) < minimum:
        raise InputError("--metadata", None, field, f"must be at least {minimum}, got {value!r}")
    return int(value)


def settings_from(meta: dict | None) -> Settings:
    """The continuity settings of a run: ``--metadata`` values over :data:`DEFAULTS`.

    ``depths`` may be a list (``[1, 2, 16]``), one number or a comma-separated string.
    """
    meta = meta or {}
    depths = meta.get("depths", DEFAULTS["depths"])
    if isinstance(depths, str):
        depths = [d for d in depths.replace(" ", ",").split(",") if d]
    elif not isinstance(depths, (list, tuple)):
        depths = [depths]
    parsed = sorted({_int(d, "depths", 1) for d in depths})
    if not parsed:
        raise InputError("--metadata", None, "depths", "expected at least one depth")
    return Settings(tuple(parsed), _int(meta.get("items_per_role", DEFAULTS["items_per_role"]), "items_per_role", 1),
                    _int(meta.get("history_seed", DEFAULTS["history_seed"]), "history_seed", 0))


def per_depth_metrics(metric_list: list[dict], depths: tuple[int, ...]) -> list[dict]:
    """The YAML's metrics, one entry per depth: ``spe`` becomes ``spe_d1``, ``spe_d4``, ..."""
    return [{**m, "metric": depth_metric(m["metric"], d)} for d in depths for m in metric_list]


# ------------------------------------------------------------------ documents


def _usable_history(doc: dict) -> bool:
    return bool(doc["references"]) and not is_degenerate(doc["references"][0])


def history(scored: dict, candidates: list[dict], turns: int, seed: int) -> list[Turn] | None:
    """The ``turns`` earlier turns of ``scored``, oldest first; None when the role has too few items."""
    asked = scored["question"].strip()
    pool = [c for c in candidates if c["item_id"] != scored["item_id"] and c["question"].strip() != asked]
    if len(pool) < turns:
        return None
    pool.sort(key=lambda c: _rank(seed, scored["item_id"], c["item_id"]))
    return [{"question": c["question"], "answer": c["references"][0]} for c in reversed(pool[:turns])]


def _by_role(docs: list[dict]) -> dict[str, list[dict]]:
    roles: dict[str, list[dict]] = {}
    for doc in docs:
        roles.setdefault(doc["role"], []).append(dict(doc, item_id=item_id(doc["role"], doc["question"])))
    return roles


def _expand(scored: dict, full: list[Turn], depths: tuple[int, ...]) -> list[dict]:
    """``scored`` once per depth, each with the ``depth - 1`` turns nearest the question."""
    return [dict(scored, depth=d, history=full[len(full) - (d - 1):]) for d in depths]


def continuity_docs(docs: list[dict], settings: Settings) -> tuple[list[dict], dict]:
    """Multi-turn documents from single-turn ones, item by item (all depths of an item together)."""
    turns, seed = max(settings.depths) - 1, settings.history_seed
    out, short = [], 0
    for role, role_docs in _by_role(docs).items():
        pool = [d for d in role_docs if _usable_history(d)]
        unique = {d["item_id"]: d for d in role_docs}.values()  # a repeated (role, question) is one item
        chosen = 0
        for doc in sorted(unique, key=lambda d: _rank(seed, d["item_id"])):
            if chosen == settings.items_per_role:
                break
            full = history(doc, pool, turns, seed)
            if full is None:
                short += 1
                continue
            out.extend(_expand(doc, full, settings.depths))
            chosen += 1
    return out, {"scored_items": len(out) // len(settings.depths), "items_without_enough_history": short}


@lru_cache(maxsize=1)
def probes() -> tuple[dict, ...]:
    """The identity probes (``probes.yaml``): dicts with ``id``, ``en`` and ``zh``."""
    return tuple(load_yaml(PROBES_FILE.read_text(encoding="utf-8"))["probes"])


def probe_docs(docs: list[dict], settings: Settings) -> tuple[list[dict], dict]:
    """One document per (role, probe, depth): the role's history, then an identity question."""
    turns, seed = max(settings.depths) - 1, settings.history_seed
    out, short = [], 0
    for role, role_docs in _by_role(docs).items():
        pool = [d for d in role_docs if _usable_history(d)]
        first = role_docs[0]
        for probe in probes():
            question = probe[first["lang"]]
            scored = dict(first, question=question, references=[], type=["probe"], rolegpt=None,
                          item_id=item_id(role, question))
            full = history(scored, pool, turns, seed)
            if full is None:
                short += 1
                continue
            out.extend(_expand(scored, full, settings.depths))
    return out, {"scored_items": len(out) // len(settings.depths), "items_without_enough_history": short}


# ------------------------------------------------------------------ scores


def process_results_mt(doc: dict, results: list[str]) -> dict[str, float]:
    """The single-turn scores plus ``break``, each named for the document's depth (``spe_d4``)."""
    scores = process_results(doc, results)
    if not scores:  # the rolegpt replay has no answer for this item
        return {}
    scores["break"] = float(breaks_character(results[0], doc["lang"]))
    return {depth_metric(name, doc["depth"]): value for name, value in scores.items()}


def process_results_probe(doc: dict, results: list[str]) -> dict[str, float]:
    """``break_d<depth>``: 1.0 when the answer to the identity question breaks character (and
    ``unfinished_reasoning_d<depth>``)."""
    if results[0] == NO_ROLEGPT_ANSWER:
        return {}
    return {depth_metric("break", doc["depth"]): float(breaks_character(results[0], doc["lang"])),
            depth_metric(UNFINISHED, doc["depth"]): float(is_unfinished(results[0]))}


# ------------------------------------------------------------------ tasks


class MultiTurnTask(ConversationTask):
    """``rolebench_mt_*``: the single-turn split as conversations of each configured depth."""

    build = staticmethod(continuity_docs)

    def __init__(self, config: dict | None = None):
        config = dict(config or {})
        self.settings = settings_from(config.get("metadata"))
        config["metric_list"] = per_depth_metrics(config.get("metric_list") or [], self.settings.depths)
        super().__init__(config=config)

    def download(self, dataset_kwargs: dict | None = None, **kwargs) -> None:
        import datasets

        super().download(dataset_kwargs, **kwargs)  # the single-turn documents, provenance in metadata
        docs, counts = self.build(self.dataset["test"].to_list(), self.settings)
        if not docs:
            raise InputError(self.config.metadata["data"].get("file"), None, None,
                             f"{self.config.task}: no role has the {max(self.settings.depths)} items that depth "
                             f"{max(self.settings.depths)} needs; choose smaller depths (--metadata depths)")
        if counts["items_without_enough_history"]:
            log.warning("%s: %d items skipped, their role has too few other items for depth %d",
                        self.config.task, counts["items_without_enough_history"], max(self.settings.depths))
        self.dataset = datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})
        scored = [d for d in docs if d["depth"] == self.settings.depths[0]]
        covered = sum(d["rolegpt"] is not None for d in scored)
        self.config.metadata = self.config.metadata | self.settings.as_metadata() | counts | {
            "rolegpt_answers": f"{covered} of {len(scored)} scored items",
            "break_patterns_version": patterns_version(),
        }

    def turns(self, doc: dict) -> list[Turn]:
        return doc["history"]


class ProbeTask(MultiTurnTask):
    """``rolebench_mt_probe_*``: identity questions after each configured depth of history."""

    build = staticmethod(probe_docs)
