"""Per-item annotations and the per-(model, task, judge) summary, written atomically.

Files: ``<out>/<sanitised model>/<task>/<judge>/annotations.jsonl`` and ``summary.json``
(their schemas: :mod:`rolebench_eval.outputs.judge`; the leaderboard reads them). Both are
written to a temporary file in the same folder and moved into place with ``os.replace``, so a
reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from rolebench_eval import __version__
from rolebench_eval.llm.cache import canonical_json
from rolebench_eval.outputs import sanitize_model_name
from rolebench_eval.outputs import judge as schema

from .protocols import Item, Judgment


def output_dir(out: str | os.PathLike, model: str, task: str, judge: str) -> Path:
    """``<out>/<sanitised model>/<task>/<judge>``."""
    return Path(out) / sanitize_model_name(model) / task / judge


def prompt_hash(requests: list[list[dict]]) -> str:
    """A short hash of the rendered judge prompt(s) of one item."""
    return hashlib.sha256(canonical_json(requests).encode("utf-8")).hexdigest()[:16]


def annotation(item: Item, status: str, judge_model: str, **fields: Any) -> dict:
    """One annotations line.

    ``status`` is judged, parse_error (also a refusal: ``refused`` is true),
    skipped_no_baseline, skipped_no_answer (the candidate logged no answer),
    skipped_not_common (rank --common-items: another run lacks the item) or pending
    (not judged yet: budget reached or request failed). The fields not given here take their
    defaults (null, ``refused`` false) from the schema when written.
    """
    return {"doc_id": item.doc_id, "role": item.role, "question": item.question, "lang": item.lang,
            "kind": item.kind, "status": status, "candidate": item.candidate, "baseline": item.baseline,
            "unfinished_reasoning": item.unfinished_reasoning, "judge_model": judge_model,
            "package_version": __version__, **fields}


def judged_annotation(item: Item, judgment: Judgment, responses: list[dict], requests: list[list[dict]],
                      judge_model: str, decoding: dict, rouge: tuple[float, float | None] | None) -> dict:
    """The annotations line of an item whose judge answers all arrived.

    ``decoding`` is what was sent: the first response's own ``decoding`` when the client
    records it, else the configured settings.
    """
    refusals = [r.get("refusal") or None for r in responses]
    return annotation(
        item, "judged" if judgment.value is not None else "parse_error", judge_model,
        judge_texts=[r.get("text") or "" for r in responses], judge_refusals=refusals,
        refused=any(refusals), value=judgment.value, score=judgment.score, parse_error=judgment.error,
        decoding=next((r["decoding"] for r in responses if r.get("decoding")), decoding),
        finish_reasons=[r.get("finish_reason") for r in responses], prompt_hash=prompt_hash(requests),
        timestamp=max(r.get("created_at") or "" for r in responses) or None,
        rouge_candidate=rouge[0] if rouge else None, rouge_baseline=rouge[1] if rouge else None, **judgment.extra)


def _decoding(records: list[dict], configured: dict) -> tuple[dict, list[dict] | None]:
    """The decoding most judged items were sent with (else the configured one), and all if several."""
    seen = Counter(canonical_json(r["decoding"]) for r in records if r.get("decoding") is not None)
    if not seen:
        return configured, None
    distinct = [r["decoding"] for r in {canonical_json(r["decoding"]): r for r in records
                                        if r.get("decoding") is not None}.values()]
    common = seen.most_common(1)[0][0]
    return next(d for d in distinct if canonical_json(d) == common), distinct if len(distinct) > 1 else None


def summarize(records: list[dict], meta: dict, judge, systems: list[str] | None, configured: dict | None,
              k_range: tuple[int, int] | None = None, ensemble: dict | None = None) -> schema.JudgeSummary:
    """The summary of one (model, task, judge) from its annotation lines.

    Args:
        records: annotation lines (all statuses).
        meta: model, task, judge, judge_model, baseline and provenance fields.
        judge: the :class:`~.config.Judge`; its protocol object computes the statistics.
        systems: every system shown in a prompt with these items (rank), else None.
        configured: the decoding settings of the client config (used when answers carry none).
        k_range: (fewest, most) systems in one prompt (rank): ``n_systems`` is the most, and
            ``n_systems_min`` / ``n_systems_max`` say whether it varied (items some runs lack).
        ensemble: an ensemble's own fields (:func:`.ensemble.summary_fields`), None for one judge model.
    """
    count = Counter(r["status"] for r in records)
    parsed = [r for r in records if r["status"] == "judged"]
    protocol = judge.impl
    decoding, decodings = _decoding([r for r in records if r["status"] in ("judged", "parse_error")], configured)
    summary = {
        **meta, "protocol": judge.protocol, "systems": systems,
        "n_total": len(records), "n_judged": count["judged"] + count["parse_error"], "n_parsed": count["judged"],
        "n_parse_failures": count["parse_error"], "n_refusals": sum(1 for r in records if r.get("refused")),
        "n_skipped_no_baseline": count["skipped_no_baseline"], "n_skipped_no_answer": count["skipped_no_answer"],
        "n_skipped_not_common": count["skipped_not_common"],
        "n_pending": count["pending"], "complete": count["pending"] == 0,
        "n_unfinished_reasoning": sum(1 for r in records if r.get("unfinished_reasoning")),
    }
    if systems:
        low, high = k_range or (len(systems), len(systems))
        summary.update(n_systems=high, n_systems_min=low, n_systems_max=high)
    summary.update(protocol.statistics(parsed, judge))
    summary["rouge_agreement"], summary["rouge_agreement_method"] = protocol.rouge_agreement(parsed)
    summary["decoding"], summary["decodings_seen"] = decoding, decodings
    summary.update(ensemble or {})
    summary["package_version"] = __version__
    summary["created_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return schema.make_summary(summary)


def ensemble_lines(summaries: Iterable[dict]) -> list[str]:
    """For each ensemble's summary: its members' headlines, their agreement and what the vote settled."""
    from .protocols import get

    lines = []
    for s in summaries:
        if not s.get("members"):
            continue
        protocol = get(s["protocol"])
        heads = ", ".join(f"{m['judge_model']} {_number(protocol.table_cells(m)[0])} ({m['n_parse_failures']} "
                          "unparsed)" for m in s["members"])
        lines.append(f"{s['model']} / {s['task']} / {s['judge']}: {heads}; Krippendorff's alpha "
                     f"{_number(s['agreement'])} on {s['agreement_n_items']} items; {s['n_ensemble_ties']} even "
                     f"splits, {s['n_ensemble_partial']} items decided without a member whose reply failed")
    return lines


def _number(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def first_failure(records: Iterable[dict]) -> dict | None:
    """The first parse failure among annotation lines, or None."""
    return next((r for r in records if r["status"] == "parse_error"), None)


def write_outputs(folder: Path, records: list[dict], summary: schema.JudgeSummary) -> None:
    """Write ``annotations.jsonl`` then ``summary.json`` into ``folder``, each atomically."""
    schema.write(folder, records, summary)


def cell(value, digits: int = 3) -> str:
    """A table cell of the judge's console tables: ``-`` for no value, floats to ``digits`` places."""
    if value is None:
        return "-"
    if isinstance(value, list):
        return "[" + ", ".join(cell(v, digits) for v in value) + "]"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)
