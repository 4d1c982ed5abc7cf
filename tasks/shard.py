"""Shards: a deterministic 1/N of a task's documents, chosen by item id, balanced across roles.

``rolebench-eval run ... --shard K/N`` (``--metadata '{"shard": "K/N"}'`` with plain lm-eval)
evaluates shard K of N, K counted from 0 as ranks are (torch and vLLM ranks, lm-eval's
``rank``, ``$SLURM_ARRAY_TASK_ID`` of ``--array=0-<N-1>``), so ``--shard $SLURM_ARRAY_TASK_ID/N``
needs no arithmetic. The rule:

- the unit is the item (:func:`rolebench_eval.data.item_id` of role and question): every
  document of an item lands in the same shard, so a repeated row, the depths of a multi-turn
  conversation and the depths of an identity probe stay together;
- roles in name order, each role's items in item-id order, are dealt round-robin over the
  shards with one counter that runs on from role to role: every shard gets its share of
  every role (within one item), and the shards' sizes differ by at most one item.

The choice depends on the documents only (not on file order, the machine or ``PYTHONHASHSEED``).
Documents keep the single run's ``doc_id``: the task iterates its whole document list and
skips the other shards' documents (:meth:`RoleBenchTask.doc_iterator`).
"""

from __future__ import annotations

import hashlib
from typing import TypedDict

from rolebench_eval.data import item_id
from rolebench_eval.errors import InputError

HELP = ("--shard K/N (rolebench-eval run only): evaluate shard K of N of every task, K from 0 to N-1 as ranks "
        "count (torch, vLLM, lm-eval, Slurm's --array=0-<N-1>: --shard $SLURM_ARRAY_TASK_ID/N); items are dealt "
        "by id, balanced across roles, whole conversations together; join the parts with rolebench-eval merge")
METADATA_KEY = "shard"  # where --shard arrives (task metadata) and where the shard record is written


class ShardRecord(TypedDict):
    """What a shard run records in ``configs.<task>.metadata.shard`` (read by ``rolebench-eval merge``)."""

    index: int  # K, from 0
    count: int  # N
    items: int  # items in this shard
    docs: int  # documents in this shard (an item has one per depth in the multi-turn tasks)
    item_ids_sha256: str  # sha256 of this shard's item ids, sorted, one per line
    data_sha256: str | None  # the test file the documents came from
    version: str | None  # the task's metadata.version


def parse_shard(value) -> tuple[int, int] | None:
    """``(K, N)`` from ``"K/N"`` (or a record already parsed); None when no shard is asked for."""
    if value is None or value == "":
        return None
    if isinstance(value, dict) and {"index", "count"} <= value.keys():
        value = f"{value['index']}/{value['count']}"
    text = str(value).strip()
    parts = text.split("/")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise InputError("--shard", None, None, f"expected K/N (shard K of N, K from 0), got {text!r}")
    k, n = int(parts[0]), int(parts[1])
    if n < 1 or k >= n:
        raise InputError("--shard", None, None, f"K must be 0 to N-1 for N >= 1 (K counts from 0), got {text!r}")
    return k, n


def doc_item(doc: dict) -> str:
    """The item a document belongs to (multi-turn documents carry it; single-turn ones get it computed)."""
    return doc.get("item_id") or item_id(doc["role"], doc["question"])


def assign_items(docs: list[dict], count: int) -> dict[str, int]:
    """item id -> shard, by the rule of the module docstring."""
    roles: dict[str, set[str]] = {}
    for doc in docs:
        roles.setdefault(doc["role"], set()).add(doc_item(doc))
    shard_of, counter = {}, 0
    for role in sorted(roles):
        for item in sorted(roles[role]):
            shard_of[item] = counter % count
            counter += 1
    return shard_of


def select(docs: list[dict], index: int, count: int, task: str = "the task") -> list[int]:
    """Positions (the single run's ``doc_id``) of the documents in shard ``index`` of ``count``."""
    shard_of = assign_items(docs, count)
    chosen = [i for i, doc in enumerate(docs) if shard_of[doc_item(doc)] == index]
    if not chosen:
        raise InputError("--shard", None, None, f"shard {index}/{count} of {task} holds no item: it has "
                                                f"{len(set(shard_of))} items, fewer than shards; choose a smaller N")
    return chosen


def shard_record(docs: list[dict], chosen: list[int], index: int, count: int, meta: dict) -> ShardRecord:
    """The record a shard run leaves in its results: which part of which data and task version it is."""
    items = sorted({doc_item(docs[i]) for i in chosen})
    data = meta.get("data") if isinstance(meta.get("data"), dict) else {}
    version = meta.get("version")
    return ShardRecord(index=index, count=count, items=len(items), docs=len(chosen),
                       item_ids_sha256=hashlib.sha256("\n".join(items).encode("utf-8")).hexdigest(),
                       data_sha256=data.get("sha256"), version=None if version is None else str(version))
