"""Reasoning models are scored on their answers (tasks/reasoning.py, the filter every task runs).

The end-to-end tests run ``rolebench-eval run --model local-chat-completions`` against the
scripted OpenAI-compatible server, once answering with reasoning blocks (closed, unclosed,
markers quoted in the answer) and once with the bare answers, and compare item by item.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rolebench_eval.errors import InputError
from rolebench_eval.fileio import read_jsonl
from rolebench_eval.tasks import reasoning
from rolebench_eval.tasks.task import process_results

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "llm"))
from server_fixture import llm_server  # noqa: E402,F401  (the fixture)

BIN = Path(sys.executable).parent
T, E = "<think>", "</think>"


@pytest.mark.parametrize(("text", "expected", "unfinished"), [
    ("<think>Who am I? A captain.</think>\n\nThe sea wanted me.", "The sea wanted me.", False),
    ("The sea wanted me.", "The sea wanted me.", False),  # a model that does not reason
    ("  <think>The storm... let me think about the storm, the", "", True),  # never closes
    ("<think>r</think>", "", False),  # closed, and an empty answer on purpose
    ("the template opened it.</think>Aye.", "Aye.", False),  # DeepSeek-R1 style: no start marker in the output
    ("<think>a <think> b</think>It hummed </think> when I <think> spoke.", "It hummed </think> when I <think> spoke.",
     False),  # the first end marker closes; markers quoted in the answer stay
    ("I never <think> twice.", "I never <think> twice.", False),  # a start marker mid-answer is text
])
def test_answer_is_the_text_after_the_first_closed_block(text, expected, unfinished):
    got = reasoning.answer(text, T, E)
    assert got == expected and reasoning.is_unfinished(got) is unfinished


def test_a_reasoning_answer_scores_what_its_bare_answer_scores():
    doc = {"references": ["The navy wanted obedience. The sea wanted me."], "lang": "en", "kind": "specific"}
    bare = "The navy wanted obedience, and the sea wanted me."
    thought = f"{T}The navy, the sea, obedience, wanted, me: words that would lift recall.{E}\n\n{bare}"
    assert process_results(doc, [reasoning.answer(thought, T, E)]) == process_results(doc, [bare])
    assert process_results(doc, [bare])["unfinished_reasoning"] == 0.0 and process_results(doc, [bare])["spe"] > 0.5
    unfinished = process_results(doc, [reasoning.answer(f"{T}The navy wanted obedience. The sea", T, E)])
    assert unfinished == {**process_results(doc, [""]), "unfinished_reasoning": 1.0}
    assert (unfinished["spe"], unfinished["resp_tokens"]) == (0.0, 0)


def test_the_filter_warns_once_per_run(monkeypatch, caplog):
    monkeypatch.setattr(reasoning, "_warned", False)
    filt = reasoning.ReasoningFilter(start=T, end=E)
    with caplog.at_level(logging.WARNING, logger=reasoning.__name__):
        first = filt.apply([[f"{T}still"], ["plain"], [f"{T}x{E}y"]], [{}, {}, {}])
        filt.apply([[f"{T}again"]], [{}])
    assert first == [[""], ["plain"], ["y"]] and reasoning.is_unfinished(first[0][0])
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert warnings[0].startswith("1 of 3 answers end inside an unclosed reasoning block (no </think>)")
    assert "max_gen_toks" in warnings[0] and "think_end_token=</think>" in warnings[0]
    assert "enable_thinking=False" in warnings[0]


def test_markers_come_from_the_catalogue_or_the_run_metadata():
    assert reasoning.markers(None) == ("<think>", "</think>")
    assert reasoning.markers({"reasoning_markers": ["<r>", "</r>"]}) == ("<r>", "</r>")
    config = [{"name": "none", "filter": [{"function": "rolebench_reasoning", "start": T, "end": E},
                                          {"function": "take_first"}]}]
    assert reasoning.filter_list(config, {"reasoning_markers": ["<r>", "</r>"]}) == [
        {"name": "none", "filter": [{"function": "rolebench_reasoning", "start": "<r>", "end": "</r>"},
                                    {"function": "take_first"}]}]
    with pytest.raises(InputError) as err:
        reasoning.markers({"reasoning_markers": "</think>"})
    assert str(err.value).startswith("--metadata: field 'reasoning_markers': expected [start, end]")


def test_every_task_yaml_runs_the_filter_with_the_catalogue_markers():
    from rolebench_eval.catalogue import catalogue
    from rolebench_eval.tasks.configs import TEMPLATE

    assert "- {function: rolebench_reasoning, start: \"<think>\", end: \"</think>\"}" in TEMPLATE
    assert all("unfinished_reasoning" in task.metrics for task in catalogue().tasks.values())


# ------------------------------------------------------------------ end to end, through lm-eval

QUESTIONS = ("why did you leave the navy", "the great storm", "in the cellar")
BARE = ("The navy wanted obedience. The sea wanted me.", "",
        "A colony of glowing fungus. It hummed </think> when I <think> spoke to it.")
THOUGHT = (f"{T}\nMarlow, the navy, obedience, the sea: say it short.\n{E}\n\n{BARE[0]}",
           f"{T}\nThe storm. The night of the great storm: waves, the mast, the",  # never closes
           f"{T}Fungus. A {T} inside my reasoning.{E}{BARE[2]}")


def _script(replies) -> dict:
    return {"default_reply": "unused", "rules": [{"id": f"q{i}", "match": [q], "reply": r}
                                                 for i, (q, r) in enumerate(zip(QUESTIONS, replies))]}


def _run(srv, out: Path, data_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    return subprocess.run(
        [str(BIN / "rolebench-eval"), "run", "--model", "local-chat-completions", "--model_args",
         f"model=reasoner,base_url={srv.url}/chat/completions,max_retries=1", "--apply_chat_template",
         "--tasks", "rolebench_specific_en", "--output_path", str(out), "--log_samples", *extra],
        capture_output=True, text=True, env=env | {"ROLEBENCH_DATA_DIR": str(data_dir)})


def _outputs(out: Path) -> tuple[dict, list[dict]]:
    [results] = list(out.glob("*/results_*.json"))
    [samples] = list(out.glob("*/samples_rolebench_specific_en_*.jsonl"))
    return json.loads(results.read_text(encoding="utf-8")), [row for _, row in read_jsonl(samples, "samples")]


@pytest.mark.slow
def test_reasoning_answers_score_exactly_what_their_bare_answers_score(llm_server, fixture_data_dir, tmp_path):
    thinking, bare = llm_server(_script(THOUGHT)), llm_server(_script(BARE))
    runs = {name: _run(srv, tmp_path / name, fixture_data_dir) for name, srv in (("thought", thinking), ("bare", bare))}
    for done in runs.values():
        assert done.returncode == 0, done.stderr[-3000:]
    (res_t, rows_t), (res_b, rows_b) = _outputs(tmp_path / "thought"), _outputs(tmp_path / "bare")
    # the samples keep the raw text and the answer
    assert [row["resps"] for row in rows_t] == [[[t]] for t in THOUGHT]
    assert [row["filtered_resps"] for row in rows_t] == [[b] for b in BARE]
    assert [row["filter"] for row in rows_t] == ["none"] * 3
    # item by item, the same scores as the bare answers; only the unclosed block counts as unfinished
    metrics = ("spe", "rougeL_f", "resp_tokens")
    for row_t, row_b in zip(rows_t[:2], rows_b[:2]):
        assert [row_t[m] for m in metrics] == [row_b[m] for m in metrics]
    bare_scores = process_results(rows_t[2]["doc"], [BARE[2]])
    assert [rows_t[2][m] for m in metrics] == [bare_scores[m] for m in metrics] and bare_scores["spe"] == 1.0
    # served without a block, an answer that quotes the end marker reads as reasoning the template opened
    assert rows_b[2]["filtered_resps"] == ["when I <think> spoke to it."]
    assert [row["unfinished_reasoning"] for row in rows_t] == [0.0, 1.0, 0.0]
    assert [row["unfinished_reasoning"] for row in rows_b] == [0.0, 0.0, 0.0]
    scores_t, scores_b = res_t["results"]["rolebench_specific_en"], res_b["results"]["rolebench_specific_en"]
    assert scores_t["spe,none"] == pytest.approx((rows_b[0]["spe"] + 0.0 + 1.0) / 3)
    assert scores_t["unfinished_reasoning,none"] == pytest.approx(1 / 3) and scores_b["unfinished_reasoning,none"] == 0
    assert res_t["configs"]["rolebench_specific_en"]["metadata"]["version"] == 1.1
    # one warning, with the fix
    stderr = runs["thought"].stderr
    assert stderr.count("end inside an unclosed reasoning block") == 1, stderr[-3000:]
    assert "1 of 3 answers end inside an unclosed reasoning block" in stderr
    assert "unclosed reasoning block" not in runs["bare"].stderr


@pytest.mark.slow
def test_other_markers_through_metadata_and_the_judge_sees_the_answer(llm_server, fixture_data_dir, tmp_path):
    from rolebench_eval.judges.config import load_judge
    from rolebench_eval.judges.inputs import build_units

    other = [t.replace("<think>", "<reasoning>").replace("</think>", "</reasoning>") for t in THOUGHT[:2]]
    srv = llm_server(_script([*other, f"<reasoning>r</reasoning>{BARE[2]}"]))
    done = _run(srv, tmp_path / "out", fixture_data_dir,
                "--metadata", json.dumps({"reasoning_markers": ["<reasoning>", "</reasoning>"]}))
    assert done.returncode == 0, done.stderr[-3000:]
    results, rows = _outputs(tmp_path / "out")
    assert [row["filtered_resps"] for row in rows] == [[b] for b in BARE]
    assert results["configs"]["rolebench_specific_en"]["filter_list"][0]["filter"][0] == {
        "function": "rolebench_reasoning", "start": "<reasoning>", "end": "</reasoning>"}
    [unit] = build_units([tmp_path / "out"], load_judge("pairwise"), "rolegpt")
    judged = {item.doc_id: item for item in unit.items}  # the third item has no RoleGPT answer to judge against
    assert [judged[i].candidate for i in (0, 1)] == [BARE[0], ""]
    assert [judged[i].unfinished_reasoning for i in (0, 1)] == [False, True]


@pytest.mark.slow
def test_judges_and_the_item_browser_show_the_count(llm_server, fixture_data_dir, tmp_path):
    from rolebench_eval.leaderboard import build_leaderboard

    done = _run(llm_server(_script(THOUGHT)), tmp_path / "out", fixture_data_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    judge = llm_server({"default_reply": "no verdict here"})
    judged = subprocess.run(
        [str(BIN / "rolebench-eval"), "judge", str(tmp_path / "out"), "--judge", "pairwise", "--base-url", judge.url,
         "--model", "judge-m", "--out", str(tmp_path / "judgments"), "--cache", str(tmp_path / "cache.sqlite"),
         "--no-progress"], capture_output=True, text=True,
        env={**os.environ, "ROLEBENCH_DATA_DIR": str(fixture_data_dir)})
    assert "unfinished_reasoning: 1 of 3 items" in judged.stderr, judged.stderr[-3000:]
    [summary] = list((tmp_path / "judgments").glob("*/rolebench_specific_en/pairwise/summary.json"))
    assert json.loads(summary.read_text(encoding="utf-8"))["n_unfinished_reasoning"] == 1
    notes = [row for _, row in read_jsonl(summary.with_name("annotations.jsonl"), "annotations")]
    assert {n["doc_id"]: (n["candidate"], n["unfinished_reasoning"]) for n in notes} == {
        0: (BARE[0], False), 1: ("", True), 2: (BARE[2], False)}
    board = build_leaderboard([tmp_path / "out"], out=tmp_path / "board")
    [task] = board.items["tasks"]
    assert task["unfinished"] == [[0, 1, 3]]  # model 0: 1 of 3 items
    answers = {item["doc_id"]: item["answers"][0] for item in board.items["items"]}
    assert {d: (a["text"], a["unfinished"]) for d, a in answers.items()} == {
        0: (BARE[0], False), 1: ("", True), 2: (BARE[2], False)}
