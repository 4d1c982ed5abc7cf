"""The "judge health" panels: ``health.json`` files (written by ``rolebench-eval judge check``) under the
``--judges`` folders, each shown beside the judge columns whose summaries come from the same judge model.

A panel is plain strings (the page escapes every one): identification per role with the roles at or
below chance, agreement with people, the measured flip rate and length bias.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rolebench_eval.errors import InputError
from rolebench_eval.outputs import codec
from rolebench_eval.outputs import health as schema

from .model import Column, clean


def find_health(folders: Iterable[str | Path]) -> tuple[list[tuple[Path, schema.JudgeHealth]], list[InputError]]:
    """Every judge health summary under ``folders`` (a file that does not fit its schema is an error)."""
    found, errors = [], []
    for folder in map(Path, folders):
        for path in sorted(folder.rglob(schema.HEALTH_FILE)) if folder.is_dir() else []:
            try:
                raw = codec.read_bytes(path, "judge health summary")
                if schema.is_health(raw):
                    found.append((path, schema.decode(raw, path)))
            except InputError as exc:
                errors.append(exc)
    return found, errors


def _num(value, ci=None) -> str:
    text = "–" if value is None else f"{value:.3f}"
    return text + (f" [{ci[0]:.3f}–{ci[1]:.3f}]" if ci else "")


def _lines(h: schema.JudgeHealth) -> list[str]:
    out = []
    ident, agree, biases = h.identification, h.agreement, h.biases
    if ident is not None:
        out.append(f"Identification on {ident.split} ({ident.answers} answers, {ident.k} names each, chance "
                   f"{ident.chance:.3f}): {_num(ident.accuracy, ident.ci95)}, {ident.n_parsed} of {ident.n_total} "
                   f"replies parsed")
        out += [f"{r.role}: {_num(r.accuracy, r.ci95)}, n = {r.n_parsed}" + (" — at or below chance"
                                                                               if r.at_or_below_chance else "")
                for r in ident.roles]
    if agree is not None:
        out.append(f"Agreement with people ({Path(agree.labels_file).name}, {agree.judge} judge): accuracy "
                   f"{_num(agree.accuracy, agree.accuracy_ci95)}, Cohen's kappa {_num(agree.kappa, agree.kappa_ci95)}"
                   f", {agree.n_parsed} of {agree.n_pairs} pairs parsed")
    if biases is not None:
        gaps = [m.win_rate - m.lc_win_rate for m in biases.summaries if None not in (m.win_rate, m.lc_win_rate)]
        out.append(f"Measured by {len(biases.summaries)} judge runs: position-flip rate "
                   f"{_num(biases.position_flip_rate)} over {biases.n_flip_items} items" +
                   (f"; win rate minus length-controlled win rate {min(gaps):+.3f} to {max(gaps):+.3f}" if gaps
                    else ""))
    return [clean(line) for line in out]


def panels(columns: list[Column], summaries: list, used: dict, found: list) -> list[dict]:
    """One panel per health summary: its lines, and the judge column groups (``Column.group``) of its model;
    ``path`` and ``summary`` (the :class:`~rolebench_eval.outputs.health.JudgeHealth`) go to the JSON and the Hub."""
    model_of = {path: s.judge_model for path, s in summaries}
    models: dict[tuple[str, str], set] = {}
    for (_, task, judge), path in used.items():
        models.setdefault((task, judge), set()).add(model_of.get(path))
    out = []
    for n, (path, h) in enumerate(found):
        groups = sorted({c.group for c in columns
                         if c.kind == "judge" and h.judge_model in models.get((c.task, c.judge), ())})
        where = f"{path}; beside " + ", ".join(groups) if groups else f"{path}; no judge column here comes from it"
        out.append({"id": f"judge-health-{n}", "judge_model": clean(h.judge_model), "groups": groups,
                    "where": clean(where), "lines": _lines(h), "complete": h.complete, "path": path, "summary": h})
    return out
