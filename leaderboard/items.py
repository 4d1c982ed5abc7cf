"""The item browser's data: a few items of every role, with every model's answer, score and verdict.

Read from the samples files by byte offset (the score cache keeps each item's line), so a
large board reads only the lines it shows; kept in the score cache, keyed by every file and
setting it comes from. :mod:`.html` writes it next to ``items.html`` as ``items-data.js``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from rolebench_eval.catalogue import depth_metric, split_depth_metric
from rolebench_eval.errors import InputError
from rolebench_eval.fileio import write_atomic
from rolebench_eval.outputs import UNFINISHED_REASONING, is_unfinished_metric, read_records_at

from .judges import read_verdicts
from .model import Leaderboard, Schema, clean


def _by_role(all_scores: list) -> dict[str, list[int]]:
    """role -> the doc ids any of the runs scored in it (the runs usually share one list of documents)."""
    import numpy as np

    first = all_scores[0]
    ids, roles = first.doc_ids, first.roles
    others = [sc for sc in all_scores[1:] if not np.array_equal(sc.doc_ids, first.doc_ids)]
    if others:
        ids = np.concatenate([ids, *(sc.doc_ids for sc in others)])
        roles = np.concatenate([roles, *(sc.roles for sc in others)])
        ids, keep = np.unique(ids, return_index=True)
        roles = roles[keep]
    out: dict[str, list[int]] = {}
    for code in np.unique(roles).tolist():
        out[first.role_names[code]] = ids[roles == code].tolist()
    return dict(sorted(out.items()))


def _pick(doc_ids_by_role: dict[str, list[int]], judged: set[int], per_role: int) -> dict[str, list[int]]:
    """``per_role`` items of each role, judged ones first, each role's in doc-id order."""
    return {role: sorted(sorted(ids, key=lambda d: (d not in judged, d))[:per_role])
            for role, ids in doc_ids_by_role.items()}


def first_answers(path: Path, scores, per_role: int, metrics: tuple[str, ...]) -> tuple | None:
    """``(metrics, {doc_id: Record})`` of the first ``per_role`` items (by doc id) of each role: what the
    item browser shows of this file unless judge verdicts choose others. Read by the process that read the
    file's scores (:func:`.scores.read_all`), while the file is fresh, not later, one file after another, by
    the board's; None when a line cannot be read (the browser reads it again and reports it)."""
    import numpy as np

    order = np.argsort(scores.roles, kind="stable")  # doc ids ascending within each role
    roles = scores.roles[order]
    starts = np.flatnonzero(np.r_[True, roles[1:] != roles[:-1]]) if roles.size else np.zeros(0, np.int64)
    rank = np.arange(roles.size) - np.repeat(starts, np.diff(np.r_[starts, roles.size]))
    keep = np.sort(order[rank < per_role])
    offsets, lines = scores.positions()
    try:
        records = read_records_at(path, zip(offsets[keep].tolist(), lines[keep].tolist()), metrics, with_docs=False)
    except InputError:
        return None
    return metrics, {r.doc_id: r for r in records}


def _items_key(board: Leaderboard, task_runs: dict, used_judges: dict, models: list[str], per_role: int) -> str:
    """A digest of every file and setting the browser's data comes from."""
    parts = ["1", str(per_role), board.settings.get("package_version", "")]
    for name in models:
        row = board.row(name)
        parts += [name, row.full_name, str(row.rank)]
        for task, tr in sorted(task_runs[name].items()):
            if tr.samples_path is not None:
                stat = tr.samples_path.stat()
                parts += [task, str(tr.samples_path.resolve()), str(stat.st_size), str(stat.st_mtime_ns)]
    for key, path in sorted((k, p) for k, p in used_judges.items() if k[0] in models):
        notes = path.with_name("annotations.jsonl")
        stat = notes.stat() if notes.is_file() else None
        parts += [*key, str(notes.resolve()), str(stat.st_size if stat else -1), str(stat.st_mtime_ns if stat else -1)]
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


def items_data(board: Leaderboard, schema: Schema, task_runs: dict, used_judges: dict, per_role: int,
               max_models: int, cache_dir: Path | None = None) -> dict:
    """The item browser's data: ``per_role`` items of every role of every task, answered by the first
    ``max_models`` measured rows (by rank) that logged samples, with their per-item scores and verdicts.

    With ``cache_dir``, the data of the same files and settings is kept and read back (reading
    the lines of every shown model's items is most of the browser's cost).
    """
    import msgspec

    logged = [r.name for r in board.measured if any(tr.items is not None for tr in task_runs[r.name].values())]
    models = logged[:max_models]
    kept = None
    if cache_dir is not None:
        key = _items_key(board, task_runs, used_judges, models, per_role)
        kept = cache_dir / "items" / key[:2] / f"{key}.json"
        try:
            return msgspec.json.decode(kept.read_bytes())
        except (OSError, msgspec.DecodeError):
            pass
    before = len(board.errors)
    out = _collect(board, schema, task_runs, used_judges, per_role, models, logged)
    if kept is not None and len(board.errors) == before:  # an unreadable file is reported again next time
        try:
            write_atomic(kept, msgspec.json.encode(out))
        except OSError:
            pass  # a cache that cannot be written only costs time
    return out


def _collect(board: Leaderboard, schema: Schema, task_runs: dict, used_judges: dict, per_role: int,
             models: list[str], logged: list[str]) -> dict:
    judges = sorted({(task, judge) for (name, task, judge) in used_judges if name in models})
    roles: dict[str, int] = {}
    out = {"version": 1, "per_role": per_role, "n_models": len(logged),
           "models": [{"name": m, "full": board.row(m).full_name, "rank": board.row(m).rank} for m in models],
           "judges": [{"task": t, "judge": j} for t, j in judges], "tasks": [], "roles": [], "items": []}
    for task in schema.tasks:
        have = [m for m in models if task in task_runs[m] and task_runs[m][task].items is not None]
        if not have:
            continue
        verdicts = {(m, j): _safe(board, read_verdicts, {}, used_judges[(m, t, j)],
                                  set(_all_ids(task_runs[m][task])))
                    for m in have for t, j in judges if t == task and (m, t, j) in used_judges}
        judged = {d for v in verdicts.values() for d in v}
        chosen = _pick(_by_role([task_runs[m][task].items for m in have]), judged, per_role)
        wanted = {d for ids in chosen.values() for d in ids}
        info = schema.tasks[task]
        if info.live:
            _conversations(board, out, task, info.label, chosen, {m: task_runs[m][task] for m in have}, models, roles,
                           (verdicts, judges))
            continue
        metrics = answer_metrics(info, task_runs[have[0]][task].items.metrics)
        records = {m: _safe(board, _records, {}, task_runs[m][task], wanted, metrics, m == have[0])
                   for m in have}  # the documents once, from the first model: the others give their answers
        out["tasks"].append({"name": task, "label": info.label, "metric": info.paper_metric,
                             "roles": [_code(r, roles, out["roles"]) for r in chosen],
                             "unfinished": [[i, *n] for i, m in enumerate(models)
                                            if m in have and (n := _unfinished_count(task_runs[m][task]))]})
        for role, ids in chosen.items():
            for doc_id in ids:
                first = records[have[0]].get(doc_id)
                if first is None:  # the first model did not answer it: its document from a model that did
                    holder = next((m for m in have if doc_id in records[m]), None)
                    if holder is None:
                        continue
                    first = _records(task_runs[holder][task], {doc_id}, metrics, True)[doc_id]
                out["items"].append(_item(task, info.paper_metric, _code(role, roles, out["roles"]), first,
                                          [(i, records[m].get(doc_id)) for i, m in enumerate(models) if m in have],
                                          verdicts, judges, models))
    return out


def _conversations(board: Leaderboard, out: dict, task: str, label: str, chosen: dict[str, list[int]], runs: dict,
                   models: list[str], roles: dict[str, int], judged: tuple[dict, list]) -> None:
    """A conversations task's entries: each chosen conversation with every model's turns (:mod:`.live`) and the
    conversation judge's verdicts on it (``judged``: the verdicts by (model, judge) and the judges' list)."""
    from rolebench_eval.outputs.conversation import read_conversation_samples

    from .live import BROWSER_METRIC, conversation_item

    lines = {m: _safe(board, read_conversation_samples, {}, tr.samples_path) for m, tr in runs.items()}
    out["tasks"].append({"name": task, "label": label, "metric": BROWSER_METRIC,
                         "roles": [_code(r, roles, out["roles"]) for r in chosen], "unfinished": []})
    for role, ids in chosen.items():
        for doc_id in ids:
            answers = [(i, lines[m].get(doc_id)) for i, m in enumerate(models) if m in lines]
            if any(row is not None for _, row in answers):
                item = conversation_item(task, _code(role, roles, out["roles"]), doc_id, answers)
                for answer in item["answers"]:
                    answer["judges"] = _judged(task, doc_id, models[answer["model"]], *judged)
                out["items"].append(item)


def answer_metrics(info, read: Iterable[str]) -> tuple[str, ...]:
    """The per-item metrics the browser shows of a task's answers (``read``: those of its scores)."""
    metrics = tuple(read) if info.multi_turn else (info.paper_metric,)
    return metrics + _unfinished_names(metrics, info.multi_turn)


def _unfinished_names(metrics: tuple[str, ...], multi_turn: bool) -> tuple[str, ...]:
    """The per-item unfinished-reasoning metric to read beside ``metrics`` (per depth when multi-turn)."""
    if not multi_turn:
        return (UNFINISHED_REASONING,)
    depths = sorted({hit[1] for m in metrics if (hit := split_depth_metric(m))})
    return tuple(depth_metric(UNFINISHED_REASONING, d) for d in depths)


def _unfinished_count(task_run) -> tuple[int, int] | None:
    """(n, N): how many of the run's scored items never closed their reasoning, from its results; None for none."""
    shares = [v for m, v in task_run.values.items() if is_unfinished_metric(m)]
    total = len(task_run.items.doc_ids)
    count = round(sum(shares) / len(shares) * total) if shares else 0
    return (count, total) if count else None


def _safe(board: Leaderboard, read, empty, *args):
    """``read(*args)``; a file that cannot be read is listed with the board's errors, and gives ``empty``."""
    try:
        return read(*args)
    except InputError as exc:
        board.errors.append(exc)
        return empty


def _all_ids(task_run) -> list[int]:
    return task_run.items.doc_ids.tolist()


def _code(value: str, codes: dict[str, int], values: list[str]) -> int:
    if value not in codes:
        codes[value] = len(values)
        values.append(value)
    return codes[value]


def _records(task_run, wanted: set[int], metrics: tuple[str, ...], with_docs: bool) -> dict:
    """The records of the ``wanted`` items of one run's task: those read with its scores (``Scores.answers``)
    as they are, the others from the samples file."""
    import numpy as np

    sc = task_run.items
    read = sc.answers[1] if sc.answers is not None and sc.answers[0] == metrics and not with_docs else {}
    keep = np.flatnonzero(np.isin(sc.doc_ids, np.fromiter(wanted, np.int64, len(wanted))))
    got = {d: read[d] for d in sc.doc_ids[keep].tolist() if d in read}
    if len(got) < keep.size:
        keep = keep[[d not in got for d in sc.doc_ids[keep].tolist()]]
        offsets, lines = sc.positions()
        positions = sorted(zip(offsets[keep].tolist(), lines[keep].tolist()))
        got.update((r.doc_id, r) for r in read_records_at(task_run.samples_path, positions, metrics, with_docs))
    return got


def _text(value):
    """Strings of a record, writable as UTF-8 (see ``model.clean``); anything else as is."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, list):
        return [_text(v) for v in value]
    return value


def _judged(task: str, doc_id: int, model: str, verdicts: dict, judges: list) -> list[dict]:
    """The judges' verdicts on one model's answer (or conversation) ``doc_id`` of ``task``."""
    judged = []
    for j, (task_, judge) in enumerate(judges):
        verdict = verdicts.get((model, judge), {}).get(doc_id) if task_ == task else None
        if verdict is not None:
            judged.append({"judge": j, **verdict})
    return judged


def _item(task: str, metric: str, role: int, first, answers, verdicts, judges, models) -> dict:
    doc = first.doc
    item = {"task": task, "role": role, "doc_id": first.doc_id, "question": clean(doc["question"].strip()),
            "references": _text(doc["references"]), "rolegpt": _text(doc.get("rolegpt")),
            "type": _text(doc.get("type")), "depth": doc.get("depth") if isinstance(doc.get("depth"), int) else None,
            "answers": []}
    # the metric names of this item's depth, looked up once (not matched against every metric of every answer)
    scored, unfinished = ((metric, UNFINISHED_REASONING) if item["depth"] is None else
                          (depth_metric(metric, item["depth"]), depth_metric(UNFINISHED_REASONING, item["depth"])))
    for index, record in answers:
        if record is None or (record.doc_hash and first.doc_hash and record.doc_hash != first.doc_hash):
            continue  # not answered, or another document under the same doc_id (another data version)
        judged = _judged(task, first.doc_id, models[index], verdicts, judges) if judges else []
        text = clean(record.response)
        same = text == item["rolegpt"] and text != ""  # the RoleGPT replay: shown once, above
        score = record.metrics.get(scored)
        item["answers"].append({"model": index, "text": "" if same else text, "same_as_rolegpt": same,
                                "score": score, "judges": judged, "unfinished": bool(record.metrics.get(unfinished))})
    return item
