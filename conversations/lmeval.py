"""``converse``'s conversations in lm-eval 0.4.13's layout, where the leaderboard reads runs.

Beside ``conversations.jsonl`` and ``summary.json``, a run folder gets ``results_<date>.json`` and
one ``samples_<task>_<date>.jsonl`` per task, under the catalogue's ``live_tasks`` names (one per
mode and language: replay and live never share a task, so never a column). One sample is one
conversation: its document (scenario id, character as ``role`` and its ``description``, scenario kind,
language, the user turns), ``resps`` the raw replies and ``filtered_resps`` the replies with their
reasoning cut, and per-sample metrics: the mean of each of family ``live``'s metrics over the conversation's turns that
have it (``break``: its break rate; ``spe``: only where a turn asked a RoleBench item), and each
main metric per turn as ``<metric>_d<turn>`` (the drift curve). A task's aggregate is the mean over
its conversations, as lm-eval's ``mean`` aggregation of those per-sample values.

``configs.<task>.metadata.data.sha256`` is the scenario file's: the leaderboard's comparability
check then holds runs on other scenarios apart, as it does runs on other data.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime
from pathlib import Path

from rolebench_eval.catalogue import LiveTask, depth_metric, live_task, split_depth_metric
from rolebench_eval.catalogue import metrics as catalogue_metrics
from rolebench_eval.outputs.board_spec import CHAT_MODELS
from rolebench_eval.outputs.conversation import Conversation, ConversationSummary
from rolebench_eval.outputs.runs import RESULTS, SAMPLES

LM_EVAL_MODEL = CHAT_MODELS[0]  # the run records lm-eval's model type for a served chat endpoint


def _hash(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def conversation_metrics(c: Conversation, task: LiveTask) -> dict[str, float]:
    """Per-sample metrics of one conversation: each metric's mean over its turns, the main ones per turn."""
    out = {}
    for name in task.metrics:
        mean = _mean([t.scores[name] for t in c.turns if name in t.scores])
        if mean is not None:
            out[name] = mean
    for n, turn in enumerate(c.turns, 1):
        for name in task.metrics:
            if catalogue_metrics()[name].main and name in turn.scores:
                out[depth_metric(name, n)] = turn.scores[name]
    return out


def sample(doc_id: int, c: Conversation, task: LiveTask) -> dict:
    """One samples line, shaped as lm-eval writes them."""
    doc = {"scenario_id": c.scenario_id, "scenario_hash": c.scenario_hash, "role": c.character,
           "description": c.description, "scenario_kind": c.kind, "lang": c.lang,
           "user_turns": [t.user for t in c.turns], "planned_turns": c.planned_turns, "complete": c.complete}
    arguments = {f"gen_args_{n}": {"arg_0": t.user} for n, t in enumerate(c.turns)}
    values = conversation_metrics(c, task)
    return {"doc_id": doc_id, "doc": doc, "target": "", "arguments": arguments,
            "resps": [[t.raw if isinstance(t.raw, str) else t.reply] for t in c.turns],
            "filtered_resps": [t.reply for t in c.turns], "filter": "none", "metrics": sorted(values),
            "doc_hash": _hash(doc), "prompt_hash": _hash(arguments), "target_hash": _hash(""), **values}


def _aggregate(samples: list[dict]) -> dict[str, float]:
    names = sorted({m for s in samples for m in s["metrics"]})
    return {m: _mean([s[m] for s in samples if m in s]) for m in names}


def results(samples: dict[str, list[dict]], summary: ConversationSummary, scenarios: str | os.PathLike,
            n_planned: dict[str, int], date: str, base_url: str | None) -> dict:
    """The results file of one run (lm-eval's keys; ``metadata`` as our tasks record theirs)."""
    from rolebench_eval import __version__
    from rolebench_eval.catalogue import live_tasks
    from rolebench_eval.prompts import PROMPT_VERSION

    tasks = live_tasks()
    out: dict = {"results": {}, "configs": {}, "versions": {}, "n-shot": {}, "higher_is_better": {},
                 "n-samples": {}}
    for name, rows in samples.items():
        means = _aggregate(rows)
        out["results"][name] = {"alias": name, **{k: v for m, value in means.items()
                                                 for k, v in ((f"{m},none", value), (f"{m}_stderr,none", "N/A"))}}
        out["configs"][name] = {"task": name, "output_type": "generate_until", "metadata": {
            "version": float(tasks[name].version), "mode": summary.mode, "prompt_version": PROMPT_VERSION,
            "data": {"origin": "scenarios", "file": Path(scenarios).name, "sha256": summary.scenarios["sha256"]},
            "settings": summary.settings, **({"simulator": summary.simulator} if isinstance(summary.simulator, str)
                                              else {})}}
        out["versions"][name] = float(tasks[name].version)
        out["n-shot"][name] = 0
        out["higher_is_better"][name] = {m: catalogue_metrics()[(split_depth_metric(m) or (m,))[0]].higher_is_better
                                         for m in means}
        out["n-samples"][name] = {"original": n_planned[name], "effective": len(rows)}
    model_args = f"model={summary.model}" + (f",base_url={base_url}" if base_url else "")
    out["config"] = {"model": LM_EVAL_MODEL, "model_args": model_args, "limit": None, "bootstrap_iters": 0,
                     "gen_kwargs": summary.settings.get("model")}
    return out | {"model_name": summary.model, "date": date, "rolebench_eval_version": __version__}


def layout(conversations: list[Conversation], summary: ConversationSummary, scenarios: str | os.PathLike,
           date: str, base_url: str | None = None) -> tuple[dict, dict[str, list[dict]]]:
    """(results file, task -> samples lines) of one run; conversations without a reply are left out."""
    samples: dict[str, list[dict]] = {}
    planned: dict[str, int] = {}
    for doc_id, c in enumerate(conversations):
        task = live_task(summary.mode, c.lang)
        planned[task.name] = planned.get(task.name, 0) + 1
        if c.turns:
            samples.setdefault(task.name, []).append(sample(doc_id, c, task))
    return results(samples, summary, scenarios, planned, date, base_url), samples


def lm_eval_date() -> str:
    """lm-eval's file-name date (``datetime.now().isoformat()`` with ``:`` as ``-``)."""
    return datetime.now().isoformat().replace(":", "-")


def write_layout(out: str | os.PathLike, conversations: list[Conversation], summary: ConversationSummary,
                 scenarios: str | os.PathLike, base_url: str | None = None) -> Path:
    """Write the samples files, then the results file (each whole, atomically); an earlier run's lm-eval files
    in ``out`` are removed after (a rerun's conversations hold every turn of the earlier one)."""
    from rolebench_eval.fileio import write_json_atomic, write_jsonl

    out, date = Path(out), lm_eval_date()
    results_file, samples = layout(conversations, summary, scenarios, date, base_url)
    for task, rows in samples.items():
        write_jsonl(out / f"samples_{task}_{date}.jsonl", rows)
    path = write_json_atomic(out / f"results_{date}.json", results_file)
    for old in out.iterdir():
        found = RESULTS.match(old.name) or SAMPLES.match(old.name)
        if found and found["date"] != date:
            old.unlink(missing_ok=True)
    return path
