"""Per-item annotations and the per-(model, task, judge) summary, written atomically.

Files: ``<out>/<sanitised model>/<task>/<judge>/annotations.jsonl`` and ``summary.json``
(schema below; the leaderboard reads it). Both are written to a temporary file in the
same folder and moved into place with ``os.replace``, so a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any, Iterable

from rolebench_eval.fileio import write_json_atomic, write_jsonl
from rolebench_eval import __version__
from rolebench_eval.llm.cache import canonical_json
from rolebench_eval.outputs import JUDGE_SUMMARY_KIND, JUDGE_SUMMARY_SCHEMA_VERSION, sanitize_model_name

from . import stats
from .protocols import Item, Judgment

SUMMARY_KIND, SCHEMA_VERSION = JUDGE_SUMMARY_KIND, JUDGE_SUMMARY_SCHEMA_VERSION
ROUGE_AGREEMENT = ("kendall_tau_b(judge item score, ROUGE-L recall of the candidate minus that of the baseline)",
                   "kendall_tau_b(rubric mean score, ROUGE-L recall of the candidate)")


def output_dir(out: str | os.PathLike, model: str, task: str, judge: str) -> Path:
    """``<out>/<sanitised model>/<task>/<judge>``."""
    return Path(out) / sanitize_model_name(model) / task / judge


def prompt_hash(requests: list[list[dict]]) -> str:
    """A short hash of the rendered judge prompt(s) of one item."""
    return hashlib.sha256(canonical_json(requests).encode("utf-8")).hexdigest()[:16]


def annotation(item: Item, status: str, judge_model: str, **fields: Any) -> dict:
    """One annotations line.

    ``status`` is judged, parse_error, skipped_no_baseline, skipped_no_answer (the candidate
    logged no answer) or pending (not judged yet: budget reached or request failed).
    """
    record = {"doc_id": item.doc_id, "role": item.role, "question": item.question, "lang": item.lang,
              "kind": item.kind, "status": status, "candidate": item.candidate, "baseline": item.baseline,
              "judge_texts": None, "value": None, "score": None, "parse_error": None,
              "judge_model": judge_model, "prompt_hash": None, "timestamp": None,
              "package_version": __version__}
    record.update(fields)
    return record


def judged_annotation(item: Item, judgment: Judgment, responses: list[dict], requests: list[list[dict]],
                      judge_model: str, rouge: tuple[float, float | None] | None) -> dict:
    """The annotations line of an item whose judge answers all arrived."""
    extra = {k: getattr(judgment, k) for k in ("flip", "rank", "character_break") if getattr(judgment, k) is not None}
    return annotation(
        item, "judged" if judgment.value is not None else "parse_error", judge_model,
        judge_texts=[r["text"] for r in responses], value=judgment.value, score=judgment.score,
        parse_error=judgment.error, prompt_hash=prompt_hash(requests),
        timestamp=max(r.get("created_at") or "" for r in responses) or None,
        rouge_candidate=rouge[0] if rouge else None, rouge_baseline=rouge[1] if rouge else None, **extra)


def _protocol_stats(protocol: str, parsed: list[dict], rubric: dict | None) -> dict:
    scores = [r["score"] for r in parsed]
    if protocol == "rubric":
        means = {c: stats.mean([r["value"][c] for r in parsed]) for c in rubric["criteria"]}
        means["overall"] = stats.mean(scores)
        return {"win_rate": None, "ci95": None, "rubric_means": means if parsed else None,
                "rubric_ci95": {"overall": stats.bootstrap_ci(scores)},
                "character_break_rate": stats.rate([r["character_break"] for r in parsed])}
    out = {"win_rate": stats.win_rate(scores), "ci95": stats.bootstrap_ci(scores)}
    if protocol == "pairwise":
        out["position_flip_rate"] = stats.rate([r["flip"] for r in parsed])
    else:
        out["mean_rank"] = stats.mean([r["rank"] for r in parsed])
    return out


def _rouge_agreement(protocol: str, parsed: list[dict]) -> float | None:
    if protocol == "rubric":
        return stats.kendall_tau([r["score"] for r in parsed], [r["rouge_candidate"] for r in parsed])
    return stats.kendall_tau([r["score"] for r in parsed],
                             [r["rouge_candidate"] - r["rouge_baseline"] for r in parsed])


def summarize(records: list[dict], meta: dict, protocol: str, rubric: dict | None) -> dict:
    """The summary of one (model, task, judge) from its annotation lines.

    Args:
        records: annotation lines (all statuses).
        meta: model, task, judge, judge_model, baseline and provenance fields.
        protocol: "rank", "pairwise" or "rubric".
        rubric: the judge's rubric settings (rubric protocol only).
    """
    count = {s: sum(1 for r in records if r["status"] == s)
             for s in ("judged", "parse_error", "skipped_no_baseline", "skipped_no_answer", "pending")}
    parsed = [r for r in records if r["status"] == "judged"]
    summary = {
        "kind": SUMMARY_KIND, "schema_version": SCHEMA_VERSION, **meta, "protocol": protocol,
        "n_total": len(records), "n_judged": count["judged"] + count["parse_error"], "n_parsed": count["judged"],
        "n_parse_failures": count["parse_error"], "n_skipped_no_baseline": count["skipped_no_baseline"],
        "n_skipped_no_answer": count["skipped_no_answer"],
        "n_pending": count["pending"], "complete": count["pending"] == 0,
        "win_rate": None, "ci95": None, "mean_rank": None, "position_flip_rate": None,
        "character_break_rate": None, "rubric_means": None,
    }
    summary.update(_protocol_stats(protocol, parsed, rubric))
    summary["rouge_agreement"] = _rouge_agreement(protocol, parsed)
    summary["rouge_agreement_method"] = ROUGE_AGREEMENT[protocol == "rubric"]
    summary["package_version"] = __version__
    summary["created_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return summary


def write_outputs(folder: Path, records: Iterable[dict], summary: dict) -> None:
    """Write ``annotations.jsonl`` then ``summary.json`` into ``folder``, each atomically."""
    write_jsonl(folder / "annotations.jsonl", records)
    write_json_atomic(folder / "summary.json", summary)
