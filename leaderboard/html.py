"""The two self-contained pages: ``index.html`` (the board) and ``items.html`` (the item browser).

No CDN, nothing fetched: both work opened from the file system. Jinja2 autoescaping
escapes every value from the inputs; the only unescaped text is this package's own CSS
and JS, and a Content-Security-Policy lets only that script run (by hash), so even an
injected inline handler would not run. The item browser's data (questions, references,
every model's answer, per-item scores and judge verdicts) sits next to it in
``items-data.js``, loaded as a script because browsers refuse ``fetch`` of a file from
``file://``; it is JSON, and the page builds its DOM with ``textContent`` only.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from markupsafe import Markup

from rolebench_eval.fileio import write_atomic
from rolebench_eval.outputs import read_records_at

from .judges import read_verdicts
from .model import MEASURED, Cell, Column, Leaderboard, Row, Schema, clean
from .render import cell_text, over_text, rank_text, shown_columns, test_text

HERE = Path(__file__).parent
HEATMAP_MAX_MODELS = 40
ITEMS_DATA = "items-data.js"
# viridis at 0, .25, .5, .75, 1
_STOPS = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]


def heat_color(t: float) -> str:
    """Viridis-like colour for ``t`` in [0, 1] (linear between five stops)."""
    t = min(1.0, max(0.0, t)) * (len(_STOPS) - 1)
    i = min(int(t), len(_STOPS) - 2)
    rgb = [round(a + (b - a) * (t - i)) for a, b in zip(_STOPS[i], _STOPS[i + 1])]
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _extent(rows: list[Row], key: str) -> tuple[float, float]:
    points = [v for r in rows for c in [r.cells.get(key)] if c is not None
              for v in (c.value, c.lo, c.hi) if v is not None]
    if not points:
        return 0.0, 1.0
    lo, hi = min(points), max(points)
    pad = (hi - lo) * 0.05 or max(abs(hi), 1.0) * 0.05
    return lo - pad, hi + pad


def _bar(cell: Cell | None, extent: tuple[float, float], reported: bool) -> dict | None:
    if cell is None or cell.value is None:
        return None
    lo, hi = extent
    pos = lambda v: round(100 * (v - lo) / (hi - lo), 2)  # noqa: E731
    bar = {"v": pos(cell.value), "ci": cell.lo is not None and cell.hi is not None, "reported": reported}
    if bar["ci"]:
        bar["lo"], bar["w"] = pos(cell.lo), max(0.5, pos(cell.hi) - pos(cell.lo))
    return bar


def _cell_view(col: Column, cell: Cell | None, extent: tuple[float, float], reported: bool) -> dict:
    title = col.description if cell is None or not cell.note else cell.note
    if cell is not None and cell.n is not None:
        title = f"n = {cell.n}" + (f"; {cell.note}" if cell.note else "")
    return {
        "text": cell_text(col, cell, with_ci=False),
        "ci": "" if cell is None or cell.lo is None else _ci(col, cell),
        "sort": "" if cell is None or cell.value is None else repr(float(cell.value)),
        "bar": _bar(cell, extent, reported) if col.key == "score" else None,
        "title": title, "fails": "",
    }


def _ci(col: Column, cell: Cell) -> str:
    """The interval, short: ``41–80%`` for rates, ``0.3202–0.3256`` otherwise."""
    if col.format.endswith("%"):
        return f"{cell.lo * 100:.0f}–{cell.hi * 100:.0f}%"
    spec = col.format.lstrip("+")  # the bounds of a signed column, without their plus signs
    return f"{format(cell.lo, spec)}–{format(cell.hi, spec)}"


def _test_view(test) -> dict:
    if test is None:
        return {"text": "–", "sort": "", "tie": False, "title": ""}
    return {"text": f"{test.diff:+.4f}", "sort": repr(test.diff), "tie": test.tie,
            "title": f"vs {test.other}: {test_text(test)}; n = {test.n_items} paired items"}


def _layout(cols: list[Column], baseline: bool) -> list:
    """The table's column order: Score, the paired tests, RAW and continuity, the folded per-split
    columns, the judges; the tests are the markers "above" and "baseline"."""
    main = [c for c in cols if c.main and c.metric != "parse_failures"]  # failures: inside the judge's first cell
    score = [c for c in main if c.key == "score"]
    static = [c for c in main if c.key != "score" and c.kind != "judge"]
    tests = ["above", "baseline"] if baseline else ["above"]
    return score + tests + static + [c for c in cols if not c.main] + [c for c in main if c.kind == "judge"]


def _row_view(row: Row, layout: list, extents: dict) -> dict:
    cells = []
    for c in layout:
        if isinstance(c, str):
            cells.append(c)
            continue
        view = _cell_view(c, row.cells.get(c.key), extents[c.key], row.source != MEASURED)
        fails = row.cells.get(f"judge:parse_failures:{c.task}:{c.judge}") if c.kind == "judge" else None
        if fails is not None and c.metric in ("win_rate", "rubric_mean") and fails.value:
            view["fails"] = f"{fails.value:g} unparsed"
            view["title"] += f"; {fails.note}"
        cells.append({**view, "cls": "main" if c.main else "split"})
    return {
        "name": row.name, "full": row.full_name or row.name, "source": row.source, "comparable": row.comparable,
        "reasons": row.reasons, "rank": rank_text(row), "rank_sort": "" if row.rank is None else row.rank,
        "citation": row.citation or "", "cells": cells,
        "no_main": row.source != MEASURED and not any(row.value(c.key) is not None for c in layout
                                                       if not isinstance(c, str) and c.main),
        "above": _test_view(row.vs_above), "baseline": _test_view(row.vs_baseline),
    }


def _groups(layout: list) -> list[dict]:
    """Header groups: consecutive columns of one group, folded when none of them is a main column."""
    groups: list[dict] = []
    for col in layout:
        name = "Paired tests of the Score" if isinstance(col, str) else col.group
        folded = False if isinstance(col, str) else not col.main
        if not groups or groups[-1]["name"] != name or groups[-1]["folded"] != folded:
            groups.append({"name": name, "span": 0, "folded": folded})
        groups[-1]["span"] += 1
    return groups


def _heatmap(board: Leaderboard, browser: bool) -> dict:
    data = board.breakdowns.get("role", {})
    models = [r.name for r in board.measured if r.name in data][:HEATMAP_MAX_MODELS]
    values = [c.value for m in models for c in data[m].values() if c.value is not None]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    order = {t: i for i, t in enumerate(board.score_tasks)}
    roles = sorted(board.roles_by_task, key=lambda r: (min(order[t] for t in board.roles_by_task[r]), r))
    rows = []
    for role in roles:
        cells = []
        for model in models:
            cell = data[model].get(role)
            if cell is None or cell.value is None:
                cells.append({"text": "", "color": "", "fg": "", "title": f"{model} · {role}: no items", "link": ""})
                continue
            t = (cell.value - lo) / (hi - lo) if hi > lo else 0.5
            ci = f" ({cell.lo:.3f}–{cell.hi:.3f})" if cell.lo is not None else ""
            cells.append({"text": f"{cell.value:.2f}", "color": heat_color(t), "fg": "#111" if t > 0.55 else "#fff",
                          "title": f"{model} · {role}: {cell.value:.4f}{ci}, n = {cell.n}; open its items",
                          "link": {"role": role, "model": model} if browser else ""})
        rows.append({"role": role, "tasks": ", ".join(board.roles_by_task[role]), "cells": cells})
    legend = [{"color": heat_color(i / 4), "label": f"{lo + (hi - lo) * i / 4:.2f}"} for i in range(5)]
    return {"models": models, "rows": rows, "legend": legend, "truncated": len(data) > len(models)}


def _breakdown(board: Leaderboard, kind: str) -> dict:
    data = board.breakdowns.get(kind, {})
    data = {r.name: data[r.name] for r in board.rows if r.name in data}
    groups = sorted({g for cells in data.values() for g in cells})
    rows = [{"name": n, "cells": [{"text": "–" if data[n].get(g) is None else f"{data[n][g].value:.4f}",
                                   "ci": "" if data[n].get(g) is None or data[n][g].lo is None
                                   else f"{data[n][g].lo:.4f}–{data[n][g].hi:.4f}"} for g in groups]}
            for n in data]
    return {"groups": groups, "rows": rows}


def _environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    return Environment(loader=FileSystemLoader(HERE), autoescape=True, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True)


def _script(name: str) -> tuple[Markup, str]:
    script = (HERE / name).read_text(encoding="utf-8")
    return Markup(script), base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()


def render_index(board: Leaderboard, depth_png: bytes | None = None) -> str:
    """``index.html`` as a string."""
    cols = shown_columns(board)
    layout = _layout(cols, board.baseline is not None)
    extents = {c.key: _extent(board.rows, c.key) for c in cols}
    script, digest = _script("leaderboard.js")
    browser = bool(board.items and board.items["items"])
    return _environment().get_template("index.html.jinja").render(
        board=board, columns=layout, column_list=cols, groups=_groups(layout),
        roomy=sum(1 for c in layout if isinstance(c, str) or c.main) <= 10,
        rows=[_row_view(r, layout, extents) for r in board.rows],
        descriptions={c.key: " ".join(c.description.split()) + over_text(board, c) for c in cols},
        n_measured=len(board.measured), n_reported=len(board.rows) - len(board.measured),
        n_hidden=sum(1 for r in board.rows if r.source != MEASURED and not any(
            r.value(c.key) is not None for c in cols if c.main)),
        heatmap=_heatmap(board, browser), browser=browser,
        breakdowns={k: _breakdown(board, k) for k in ("language", "type")},
        depth_png=base64.b64encode(depth_png).decode() if depth_png else "",
        css=Markup((HERE / "leaderboard.css").read_text(encoding="utf-8")), script=script, script_hash=digest)


def render_items(board: Leaderboard) -> str:
    """``items.html`` as a string (its data is ``items-data.js``)."""
    script, digest = _script("items.js")
    return _environment().get_template("items.html.jinja").render(
        board=board, items=board.items, data_file=ITEMS_DATA,
        css=Markup((HERE / "leaderboard.css").read_text(encoding="utf-8")), script=script, script_hash=digest)


def items_script(items: dict) -> bytes:
    """``items-data.js``: the browser's data as one JSON literal (line separators escaped for old engines)."""
    import msgspec

    data = msgspec.json.encode(items).replace("\u2028".encode(), b"\\u2028").replace("\u2029".encode(), b"\\u2029")
    return b"// RoleBench item browser data, written by rolebench-eval leaderboard; loaded by items.html\n" \
           b"window.ROLEBENCH_ITEMS = " + data + b";\n"


def write_pages(board: Leaderboard, out: Path) -> dict[str, Path]:
    """Write ``index.html`` and, when there are items, ``items.html`` with ``items-data.js``."""
    written = {}
    if board.items and board.items["items"]:
        written["items_data"] = write_atomic(out / ITEMS_DATA, items_script(board.items))
        written["items_html"] = write_atomic(out / "items.html", render_items(board))
    else:
        for stale in (out / ITEMS_DATA, out / "items.html"):
            stale.unlink(missing_ok=True)  # a browser of an earlier build would contradict this board
    depth = out / "depth.png"
    written["html"] = write_atomic(out / "index.html",
                                   render_index(board, depth.read_bytes() if board.depth_curves and depth.is_file()
                                                else None))
    return written


# --------------------------------------------------------------------------- the item browser's data


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
        metrics = tuple(task_runs[have[0]][task].items.metrics) if info.multi_turn else (info.paper_metric,)
        records = {m: _safe(board, _records, {}, task_runs[m][task], wanted, metrics, m == have[0])
                   for m in have}  # the documents once, from the first model: the others give their answers
        out["tasks"].append({"name": task, "label": info.label, "metric": info.paper_metric,
                             "roles": [_code(r, roles, out["roles"]) for r in chosen]})
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


def _safe(board: Leaderboard, read, empty, *args):
    """``read(*args)``; a file that cannot be read is listed with the board's errors, and gives ``empty``."""
    from rolebench_eval.errors import InputError

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
    import numpy as np

    sc = task_run.items
    keep = np.flatnonzero(np.isin(sc.doc_ids, np.fromiter(wanted, np.int64, len(wanted))))
    positions = sorted(zip(sc.offsets[keep].tolist(), sc.lines[keep].tolist()))
    return {r.doc_id: r for r in read_records_at(task_run.samples_path, positions, metrics, with_docs)}


def _text(value):
    """Strings of a record, writable as UTF-8 (see ``model.clean``); anything else as is."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, list):
        return [_text(v) for v in value]
    return value


def _item(task: str, metric: str, role: int, first, answers, verdicts, judges, models) -> dict:
    doc = first.doc
    item = {"task": task, "role": role, "doc_id": first.doc_id, "question": clean(doc["question"].strip()),
            "references": _text(doc["references"]), "rolegpt": _text(doc.get("rolegpt")),
            "type": _text(doc.get("type")), "depth": doc.get("depth") if isinstance(doc.get("depth"), int) else None,
            "answers": []}
    for index, record in answers:
        if record is None or (record.doc_hash and first.doc_hash and record.doc_hash != first.doc_hash):
            continue  # not answered, or another document under the same doc_id (another data version)
        judged = []
        for j, (task_, judge) in enumerate(judges):
            verdict = verdicts.get((models[index], judge), {}).get(first.doc_id) if task_ == task else None
            if verdict is not None:
                judged.append({"judge": j, **verdict})
        text = clean(record.response)
        same = text == item["rolegpt"] and text != ""  # the RoleGPT replay: shown once, above
        score = record.metrics.get(metric if item["depth"] is None else f"{metric}_d{item['depth']}")
        item["answers"].append({"model": index, "text": "" if same else text, "same_as_rolegpt": same,
                                "score": score, "judges": judged})
    return item
