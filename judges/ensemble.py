"""Judge ensembles: several judge models' verdicts on the same requests made into one (no I/O).

Each member (judge model) gets the same requests, cached under its own keys (the model is part of
every cache key), and its annotation lines are made as for a single judge. Per item the ensemble
then takes:

* ``pending`` while any member has not answered (a rerun finishes it), a skip status when the
  item was skipped (the same for every member);
* ``judged`` when at least one member's reply parsed: the protocol's :meth:`~.protocols.Protocol.combine`
  over those members (majority outcome for pairwise, mean rank for rank, mean score for rubric);
  a member whose reply failed (parse error or refusal) is left out of that item's verdict, its
  own verdict stays None in ``members`` and the item counts in ``n_ensemble_partial``;
* ``parse_error`` when no member's reply parsed.

Inter-judge agreement is Krippendorff's alpha (the ``krippendorff`` package) over the items with
a parsed verdict from at least two members, a member's failed verdict being a missing value.
"""

from __future__ import annotations

import math
from typing import Sequence

from rolebench_eval.outputs import judge as schema
from rolebench_eval.outputs import sanitize_model_name

from . import report

#: The annotation fields that describe the item (the same in every member's line).
_ITEM_FIELDS = ("doc_id", "role", "question", "lang", "kind", "candidate", "baseline", "unfinished_reasoning",
                "package_version", "prompt_hash")
#: A member's own verdict fields kept in the ensemble's line (``members``).
_MEMBER_FIELDS = ("judge_model", "status", "value", "score", "parse_error", "judge_texts", "refused", "decoding",
                  "flip", "rank", "character_break")
AGREEMENT_METHOD = ("Krippendorff's alpha ({level}) between the judge models on {what}, over the items with a "
                    "parsed verdict from at least two of them (krippendorff package)")
_AGREED_ON = {"nominal": "each item's outcome", "ordinal": "the candidate's rank", "interval": "each item's score"}


def ensemble_name(judge_name: str, models: Sequence[str]) -> str:
    """The ensemble's judge name in summaries and on the leaderboard.

    Example:
        >>> ensemble_name("pairwise", ["gpt-4o", "claude"])
        'pairwise[gpt-4o+claude]'
    """
    return f"{judge_name}[{'+'.join(models)}]"


def folder_name(judge_name: str, models: Sequence[str]) -> str:
    """The ensemble's output folder name (model names may hold ``/``).

    Example:
        >>> folder_name("rank", ["Qwen/Qwen2.5-72B", "gpt-4o"])
        'rank__Qwen__Qwen2.5-72B+gpt-4o__'
    """
    return sanitize_model_name(ensemble_name(judge_name, models))


def _status(lines: list[dict]) -> str:
    statuses = {r["status"] for r in lines}
    if "pending" in statuses:
        return "pending"
    if "judged" in statuses:
        return "judged"
    return "parse_error" if "parse_error" in statuses else lines[0]["status"]


def _member(line: dict) -> dict:
    return {k: line[k] for k in _MEMBER_FIELDS if k in line}


def combine_item(judge, lines: list[dict]) -> tuple[dict, bool, bool]:
    """The ensemble's annotation line of one item from its members' lines (one per member, in order).

    Returns the line, whether the members split evenly (tie rule) and whether a member's failed
    reply was left out (partial).
    """
    first = lines[0]
    status = _status(lines)
    line = {k: first[k] for k in _ITEM_FIELDS if k in first}
    line.update(status=status, judge_model="+".join(r["judge_model"] for r in lines),
                members=[_member(r) for r in lines])
    if status not in ("judged", "parse_error"):
        return line, False, False
    judged = [r for r in lines if r["status"] == "judged"]
    stamps = [r["timestamp"] for r in lines if r.get("timestamp")]
    line.update(refused=all(r.get("refused") for r in lines), timestamp=max(stamps) if stamps else None)
    if not judged:
        line["parse_error"] = "no member's reply parsed: " + "; ".join(
            f"{r['judge_model']}: {r.get('parse_error')}" for r in lines)
        return line, False, False
    fields, tied = judge.impl.combine(judge, judged)
    line.update(fields, rouge_candidate=judged[0].get("rouge_candidate"),
                rouge_baseline=judged[0].get("rouge_baseline"))
    return line, tied, len(judged) < len(lines)


def combine_records(judge, members: Sequence[list[dict]]) -> tuple[list[dict], int, int]:
    """The ensemble's annotation lines from each member's (all sorted by doc_id, one line per item),
    with the counts of even splits and of items decided without a failed member."""
    out, ties, partial = [], 0, 0
    for lines in zip(*members, strict=True):
        if len({r["doc_id"] for r in lines}) != 1:
            raise ValueError(f"members' annotation lines out of step: doc ids {[r['doc_id'] for r in lines]}")
        line, tied, part = combine_item(judge, list(lines))
        out.append(line)
        ties, partial = ties + tied, partial + part
    return out, ties, partial


def agreement(judge, records: Sequence[dict]) -> tuple[float | None, int]:
    """Krippendorff's alpha between the members over the ensemble's judged lines, and the items it
    is computed on; None when fewer than two items have two verdicts, or every verdict is the same."""
    import krippendorff
    import numpy as np

    protocol = judge.impl
    rows = [[protocol.agreement_value(m) if m["status"] == "judged" else math.nan for m in r["members"]]
            for r in records if r["status"] == "judged"]
    rows = [row for row in rows if sum(not math.isnan(v) for v in row) >= 2]
    values = {v for row in rows for v in row if not math.isnan(v)}
    if len(rows) < 2 or len(values) < 2:
        return None, len(rows)
    data = np.array(rows, dtype=float).T  # members x items
    alpha = krippendorff.alpha(reliability_data=data, level_of_measurement=protocol.agreement_level)
    return (None if math.isnan(alpha) else float(alpha)), len(rows)


def summary_fields(judge, records: Sequence[dict], member_summaries: Sequence, ties: int, partial: int) -> dict:
    """The ensemble fields of a summary: each member's headline, the agreement and the vote's counts."""
    names = set(schema.JudgeMember.__struct_fields__)
    alpha, n_items = agreement(judge, records)
    level = judge.impl.agreement_level
    return {"members": [{k: getattr(s, k) for k in names} for s in member_summaries],
            "agreement": alpha, "agreement_n_items": n_items,
            "agreement_method": AGREEMENT_METHOD.format(level=level, what=_AGREED_ON[level]),
            "ensemble_rule": judge.impl.ensemble_rule, "n_ensemble_ties": ties, "n_ensemble_partial": partial}


def outputs(judge, decodings: dict[str, dict], members: Sequence[list[dict]], meta: dict,
            systems: list[str] | None, k_range: tuple[int, int] | None) -> tuple[list[dict], schema.JudgeSummary, str]:
    """The ensemble's annotation lines, summary and folder name for one (run, task).

    ``decodings`` maps each member's model to its configured decoding, in the order of ``members``
    (each member's annotation lines); ``meta`` is the single judge's summary provenance.
    """
    models = list(decodings)
    summaries = [report.summarize(lines, {**meta, "judge_model": model}, judge, systems, decodings[model], k_range)
                 for model, lines in zip(models, members)]
    records, ties, partial = combine_records(judge, members)
    meta = {**meta, "judge": ensemble_name(judge.name, models), "judge_model": "+".join(models)}
    summary = report.summarize(records, meta, judge, systems, None, k_range,
                               summary_fields(judge, records, summaries, ties, partial))
    return records, summary, folder_name(judge.name, models)
