"""Judge summaries (``kind: rolebench-judge-summary``) as leaderboard columns, and their verdicts.

The judges write ``<out>/<model>/<task>/<judge>/summary.json`` next to ``annotations.jsonl``;
any JSON file under a ``--judges`` folder whose ``kind`` is ``rolebench-judge-summary`` is
read, unknown keys are ignored. Schema version 2 (the current one) carries the
length-controlled win rate, the joint ranking's mean rank among ``n_systems`` systems, the
rubric means and the character-break rate; version 1 summaries (older judge runs) are read
too, with those columns left empty. A failed judge parse is never a score: the
parse-failure count is its own column.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rolebench_eval.errors import InputError
from rolebench_eval.fileio import read_json, read_jsonl
from rolebench_eval.outputs import JUDGE_SUMMARY_KIND

from .model import Cell, Column, Row, Schema, clean, judge_columns

READ_VERSIONS = (1, 2)
_STRINGS = ("model", "task", "judge", "protocol")
_COUNTS = ("n_judged", "n_parsed", "n_parse_failures")
_RATES = ("win_rate", "lc_win_rate", "character_break_rate")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check(path: Path, data: dict) -> dict:
    if data.get("schema_version") not in READ_VERSIONS:
        raise InputError(path, None, "schema_version", f"is {data.get('schema_version')!r}; this leaderboard "
                                                       f"reads versions {', '.join(map(str, READ_VERSIONS))}")
    for key in _STRINGS:
        if not isinstance(data.get(key), str) or not data[key]:
            raise InputError(path, None, key, f"expected a non-empty string, got {data.get(key)!r}")
    for key in (*_STRINGS, "judge_model", "baseline"):
        if isinstance(data.get(key), str):
            data[key] = clean(data[key])
    if isinstance(data.get("systems"), list):
        data["systems"] = [clean(s) for s in data["systems"]]
    for key in _COUNTS:
        if not isinstance(data.get(key), int) or isinstance(data.get(key), bool) or data[key] < 0:
            raise InputError(path, None, key, f"expected a count, got {data.get(key)!r}")
    for key in _RATES:
        rate = data.get(key)
        if rate is not None and not (_number(rate) and 0 <= rate <= 1):
            raise InputError(path, None, key, f"expected a number in [0, 1] or null, got {rate!r}")
    for key in ("ci95", "lc_ci95"):
        ci = data.get(key)
        if ci is not None and not _pair(ci):
            raise InputError(path, None, key, f"expected [lo, hi] or null, got {ci!r}")
    if data.get("mean_rank") is not None and not _number(data["mean_rank"]):
        raise InputError(path, None, "mean_rank", f"expected a number or null, got {data['mean_rank']!r}")
    means = data.get("rubric_means")
    if means is not None and not (isinstance(means, dict) and all(_number(v) or v is None for v in means.values())):
        raise InputError(path, None, "rubric_means", f"expected {{criterion: mean}} or null, got {means!r}")
    cis = data.get("rubric_ci95")
    if cis is not None and not (isinstance(cis, dict) and all(_pair(v) or v is None for v in cis.values())):
        raise InputError(path, None, "rubric_ci95", f"expected {{criterion: [lo, hi]}} or null, got {cis!r}")
    if data.get("n_systems") is not None and not (isinstance(data["n_systems"], int) and _number(data["n_systems"])):
        raise InputError(path, None, "n_systems", f"expected a count or null, got {data['n_systems']!r}")
    return data


def _pair(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(map(_number, value))


def _read_summary(path: Path, data: dict) -> dict:
    """A checked summary; whatever else its content breaks is this file's error, never the build's."""
    data = _check(path, data)
    try:
        _cells(data)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        raise InputError(path, None, None, f"unexpected judge summary content ({type(exc).__name__}: {exc})") from None
    return data


def find_summaries(folders: Iterable[str | Path]) -> tuple[list[tuple[Path, dict]], list[InputError]]:
    """Every judge summary under ``folders`` (files named summary.json must be readable)."""
    found, errors = [], []
    for folder in folders:
        folder = Path(folder)
        if not folder.exists():
            errors.append(InputError(folder, None, None, "no such file or folder"))
            continue
        for path in sorted(folder.rglob("*.json")) if folder.is_dir() else [folder]:
            try:
                data = read_json(path)
            except InputError as exc:
                if path.name == "summary.json":
                    errors.append(exc)
                continue
            if isinstance(data, dict) and data.get("kind") == JUDGE_SUMMARY_KIND:
                try:
                    found.append((path, _read_summary(path, data)))
                except InputError as exc:
                    errors.append(exc)
    return found, errors


def _ci(summary: dict, key: str) -> tuple[float | None, float | None]:
    ci = summary.get(key)
    return (ci[0], ci[1]) if ci else (None, None)


def _cells(summary: dict) -> dict[str, Cell]:
    """metric -> Cell of one summary (only what its protocol and version give)."""
    parsed, judged = summary["n_parsed"], summary["n_judged"]
    note = f"{parsed} parsed of {judged} judged"
    for key, what in (("n_skipped_no_baseline", "no baseline answer"), ("n_skipped_no_answer", "no answer"),
                      ("n_pending", "not judged yet")):
        if summary.get(key):
            note += f"; {summary[key]} skipped ({what})"
    k, systems = summary.get("n_systems"), summary.get("systems")
    ranked = f"; ranked together with {', '.join(map(str, systems))}" if systems else ""
    means = summary.get("rubric_means") or {}
    cells = {
        "win_rate": Cell(summary.get("win_rate"), *_ci(summary, "ci95"), parsed, note + ranked),
        "lc_win_rate": Cell(summary.get("lc_win_rate"), *_ci(summary, "lc_ci95"), parsed,
                            "length-controlled" + ("" if summary.get("schema_version", 1) >= 2 else
                                                   "; not in schema-version-1 summaries")),
        "mean_rank": Cell(summary.get("mean_rank"), n=parsed, note=f"mean rank among {k} systems{ranked}"
                          if k else "mean rank"),
        "rubric_mean": Cell(means.get("overall"), *(((summary.get("rubric_ci95") or {}).get("overall")) or (None, None)),
                            parsed, "; ".join(f"{c} {v:.2f}" for c, v in means.items() if c != "overall"
                                              and v is not None) or None),
        "character_break_rate": Cell(summary.get("character_break_rate"), n=parsed,
                                     note="answers the judge found out of character"),
        "parse_failures": Cell(summary["n_parse_failures"], n=judged,
                               note=f"{summary['n_parse_failures']} of {judged} replies unparsable"),
    }
    return cells


def attach_judges(schema: Schema, rows: list[Row], summaries: list[tuple[Path, dict]]
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
    chosen: dict[tuple[str, str, str], tuple[Path, dict]] = {}
    notes, unmatched = [], []
    for path, summary in summaries:
        model = summary["model"]  # the judged run's name (outputs.run_name), the rule the rows use too
        matches = by_run.get(model, [])
        if len(matches) != 1:
            which = "matches " + ", ".join(r.name for r in matches) if matches else "is not on the board"
            unmatched.append(f"{path}: judge summary for {model!r}, which {which}; left out")
            continue
        key = (matches[0].name, summary["task"], summary["judge"])
        if key in chosen:
            older, newer = sorted([chosen[key], (path, summary)], key=lambda ps: str(ps[1].get("created_at")))
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
    out = {}
    for line, row in read_jsonl(path, "judge annotations"):
        if not isinstance(row, dict) or not isinstance(row.get("doc_id"), int):
            raise InputError(path, line, "doc_id", "missing or not an integer")
        if row["doc_id"] not in doc_ids:
            continue
        texts = row.get("judge_texts") or []
        out[row["doc_id"]] = {"verdict": verdict_text(row), "score": row.get("score") if _number(row.get("score"))
                              else None, "texts": [clean(t) for t in texts if isinstance(t, str)]}
    return out


def _part(key: str, value) -> str:
    if isinstance(value, bool):
        return f"{key.replace('_', ' ')}: {'yes' if value else 'no'}"
    return f"{key} {value:g}" if _number(value) else f"{key} {clean(value)}"


def verdict_text(row: dict) -> str:
    """One annotation's verdict in words: ``win``, ``loss (rank 2)``, ``3.67 (fluency 4, ...)``, ``parse_error: ...``."""
    status, value = clean(row.get("status")), row.get("value")
    if status != "judged" or value is None:
        error = row.get("parse_error")
        return f"{status}: {clean(error)}" if error else status
    if isinstance(value, dict) and "outcome" in value:
        rank = value.get("candidate") if _number(value.get("candidate")) else None
        orders = value.get("orders")
        extra = f" (rank {rank:g})" if rank is not None else f" (orders: {', '.join(map(clean, orders))})" \
            if isinstance(orders, list) else ""
        return clean(value["outcome"]) + extra
    if isinstance(value, dict):
        parts = ", ".join(_part(clean(k), v) for k, v in value.items())
        score = row.get("score")
        return f"{score:.2f} ({parts})" if _number(score) else parts
    return clean(value)
