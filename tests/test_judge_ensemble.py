"""Judge ensembles: several judge models in one run, their majority verdict and their agreement.

The scripted server answers per model name (a rule's ``model`` key), so two judge models give
different, known verdicts on the fixture run "fake/cand-7b" (8 English role-specific items,
qid-7 without a RoleGPT answer; candidate answers hold "CAND", baselines "BASE").
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rolebench_eval.errors import InputError
from rolebench_eval.judges import ensemble
from rolebench_eval.judges.config import load_judge
from rolebench_eval.judges.run import JudgeOptions, judge_outputs

HERE = Path(__file__).parent
OUT = HERE / "fixtures" / "judges" / "lmeval_out"
LEADERBOARD_RUNS = HERE / "fixtures" / "leaderboard" / "runs"
SAMPLES = next((OUT / "fake__cand-7b").glob("samples_rolebench_specific_en_*.jsonl"))
KEY = "sk-test-ensemble-3a9b"
MODELS = ("judge-a", "judge-b")
# Each member's pairwise outcome per item; "fail" answers with no verdict (a parse failure).
VERDICTS = {
    "judge-a": {1: "win", 2: "win", 3: "loss", 4: "tie", 5: "win", 6: "loss", 8: "win"},
    "judge-b": {1: "win", 2: "loss", 3: "loss", 4: "tie", 5: "fail", 6: "win", 8: "win"},
}
SCORE = {"win": 1.0, "tie": 0.5, "loss": 0.0}


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("ROLEBENCH_JUDGE_MODEL", raising=False)


def _rule(model: str, qid: int, outcome: str) -> dict:
    """Both presentation orders of one item, answered by one model as ``outcome``."""
    rule = {"id": f"{model}-q{qid}", "model": model, "match": [f"qid-{qid}:"]}
    if outcome in ("win", "loss"):  # the winner's answer is shown first: [[A]], else [[B]]
        first = ["CAND", "BASE"] if outcome == "win" else ["BASE", "CAND"]
        return rule | {"reply_if_before": first, "reply": "It keeps the voice. [[A]]",
                       "reply_else": "It keeps the voice. [[B]]"}
    return rule | {"reply": "Equally good. [[C]]" if outcome == "tie" else "I cannot decide."}


def _script() -> dict:
    return {"rules": [_rule(m, q, o) for m, verdicts in VERDICTS.items() for q, o in verdicts.items()]}


def _options(srv, tmp_path, **kw) -> JudgeOptions:
    settings = dict(judge="pairwise", model=list(MODELS), base_url=srv.url, out=tmp_path / "out",
                    cache=tmp_path / "cache.sqlite", timeout=2, backoff_base=0.01, concurrency=4, progress=False)
    return JudgeOptions(**(settings | kw))


def _alpha_nominal_by_hand() -> float:
    """Krippendorff's alpha, nominal, two coders, computed from the coincidences by hand.

    Items with two parsed verdicts: q1 (w, w), q2 (w, l), q3 (l, l), q4 (t, t), q6 (l, w), q8 (w, w);
    q5 has one (judge-b failed) and is not pairable. n = 12 values: w 6, l 4, t 2. Disagreeing
    ordered pairs (o_ck, c != k): q2 gives w-l and l-w, q6 the same: 4.
    alpha = 1 - (n - 1) * sum_{c != k} o_ck / sum_{c != k} n_c n_k = 1 - 11 * 4 / (12^2 - 6^2 - 4^2 - 2^2).
    """
    return 1 - 11 * 4 / (144 - 36 - 16 - 4)  # = 1 - 44 / 88 = 0.5


def test_two_judges_give_the_majority_verdict_their_headlines_and_agreement(llm_server, tmp_path):
    srv = llm_server(_script(), expected_key=KEY)
    dry = judge_outputs([str(SAMPLES)], _options(srv, tmp_path, dry_run=True))
    assert dry.estimate.n_requests == 2 * 7 * 2 and not srv.requests()  # both members, both orders, 7 items

    report = judge_outputs([str(SAMPLES)], _options(srv, tmp_path))
    assert srv.count("ok") == 28  # each model's requests sent once: the cache keys differ by model
    [summary] = report.summaries
    assert summary["judge"] == "pairwise[judge-a+judge-b]" and summary["judge_model"] == "judge-a+judge-b"
    assert report.folders[0].name == ensemble.folder_name("pairwise", MODELS)
    # the majority: q2 and q6 split win/loss (no majority: a tie, counted); q5 is judge-a's alone
    expected = {1: "win", 2: "tie", 3: "loss", 4: "tie", 5: "win", 6: "tie", 8: "win"}
    assert summary["win_rate"] == pytest.approx(sum(SCORE[o] for o in expected.values()) / 7)
    assert (summary["n_judged"], summary["n_parsed"], summary["n_parse_failures"]) == (7, 7, 0)
    assert (summary["n_ensemble_ties"], summary["n_ensemble_partial"], summary["n_skipped_no_baseline"]) == (2, 1, 1)
    assert summary["agreement"] == pytest.approx(_alpha_nominal_by_hand()) == pytest.approx(0.5)
    assert summary["agreement_n_items"] == 6 and "Krippendorff" in summary["agreement_method"]
    a, b = summary["members"]
    assert (a["judge_model"], a["n_parsed"], a["n_parse_failures"]) == ("judge-a", 7, 0)
    assert (b["judge_model"], b["n_parsed"], b["n_parse_failures"]) == ("judge-b", 6, 1)
    assert a["win_rate"] == pytest.approx(4.5 / 7) and b["win_rate"] == pytest.approx(3.5 / 6)
    assert summary["schema_version"] == 3

    lines = {r["doc_id"]: r for r in map(json.loads, (report.folders[0] / "annotations.jsonl").open())}
    by_qid = {int(r["question"].split(":")[0].split("-")[1]): r for r in lines.values()}
    assert {q: by_qid[q]["value"]["outcome"] for q in expected} == expected
    q5 = by_qid[5]["members"]
    assert [m["status"] for m in q5] == ["judged", "parse_error"] and q5[1]["value"] is None
    assert by_qid[7]["status"] == "skipped_no_baseline"
    from rolebench_eval.leaderboard.judges import read_verdicts  # the item browser's words for it
    verdicts = read_verdicts(report.folders[0] / "summary.json", {by_qid[2]["doc_id"]})
    assert verdicts[by_qid[2]["doc_id"]]["verdict"] == "tie (votes: loss 1, win 1)"

    before = len(srv.requests())
    again = judge_outputs([str(SAMPLES)], _options(srv, tmp_path))
    assert len(srv.requests()) == before  # a rerun sends nothing
    assert {k: v for k, v in again.summaries[0].items() if k != "created_at"} == \
        {k: v for k, v in summary.items() if k != "created_at"}


def test_one_member_of_the_ensemble_reuses_the_cache_of_a_single_judge_run(llm_server, tmp_path):
    """A member's requests are the single judge's: judged alone first, the ensemble sends only the other's."""
    srv = llm_server(_script(), expected_key=KEY)
    single = judge_outputs([str(SAMPLES)], _options(srv, tmp_path, model="judge-a"))
    assert srv.count("ok") == 14 and single.summaries[0]["judge"] == "pairwise"
    assert "members" not in single.summaries[0] or single.summaries[0]["members"] is None
    judge_outputs([str(SAMPLES)], _options(srv, tmp_path))
    assert srv.count("ok") == 28


def test_a_rank_ensemble_end_to_end_takes_the_mean_rank(llm_server, tmp_path):
    """judge-a ranks the candidate first everywhere; judge-b ranks it second on qid-1 and qid-2 and ties
    it with the baseline elsewhere."""
    rules = [{"id": f"b-q{q}", "model": "judge-b", "match": [f"qid-{q}:"], "rank": {"CAND": 2, "BASE": 1}}
             for q in (1, 2)]
    rules += [{"id": "a", "model": "judge-a", "match": ["rank the models"], "rank": {"CAND": 1, "BASE": 2}},
              {"id": "b", "model": "judge-b", "match": ["rank the models"], "rank": {"CAND": 1, "BASE": 1}}]
    srv = llm_server({"rules": rules}, expected_key=KEY)
    [summary] = judge_outputs([str(SAMPLES)], _options(srv, tmp_path, judge="rank")).summaries
    # qid-1, qid-2: mean ranks 1.5 and 1.5, a tie; the other 5: 1 against 1.5, a win
    assert summary["win_rate"] == pytest.approx(6 / 7) and summary["mean_rank"] == pytest.approx(8 / 7)
    assert [m["mean_rank"] for m in summary["members"]] == pytest.approx([1, 9 / 7])
    # ordinal alpha on the candidate's ranks; with two ranks it is the nominal one: n = 14 values
    # (rank 1: 12, rank 2: 2), 4 disagreeing ordered pairs (qid-1, qid-2): 1 - 13 * 4 / (2 * 12 * 2)
    assert summary["agreement"] == pytest.approx(1 - 13 * 4 / 48) and summary["agreement_n_items"] == 7
    assert summary["n_ensemble_ties"] == 0 and summary["judge"] == "rank[judge-a+judge-b]"


def test_one_budget_caps_every_member(llm_server, tmp_path):
    from rolebench_eval.llm.budget import Caps

    srv = llm_server(_script(), expected_key=KEY)
    report = judge_outputs([str(SAMPLES)], _options(srv, tmp_path, caps=Caps(max_requests=20), concurrency=1))
    assert srv.count("ok") == 20  # judge-a's 14, then 6 of judge-b's
    assert report.batch.stop_kind == "budget" and report.batch.exit_code == 3
    [summary] = report.summaries
    assert summary["n_pending"] == 4 and not summary["complete"]  # judge-b answered 3 items (both orders)
    assert [m["n_pending"] for m in summary["members"]] == [0, 4]


def test_the_ensemble_is_on_the_leaderboard_labelled_with_its_members(llm_server, tmp_path):
    """The leaderboard's fixture run model-a (Chinese general items; RoleGPT's answer is 蓝色。):
    judge-a prefers model-a, judge-b calls every item a tie."""
    from rolebench_eval.leaderboard import build_leaderboard
    from rolebench_eval.leaderboard.build import Options

    script = {"rules": [
        {"id": "a", "model": "judge-a", "match": ["[回答A开始]"], "reply_if_before": ["model-a sees", "蓝色。"],
         "reply": "回答A更好。[[A]]", "reply_else": "回答B更好。[[B]]"},
        {"id": "b", "model": "judge-b", "match": ["[回答A开始]"], "reply": "一样好。[[C]]"}]}
    srv = llm_server(script, expected_key=KEY)
    runs = tmp_path / "runs"
    shutil.copytree(LEADERBOARD_RUNS / "a", runs / "a")
    report = judge_outputs([str(runs)], _options(srv, tmp_path))
    board = build_leaderboard([runs], judges=[tmp_path / "out"], options=Options(n_boot=50))
    assert not board.errors and not board.unmatched_judges
    name, task = "pairwise[judge-a+judge-b]", "rolebench_general_zh"
    columns = [c for c in board.columns if c.judge == name and c.task == task]
    assert columns and all(name in c.group for c in columns)
    [summary] = [s for s in report.summaries if s["task"] == task]
    assert summary["n_ensemble_ties"] == summary["n_parsed"] > 0  # one win and one tie: no majority
    n = summary["n_parsed"]  # n items, each (win, tie): 2n values, n of each, every pair a disagreement
    assert summary["win_rate"] == 0.5 and summary["agreement"] == pytest.approx(1 - (2 * n - 1) * 2 * n / (2 * n * n))
    win = board.row("model-a").cells[f"judge:win_rate:{task}:{name}"]
    assert win.value == summary["win_rate"]
    assert f"ensemble of judge-a, judge-b (Krippendorff's alpha {summary['agreement']:.2f} on {n} items)" in win.note


def test_a_judge_folder_names_its_ensemble(llm_server, tmp_path):
    from rolebench_eval.judges.config import BUILTIN_DIR, JudgeConfigError

    folder = tmp_path / "duo"
    shutil.copytree(BUILTIN_DIR / "pairwise", folder)
    config = folder / "config.yaml"
    original = config.read_text(encoding="utf-8")
    config.write_text(original + "model: [judge-a, judge-b]\n", encoding="utf-8")
    srv = llm_server(_script(), expected_key=KEY)
    report = judge_outputs([str(SAMPLES)], _options(srv, tmp_path, judge=str(folder), model=None))
    assert report.summaries[0]["judge"] == "duo[judge-a+judge-b]" and srv.count("ok") == 28
    config.write_text(original + "model: [judge-a, '']\n", encoding="utf-8")
    with pytest.raises(JudgeConfigError) as err:
        load_judge(folder)
    assert (err.value.path, err.value.field) == (str(config), "model")


def test_a_model_named_twice_is_refused(llm_server, tmp_path):
    srv = llm_server(_script())
    with pytest.raises(InputError, match="named twice"):
        judge_outputs([str(SAMPLES)], _options(srv, tmp_path, model=["judge-a", "judge-a"]))


def test_a_batch_file_holds_one_judge_model(llm_server, tmp_path):
    srv = llm_server(_script())
    with pytest.raises(InputError, match="one judge model"):
        judge_outputs([str(SAMPLES)], _options(srv, tmp_path, batch_export=tmp_path / "requests.jsonl"))


def _lines(judge, member_values: list[list[dict | None]]) -> list[list[dict]]:
    """Each member's annotation lines of the same items (None: that member's reply failed)."""
    members = []
    for values in member_values:
        lines = []
        for doc_id, fields in enumerate(values):
            line = {"doc_id": doc_id, "judge_model": f"m{len(members)}", "candidate": "c", "baseline": "b"}
            line |= {"status": "parse_error", "parse_error": "no verdict"} if fields is None else \
                {"status": "judged", **fields}
            lines.append(line)
        members.append(lines)
    return members


def _ranked(cand: int, base: int) -> dict:
    outcome = "win" if cand < base else "tie" if cand == base else "loss"
    return {"value": {"outcome": outcome, "candidate": cand, "baseline": base}, "score": SCORE[outcome],
            "rank": cand, "n_systems": 3}


def test_rank_ensemble_takes_the_mean_rank():
    judge = load_judge("rank")
    members = _lines(judge, [[_ranked(1, 2), _ranked(3, 1), _ranked(2, 3)],
                             [_ranked(2, 1), _ranked(2, 1), None]])
    records, ties, partial = ensemble.combine_records(judge, members)
    assert [r["rank"] for r in records] == [1.5, 2.5, 2]
    assert [r["value"]["baseline"] for r in records] == [1.5, 1, 3]
    assert [r["value"]["outcome"] for r in records] == ["tie", "loss", "win"]
    assert (ties, partial) == (0, 1)
    assert ensemble.agreement(judge, records)[1] == 2  # two items ranked by both members


def _graded(style: int, knowledge: int, instruction: int, flag: bool) -> dict:
    scores = {"style": style, "knowledge": knowledge, "instruction": instruction}
    return {"value": {**scores, "character_break": flag}, "score": sum(scores.values()) / 3,
            "character_break": flag}


def test_rubric_ensemble_takes_the_mean_score_and_a_majority_flag():
    judge = load_judge("rubric")
    members = _lines(judge, [[_graded(5, 4, 3, True), _graded(1, 1, 1, False)],
                             [_graded(3, 4, 5, False), _graded(3, 3, 3, False)],
                             [_graded(4, 4, 4, True), None]])
    records, ties, partial = ensemble.combine_records(judge, members)
    assert records[0]["value"] == {"style": 4, "knowledge": 4, "instruction": 4, "character_break": True}
    assert records[0]["score"] == pytest.approx(4) and records[1]["score"] == pytest.approx(2)
    assert [r["character_break"] for r in records] == [True, False]  # 2 of 3; 0 of 2
    assert (ties, partial) == (0, 1)
    alpha, n_items = ensemble.agreement(judge, records)
    assert n_items == 2 and alpha is not None


def test_no_parsed_member_is_a_parse_failure_naming_each():
    judge = load_judge("pairwise")
    members = _lines(judge, [[None], [None]])
    [record], ties, partial = ensemble.combine_records(judge, members)
    assert record["status"] == "parse_error" and "m0: no verdict" in record["parse_error"]
    assert "m1: no verdict" in record["parse_error"] and (ties, partial) == (0, 0)


def test_doctests():
    import doctest

    assert doctest.testmod(ensemble).failed == 0


def _cli(srv, root: Path, *extra: str):
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "rolebench_eval.cli", "judge", str(SAMPLES), "--judge", "pairwise",
           "--model", "judge-a", "--model", "judge-b", "--base-url", srv.url, "--out", str(root / "out"),
           "--cache", str(root / "cache.sqlite"), "--no-progress", *extra]
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_BASE_URL", "ROLEBENCH_JUDGE_MODEL")}
    return subprocess.run(cmd, env=env | {"OPENAI_API_KEY": KEY}, capture_output=True, text=True)


@pytest.mark.slow
def test_the_cli_takes_model_twice_and_batch_sends_one_job_per_model(llm_server, tmp_path):
    srv = llm_server(_script() | {"batch": {}}, expected_key=KEY)
    done = _cli(srv, tmp_path / "sync")
    assert done.returncode == 0, done.stderr
    assert "pairwise[judge-a+judge-b]" in done.stdout and srv.count("ok") == 28
    assert ("judge-a 0.643 (0 unparsed), judge-b 0.583 (1 unparsed); Krippendorff's alpha 0.500 on 6 items; "
            "2 even splits, 1 items decided without a member whose reply failed") in done.stdout
    batch = _cli(srv, tmp_path / "batch", "--batch", "--batch-poll-interval", "0.02")
    assert batch.returncode == 0, batch.stderr
    assert srv.count("batch") == 28 and srv.count("ok") == 28  # no chat request: all through the jobs
    assert sum(1 for r in srv.requests() if r.get("api") == "POST /batches") == 2  # one job per model
    folder = Path("out", "fake__cand-7b", "rolebench_specific_en", ensemble.folder_name("pairwise", MODELS))
    sync, batched = (json.loads((tmp_path / run / folder / "summary.json").read_text(encoding="utf-8"))
                     for run in ("sync", "batch"))
    for s in (sync, batched):
        s.pop("created_at")
    assert batched == sync  # the same verdicts, whichever way the requests went
