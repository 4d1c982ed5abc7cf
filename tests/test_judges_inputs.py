"""How the judge shapes its inputs: repeated items, prompting-study variants, dropped runs, nothing to judge.

The lm-eval output folders here are written by the tests (invented rows, in the shape the
fixture files of tests/fixtures/judges/ have); the scripted server ranks by marker words.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from rolebench_eval.errors import EXIT_NOTHING, NothingUsable
from rolebench_eval.judges.run import JudgeOptions, check_usable, judge_outputs

KEY = "sk-test-DISTINCTIVE-inputs-4b1d"
TASK = "rolebench_specific_en"
ROLE, DESCRIPTION = "Captain Brine", "A gruff invented sea captain. Catchphrase: \"Arr!\""


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def _doc(question: str, rolegpt: str | None, reference: str = "The tide turns at the red lighthouse") -> dict:
    return {"role": ROLE, "question": question, "references": [reference], "type": ["script_agnostic"],
            "lang": "en", "kind": "specific", "system_prompt": f"You are {ROLE}.", "description": DESCRIPTION,
            "rolegpt": rolegpt}


def write_run(folder: Path, model: str, task: str, docs: list[dict], answers: list[str],
              date: str = "2026-01-02T03-04-05.000006") -> Path:
    """An lm-eval output folder of ``model`` with one samples file of ``task``; returns the samples path."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"doc_id": n, "doc": doc, "target": str(doc["references"]), "arguments": {}, "resps": [[answer]],
             "filtered_resps": [answer], "filter": "none", "metrics": ["spe"], "spe": 0.0}
            for n, (doc, answer) in enumerate(zip(docs, answers))]
    path = folder / f"samples_{task}_{date}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (folder / f"results_{date}.json").write_text(json.dumps(
        {"results": {}, "model_name": model, "config": {"model": "hf", "model_args": {"pretrained": model}}}),
        encoding="utf-8")
    return path


def _opts(srv, root: Path, judge: str = "rank", **kw) -> JudgeOptions:
    return JudgeOptions(judge=judge, model="judge-m", base_url=srv.url, out=root / "out",
                        cache=root / "cache.sqlite", timeout=0.5, backoff_base=0.01, concurrency=2,
                        progress=False, **kw)


def _rows(root: Path, model: str, task: str, judge: str = "rank") -> list[dict]:
    path = root / "out" / model / task / judge / "annotations.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# ------------------------------------------------------------------ nothing to judge (exit 5)


def test_every_item_skipped_is_nothing_usable(llm_server, tmp_path):
    """No baseline answer for any item (a split without RoleGPT answers): files written, then exit 5."""
    docs = [_doc(f"q{n}: what now?", None) for n in range(3)]
    write_run(tmp_path / "runs" / "org__m", "org/m", TASK, docs, ["CAND a", "CAND b", "CAND c"])
    srv = llm_server({"default_reply": "never asked"}, expected_key=KEY)
    report = judge_outputs([str(tmp_path / "runs")], _opts(srv, tmp_path, "pairwise"))
    summary = report.summaries[0]
    assert (summary["n_total"], summary["n_judged"], summary["n_skipped_no_baseline"], summary["n_pending"],
            summary["win_rate"]) == (3, 0, 3, 0, None)
    with pytest.raises(NothingUsable) as err:
        check_usable(report)
    assert err.value.exit_code == EXIT_NOTHING == 5
    message = str(err.value)
    assert "nothing was judged: of 3 items, 3 have no baseline answer (rolegpt" in message
    assert srv.requests() == []


def test_skips_of_both_kinds_are_counted_in_the_message(llm_server, tmp_path):
    from rolebench_eval.data import NO_ROLEGPT_ANSWER

    docs = [_doc("q1: a?", None), _doc("q2: b?", "BASE b"), _doc("q3: c?", "BASE c")]
    write_run(tmp_path / "runs" / "org__m", "org/m", TASK, docs, ["CAND a", NO_ROLEGPT_ANSWER, NO_ROLEGPT_ANSWER])
    srv = llm_server({"default_reply": "never asked"}, expected_key=KEY)
    report = judge_outputs([str(tmp_path / "runs")], _opts(srv, tmp_path, "pairwise"))
    with pytest.raises(NothingUsable, match=r"of 3 items, 1 have no baseline answer .*; 2 have no candidate"):
        check_usable(report)


def test_a_budget_stop_before_any_answer_is_not_nothing_usable(llm_server, tmp_path):
    """Pending items are work left for a rerun (exit 3 from the batch), not an empty result."""
    from rolebench_eval.llm.budget import Caps

    docs = [_doc("q1: a?", "BASE a")]
    write_run(tmp_path / "runs" / "org__m", "org/m", TASK, docs, ["CAND a"])
    srv = llm_server({"default_reply": "never asked"}, expected_key=KEY)
    report = judge_outputs([str(tmp_path / "runs")], _opts(srv, tmp_path, "pairwise", caps=Caps(max_requests=0)))
    assert report.summaries[0]["n_pending"] == 1
    check_usable(report)  # no raise
    assert report.batch.exit_code == 3


# ------------------------------------------------------------------ two runs with one name


def test_a_run_dropped_for_a_newer_one_of_the_same_name_is_named(llm_server, tmp_path, caplog):
    docs = [_doc("q1: a?", "BASE a")]
    old = write_run(tmp_path / "runs" / "plain" / "org__m", "org/m", TASK, docs, ["CAND plain"],
                    date="2026-01-01T00-00-00.000001")
    new = write_run(tmp_path / "runs" / "chat" / "org__m", "org/m", TASK, docs, ["CAND chat"],
                    date="2026-01-05T00-00-00.000001")
    srv = llm_server({"default_reply": "[[A]]"}, expected_key=KEY)
    with caplog.at_level(logging.WARNING, logger="rolebench_eval"):
        report = judge_outputs([str(tmp_path / "runs" / "plain"), str(tmp_path / "runs" / "chat")],
                               _opts(srv, tmp_path, "pairwise"))
    assert [u.path for u in report.units] == [new]
    dropped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("not judging")]
    assert len(dropped) == 1
    assert str(old.parent / "results_2026-01-01T00-00-00.000001.json") in dropped[0] and str(new) in dropped[0]
    assert "org/m" in dropped[0] and TASK in dropped[0]
