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


# ------------------------------------------------------------------ a split that repeats a question (rank)


def _ranks(match: str, ranks: dict) -> dict:
    return {"id": match, "match": [match, "rank the models"], "rank": ranks}


def test_a_repeated_question_meets_the_same_repeat_of_the_other_run(llm_server, tmp_path):
    """Released rolegen_specific_en repeats 17 (role, question)s: each repeat is its own item of k systems."""
    q1, q2 = "qid-1: where is the tide?", "qid-2: what is a barnacle?"
    a_docs = [_doc(q1, "BASE tide"), _doc(q2, "BASE barnacle"), _doc(q1, "BASE tide")]
    write_run(tmp_path / "runs" / "org__alfa", "org/alfa", TASK, a_docs, ["ALFA first", "ALFA two", "ALFA again"])
    b_docs = [_doc(q1, "BASE tide"), _doc(q1, "BASE tide")]  # lacks qid-2
    write_run(tmp_path / "runs" / "org__brav", "org/brav", TASK, b_docs, ["BRAV first", "BRAV again"])
    script = {"rules": [_ranks("ALFA first", {"ALFA": 1, "BRAV": 2, "BASE": 3}),
                        _ranks("ALFA again", {"ALFA": 3, "BRAV": 1, "BASE": 2}),
                        _ranks("ALFA two", {"ALFA": 2, "BASE": 1})]}
    srv = llm_server(script, expected_key=KEY)
    report = judge_outputs([str(tmp_path / "runs")], _opts(srv, tmp_path))
    by = {s["model"]: s for s in report.summaries}
    alfa, brav = by["org/alfa"], by["org/brav"]
    assert sorted(e["rule"] for e in srv.requests()) == ["ALFA again", "ALFA first", "ALFA two"]
    # ALFA: rank 1 (win), 2 of 2 (loss), 3 (loss); BRAV: rank 2 (win), 1 (win)
    assert (alfa["n_parsed"], alfa["win_rate"], alfa["mean_rank"]) == (3, pytest.approx(1 / 3), pytest.approx(2.0))
    assert (brav["n_parsed"], brav["win_rate"], brav["mean_rank"]) == (2, 1.0, 1.5)
    systems = ["org/alfa", "org/brav", "rolegpt"]
    assert (alfa["systems"], alfa["n_systems"], alfa["n_systems_min"], alfa["n_systems_max"]) == (systems, 3, 2, 3)
    assert (brav["systems"], brav["n_systems"], brav["n_systems_min"], brav["n_systems_max"]) == (systems, 3, 3, 3)
    rows = _rows(tmp_path, "org__alfa", TASK)
    assert [(r["doc_id"], r["rank"], r["n_systems"]) for r in rows] == [(0, 1, 3), (1, 2, 2), (2, 3, 3)]
    for row in rows:  # every system shown once
        shown = [e["system"] for e in row["value"]["shown"]]
        assert len(shown) == len(set(shown)) == row["n_systems"]
    assert [r["rank"] for r in _rows(tmp_path, "org__brav", TASK)] == [2, 1]


def test_a_run_alone_is_ranked_with_the_baseline_only(llm_server, tmp_path):
    """L2: the summary's systems and k are those of its prompts, not of every input."""
    write_run(tmp_path / "runs" / "org__alfa", "org/alfa", TASK, [_doc("qid-1: a?", "BASE a")], ["ALFA a"])
    write_run(tmp_path / "runs" / "org__brav", "org/brav", TASK, [_doc("qid-2: b?", "BASE b")], ["BRAV b"])
    srv = llm_server({"rules": [_ranks("qid-", {"ALFA": 1, "BRAV": 1, "BASE": 2})]}, expected_key=KEY)
    report = judge_outputs([str(tmp_path / "runs")], _opts(srv, tmp_path))
    for summary in report.summaries:
        assert (summary["systems"], summary["n_systems"], summary["n_systems_min"]) == (
            [summary["model"], "rolegpt"], 2, 2)
        assert (summary["win_rate"], summary["mean_rank"]) == (1.0, 1.0)


# ------------------------------------------------------------------ Table 7: the prompting-study variants together


def _variants(root: Path) -> None:
    docs = [_doc("qid-1: where is the tide?", "BASE tide"), _doc("qid-2: what is a barnacle?", "BASE barnacle")]
    for task, marker in ((TASK, "ZERO"), (f"{TASK}_fewshot", "FEWS"), (f"{TASK}_dialogue", "DIAL")):
        write_run(root / "runs" / "org__m", "org/m", task, docs, [f"{marker} tide", f"{marker} barnacle"])


def test_the_three_layouts_of_one_model_are_ranked_in_one_prompt(llm_server, tmp_path):
    _variants(tmp_path)
    script = {"rules": [_ranks("qid-1:", {"BASE": 1, "FEWS": 2, "DIAL": 3, "ZERO": 4}),
                        _ranks("qid-2:", {"ZERO": 1, "FEWS": 1, "DIAL": 2, "BASE": 2})]}
    srv = llm_server(script, expected_key=KEY)
    report = judge_outputs([str(tmp_path / "runs")], _opts(srv, tmp_path, across_variants=True))
    assert sorted(e["rule"] for e in srv.requests()) == ["qid-1:", "qid-2:"]  # one prompt per item
    by = {s["task"]: s for s in report.summaries}
    systems = ["org/m [zero-shot]", "org/m [dialogue]", "org/m [fewshot]", "rolegpt"]
    # qid-2's dense [1, 1, 2, 2] is the competition ranking ZERO 1, FEWS 1, DIAL 3, BASE 3
    expected = {TASK: ("org/m [zero-shot]", 0.5, 2.5), f"{TASK}_fewshot": ("org/m [fewshot]", 0.5, 1.5),
                f"{TASK}_dialogue": ("org/m [dialogue]", 0.25, 3.0)}
    for task, (system, win_rate, mean_rank) in expected.items():
        summary = by[task]
        assert (summary["model"], summary["system"], summary["systems"], summary["n_systems"]) == (
            "org/m", system, systems, 4)
        assert (summary["win_rate"], summary["mean_rank"]) == (win_rate, mean_rank)
        assert (tmp_path / "out" / "org__m" / task / "rank" / "summary.json").is_file()
    # without the option each layout is its own candidate-vs-RoleGPT ranking (k = 2)
    alone = judge_outputs([str(tmp_path / "runs")], _opts(srv, tmp_path / "alone"))
    assert {s["n_systems"] for s in alone.summaries} == {2} and len(srv.requests()) == 2 + 6


def test_across_variants_needs_the_rank_protocol(llm_server, tmp_path):
    from rolebench_eval.errors import InputError

    _variants(tmp_path)
    srv = llm_server({"default_reply": "x"}, expected_key=KEY)
    with pytest.raises(InputError, match="--across-variants: .* needs --judge rank"):
        judge_outputs([str(tmp_path / "runs")], _opts(srv, tmp_path, "pairwise", across_variants=True))
    assert srv.requests() == []


def test_across_variants_without_a_variant_run_names_what_it_looked_for(llm_server, tmp_path):
    from rolebench_eval.errors import InputError

    write_run(tmp_path / "runs" / "org__m", "org/m", TASK, [_doc("qid-1: a?", "BASE a")], ["ZERO a"])
    srv = llm_server({"default_reply": "x"}, expected_key=KEY)
    with pytest.raises(InputError) as err:
        judge_outputs([str(tmp_path / "runs")], _opts(srv, tmp_path, across_variants=True, dry_run=True))
    assert str(err.value) == (
        f"--across-variants: ranks a split's zero-shot, _fewshot and _dialogue runs together, but no split has two "
        f"of them in {tmp_path / 'runs'}: found {TASK}; looked for {TASK}_dialogue, {TASK}_fewshot")
    assert err.value.exit_code == 2 and srv.requests() == []


# ------------------------------------------------------------------ runs that cover different items (rank)


def _uneven(root: Path) -> None:
    """alfa answered qid-1 and qid-2, brav only qid-1."""
    docs = [_doc("qid-1: where is the tide?", "BASE tide"), _doc("qid-2: what is a barnacle?", "BASE barnacle")]
    write_run(root / "runs" / "org__alfa", "org/alfa", TASK, docs, ["ALFA tide", "ALFA barnacle"])
    write_run(root / "runs" / "org__brav", "org/brav", TASK, docs[:1], ["BRAV tide"])


def test_runs_covering_different_items_warn_and_report_k(llm_server, tmp_path, caplog):
    _uneven(tmp_path)
    srv = llm_server({"rules": [_ranks("qid-1:", {"ALFA": 1, "BRAV": 2, "BASE": 3}),
                                _ranks("qid-2:", {"BASE": 1, "ALFA": 2})]}, expected_key=KEY)
    with caplog.at_level(logging.WARNING, logger="rolebench_eval"):
        report = judge_outputs([str(tmp_path / "runs")], _opts(srv, tmp_path))
    warned = [r.getMessage() for r in caplog.records if "cover different items" in r.getMessage()]
    assert warned == [f"{TASK}: the runs cover different items (org/alfa: 2, org/brav: 1 answered); 1 of 2 prompts "
                      "rank fewer than all 3 systems, so the mean ranks mix k (see n_systems_min/_max); pass "
                      "--common-items to rank only the items every run answered"]
    by = {s["model"]: s for s in report.summaries}
    assert (by["org/alfa"]["n_systems_min"], by["org/alfa"]["n_systems_max"], by["org/alfa"]["mean_rank"]) == (2, 3, 1.5)
    assert (by["org/brav"]["n_systems_min"], by["org/brav"]["n_systems_max"]) == (3, 3)
    from rolebench_eval.judges.cli import _table

    table = _table(report.summaries).splitlines()
    assert table[0].split()[:5] == ["model", "task", "judge", "k", "n"]
    assert table[2].split()[:5] == ["org/alfa", TASK, "rank", "2-3", "2"]
    assert table[3].split()[:5] == ["org/brav", TASK, "rank", "3", "1"]


def test_common_items_ranks_only_the_items_every_run_answered(llm_server, tmp_path, caplog):
    _uneven(tmp_path)
    srv = llm_server({"rules": [_ranks("qid-1:", {"ALFA": 1, "BRAV": 2, "BASE": 3}),
                                _ranks("qid-2:", {"BASE": 1, "ALFA": 2})]}, expected_key=KEY)
    with caplog.at_level(logging.WARNING, logger="rolebench_eval"):
        report = judge_outputs([str(tmp_path / "runs")], _opts(srv, tmp_path, common_items=True))
    assert not [r for r in caplog.records if "cover different items" in r.getMessage()]
    assert [e["rule"] for e in srv.requests()] == ["qid-1:"]
    alfa = next(s for s in report.summaries if s["model"] == "org/alfa")
    assert (alfa["n_total"], alfa["n_judged"], alfa["n_skipped_not_common"], alfa["n_systems_min"],
            alfa["n_systems_max"], alfa["win_rate"], alfa["mean_rank"]) == (2, 1, 1, 3, 3, 1.0, 1.0)
    assert [r["status"] for r in _rows(tmp_path, "org__alfa", TASK)] == ["judged", "skipped_not_common"]


def test_common_items_needs_the_rank_protocol(llm_server, tmp_path):
    from rolebench_eval.errors import InputError

    _uneven(tmp_path)
    srv = llm_server({"default_reply": "x"}, expected_key=KEY)
    with pytest.raises(InputError, match="^--common-items: .* needs --judge rank"):
        judge_outputs([str(tmp_path / "runs")], _opts(srv, tmp_path, "pairwise", common_items=True))


# ------------------------------------------------------------------ a candidate that is the baseline


def test_a_run_whose_answers_are_the_baselines_own_is_refused_unless_asked_for(llm_server, tmp_path):
    from rolebench_eval.errors import InputError

    docs = [_doc("qid-1: a?", "BASE a"), _doc("qid-2: b?", " BASE b\n"), _doc("qid-3: c?", None)]
    path = write_run(tmp_path / "runs" / "rolegpt", "rolegpt", TASK, docs, ["BASE a", "BASE b", "BASE c"])
    srv = llm_server({"rules": [_ranks("qid-", {"BASE": 1})], "default_reply": "[[C]]"}, expected_key=KEY)
    for judge in ("rank", "pairwise"):
        with pytest.raises(InputError) as err:
            judge_outputs([str(tmp_path / "runs")], _opts(srv, tmp_path, judge, dry_run=True))
        assert str(err.value) == (
            f"{path}: every answer of rolegpt (2 items of {TASK}) is the baseline's (rolegpt) own, so judging it "
            "compares identical answers; judge a model's run, or pass --allow-identical to measure the judge on "
            "identical answers")
    assert srv.requests() == []
    asked = judge_outputs([str(tmp_path / "runs")], _opts(srv, tmp_path, "pairwise", allow_identical=True))
    assert (asked.summaries[0]["n_judged"], asked.summaries[0]["win_rate"]) == (2, 0.5)
    # one answer of its own is a model's run: judged without the flag
    write_run(tmp_path / "other" / "m", "org/m", TASK, docs, ["BASE a", "MINE b", "x"])
    judge_outputs([str(tmp_path / "other")], _opts(srv, tmp_path / "o", "pairwise", dry_run=True))


@pytest.mark.parametrize("field, value", [("limit", 0), ("limit", -1), ("max_systems", 1), ("limit", 2.5)])
def test_the_judges_own_numbers_are_checked(field, value):
    from rolebench_eval.errors import InputError

    flag = "--" + field.replace("_", "-")
    with pytest.raises(InputError, match=f"^{flag}: expected a whole number >= "):
        JudgeOptions(judge="rank", **{field: value})
