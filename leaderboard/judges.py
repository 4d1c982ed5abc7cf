"""Judge summaries (``kind: rolebench-judge-summary``) as leaderboard columns, and their verdicts.

The judges write ``<out>/<model>/<task>/<judge>/summary.json`` next to ``annotations.jsonl``;
any JSON file under a ``--judges`` folder whose ``kind`` is ``rolebench-judge-summary`` is
read through its schema (:mod:`rolebench_eval.outputs.judge`: a field that does not fit is this
file's error, never the build's), unknown keys are ignored. Schema version 2 (the current one)
carries the length-controlled win rate, the joint ranking's mean rank among ``n_systems``
systems, the rubric means and the character-break rate; version 1 summaries (older judge runs)
are read too, with those columns left empty. A failed judge parse is never a score: the
parse-failure count is its own column.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rolebench_eval.errors import InputError
from rolebench_eval.outputs import codec
from rolebench_eval.outputs.judge import KIND, Annotation, JudgeSummary, decode_summary, read_annotations, \
    summary_header

from .model import Cell, Column, Row, Schema, clean, judge_columns


def find_summaries(folders: Iterable[str | Path]) -> tuple[list[tuple[Path, JudgeSummary]], list[InputError]]:
    """Every judge summary under ``folders`` (files named summary.json must be readable)."""
    found, errors = [], []
    for folder in folders:
        folder = Path(folder)
        if not folder.exists():
            errors.append(InputError(folder, None, None, "no such file or folder"))
            continue
        for path in sorted(folder.rglob("*.json")) if folder.is_dir() else [folder]:
            try:
                raw = codec.read_bytes(path, "judge summary")
                header = summary_header(raw)
                if header is None and path.name == "summary.json":
                    codec.decode(raw, dict, path)  # says why it is not a JSON object
            except InputError as exc:
                if path.name == "summary.json":
                    errors.append(exc)
                continue
            if header is not None and header.kind == KIND:
                try:
                    found.append((path, decode_summary(raw, path, header)))
                except InputError as exc:
                    errors.append(exc)
    return found, errors


def _ci(ci: list[float] | None) -> tuple[float | None, float | None]:
    return (ci[0], ci[1]) if ci else (None, None)


def _cells(summary: JudgeSummary) -> dict[str, Cell]:
    """metric -> Cell of one summary (only what its protocol and version give)."""
    parsed, judged = summary.n_parsed, summary.n_judged
    note = f"{parsed} parsed of {judged} judged"
    for count, what in ((summary.n_skipped_no_baseline, "no baseline answer"), (summary.n_skipped_no_answer,
                                                                                 "no answer"),
                        (summary.n_pending, "not judged yet")):
        if count:
            note += f"; {count} skipped ({what})"
    k, systems = summary.n_systems, summary.systems
    ranked = f"; ranked together with {', '.join(systems)}" if systems else ""
    ranked += ensemble_note(summary)
    means = summary.rubric_means or {}
    cells = {
        "win_rate": Cell(summary.win_rate, *_ci(summary.ci95), parsed, note + ranked),
        "lc_win_rate": Cell(summary.lc_win_rate, *_ci(summary.lc_ci95), parsed,
                            "length-controlled" + ("" if summary.schema_version >= 2 else
                                                   "; not in schema-version-1 summaries")),
        "mean_rank": Cell(summary.mean_rank, n=parsed, note=f"mean rank among {k} systems{ranked}"
                          if k else "mean rank"),
        "rubric_mean": Cell(means.get("overall"), *_ci((summary.rubric_ci95 or {}).get("overall")),
                            parsed, "; ".join(f"{c} {v:.2f}" for c, v in means.items() if c != "overall"
                                              and v is not None) or None),
        "character_break_rate": Cell(summary.character_break_rate, n=parsed,
                                     note="answers the judge found out of character"),
        "parse_failures": Cell(summary.n_parse_failures, n=judged,
                               note=f"{summary.n_parse_failures} of {judged} replies unparsable"),
    }
    return cells


def ensemble_note(summary: JudgeSummary) -> str:
    """"; ensemble of a, b (Krippendorff's alpha 0.50 on 6 items)" for an ensemble's summary, else ""."""
    if not summary.members:
        return ""
    alpha = "undefined" if summary.agreement is None else f"{summary.agreement:.2f}"
    return (f"; ensemble of {', '.join(m.judge_model for m in summary.members)} (Krippendorff's alpha {alpha} "
            f"on {summary.agreement_n_items} items)")


def attach_judges(schema: Schema, rows: list[Row], summaries: list[tuple[Path, JudgeSummary]]
                  ) -> tuple[list[Column], list[str], list[str], dict]:
    """Add judge cells to the measured rows.

    Returns:
        The new columns, notes (superseded summaries), the summaries that matched no row (with
        why), and ``(row name, task, judge) -> summary path`` of every summary used.
    """
    names = {r.name: r for r in rows}
    by_run: dict[str, list[Row]] = {}
    for row in rows:
        for run_name in row.run_names:
            by_run.setdefault(run_name, []).append(row)
    chosen: dict[tuple[str, str, str], tuple[Path, JudgeSummary]] = {}
    notes, unmatched = [], []
    for path, summary in summaries:
        model = summary.model  # the judged run's name (outputs.run_name), the rule the rows use too
        matches = by_run.get(model, [])
        if len(matches) != 1:
            which = "matches " + ", ".join(r.name for r in matches) if matches else "is not on the board"
            unmatched.append(f"{path}: judge summary for {model!r}, which {which}; left out")
            continue
        key = (matches[0].name, summary.task, summary.judge)
        if key in chosen:
            older, newer = sorted([chosen[key], (path, summary)], key=lambda ps: str(ps[1].created_at))
            notes.append(f"{older[0]}: superseded by the newer judge summary {newer[0]}")
            chosen[key] = newer
        else:
            chosen[key] = (path, summary)
    columns: dict[tuple[str, str], dict[str, Column]] = {}
    for (name, task, judge), (path, summary) in sorted(chosen.items()):
        if (task, judge) not in columns:
            columns[(task, judge)] = {c.metric: c for c in judge_columns(schema, task, judge, summary)}
        for metric, cell in _cells(summary).items():
            if metric in columns[(task, judge)]:
                names[name].cells[columns[(task, judge)][metric].key] = cell
        names[name].files.append(str(path))
    order = list(schema.tasks)
    keys = sorted(columns, key=lambda tj: (order.index(tj[0]) if tj[0] in order else len(order), tj))
    used = {key: path for key, (path, _) in chosen.items()}
    return [c for key in keys for c in columns[key].values()], notes, unmatched, used


def read_verdicts(summary_path: Path, doc_ids: set[int]) -> dict[int, dict]:
    """doc_id -> {verdict, score, texts} from the ``annotations.jsonl`` beside a summary.

    ``texts`` are the judge's replies (two for the pairwise protocol, one per order).
    A missing annotations file gives nothing; a corrupt one raises an :class:`InputError`.
    """
    path = summary_path.with_name("annotations.jsonl")
    if not path.is_file():
        return {}
    return {row.doc_id: {"verdict": verdict_text(row), "score": row.score, "texts": row.judge_texts or []}
            for _, row in read_annotations(path) if row.doc_id in doc_ids}


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _part(key: str, value) -> str:
    if isinstance(value, bool):
        return f"{key.replace('_', ' ')}: {'yes' if value else 'no'}"
    return f"{key} {value:g}" if _number(value) else f"{key} {clean(value)}"


def verdict_text(row: Annotation) -> str:
    """One annotation's verdict in words: ``win``, ``loss (rank 2)``, ``3.67 (fluency 4, ...)``, ``parse_error: ...``."""
    status, value = row.status, row.value
    if status != "judged" or value is None:
        return f"{status}: {row.parse_error}" if row.parse_error else status
    if isinstance(value, dict) and "outcome" in value:
        rank = value.get("candidate") if _number(value.get("candidate")) else None
        orders, votes = value.get("orders"), value.get("votes")
        extra = f" (rank {rank:g})" if rank is not None else f" (orders: {', '.join(map(clean, orders))})" \
            if isinstance(orders, list) else f" (votes: {', '.join(f'{clean(k)} {v}' for k, v in votes.items())})" \
            if isinstance(votes, dict) else ""
        return clean(value["outcome"]) + extra
    if isinstance(value, dict):
        # a nested mapping (the conversation judge's reasons) is read in the judge's own reply, not here
        parts = ", ".join(_part(clean(k), v) for k, v in value.items() if not isinstance(v, dict))
        return f"{row.score:.2f} ({parts})" if row.score is not None else parts
    return clean(value)
