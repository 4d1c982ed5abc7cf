"""The leaderboard from fixture runs: rankings, intervals against a direct computation, guard
rails, reported rows, breakdowns, RAW, multi-turn continuity and the written outputs.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rolebench_eval import catalogue
from rolebench_eval.errors import InputError
from rolebench_eval.leaderboard import build_leaderboard
from rolebench_eval.outputs.models import REPLAY_LABEL
from rolebench_eval.leaderboard.bootstrap import DEFAULT_SEED, stratified_means_loop
from rolebench_eval.leaderboard.build import Options

HERE = Path(__file__).resolve().parent
FIX = HERE / "fixtures" / "leaderboard"
RUNS, JUDGES = FIX / "runs", FIX / "judges"
XSS = "<img src=x onerror=alert(1)>"
MODEL_B = "org/base-7b+org/model-b"  # base model plus adapter: the run-naming rule of rolebench_eval.outputs
SHORT = {"org/model-a": "model-a", MODEL_B: "base-7b+model-b", "org/model-c": "model-c", XSS: XSS,
         "org/model-i": "model-i"}
FOLDERS = {"org/model-a": "a", MODEL_B: "b", "org/model-c": "c", XSS: "xss"}
SCORE_TASKS = ["rolebench_specific_en", "rolebench_rolegen_specific_en", "rolebench_general_zh"]
PAPER_METRIC = {t: catalogue.get_task(t).metric for t in SCORE_TASKS}  # the paper metric of each task
MT = "rolebench_mt_specific_en"
N_BOOT = 400


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    out = tmp_path_factory.mktemp("board")
    return build_leaderboard([RUNS], judges=[JUDGES], out=out, options=Options(baseline=MODEL_B, n_boot=N_BOOT))


def samples(model: str, task: str, folder: str | None = None) -> list[dict]:
    """The fixture's per-item records, read with plain json (the direct computation's input)."""
    path = next((RUNS / (folder or FOLDERS[model])).glob(f"samples_{task}_*.jsonl"))
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return sorted(records, key=lambda r: r["doc_id"])


def direct_boot(model: str, task: str, minus: str | None = None) -> np.ndarray:
    """Loop bootstrap of a task mean (or of a paired difference), resampling within roles."""
    records, metric = samples(model, task), PAPER_METRIC[task]
    values = np.array([r[metric] for r in records])
    if minus is not None:
        values = values - np.array([r[metric] for r in samples(minus, task)])
    roles = [r["doc"]["role"] for r in records]
    groups = {role: np.array([i for i, r in enumerate(roles) if r == role]) for role in sorted(set(roles))}
    return stratified_means_loop(values, groups, N_BOOT, DEFAULT_SEED, task)


def direct_score(model: str) -> float:
    return float(np.mean([np.mean([r[PAPER_METRIC[t]] for r in samples(model, t)]) for t in SCORE_TASKS]))


def test_ranking_is_by_score_with_ties_marked(board):
    rows = board.measured
    assert [(r.rank, r.name) for r in rows] == [  # rank 2 is the paper's RoleGPT (one order: see below)
        (1, "model-a"), (3, "model-c"), (4, "base-7b+model-b"), (5, "model-i"), (6, XSS)]
    assert [r.full_name for r in rows] == ["org/model-a", "org/model-c", MODEL_B, "org/model-i", XSS]
    assert board.score_tasks == SCORE_TASKS
    for row in rows:
        if row.full_name in FOLDERS:
            assert row.value("score") == pytest.approx(direct_score(row.full_name), abs=1e-12)
    b, c = board.row(MODEL_B), board.row("model-c")
    assert b is board.row("base-7b+model-b")  # a row is found by its label or its run name
    assert b.vs_above.other == "model-c" and b.vs_above.tie  # c's lead is noise
    gap = direct_score("org/model-c") - direct_score("org/model-a")
    assert not c.vs_above.tie and c.vs_above.diff == pytest.approx(gap)
    assert board.row("model-i").vs_above is None  # no per-item scores, no paired test
    assert board.row(XSS).vs_above is None


def test_intervals_equal_a_direct_computation(board):
    for model in FOLDERS:
        row = board.row(model)
        boot = np.mean([direct_boot(model, t) for t in SCORE_TASKS], axis=0)
        lo, hi = np.percentile(boot, [2.5, 97.5])
        assert (row.cells["score"].lo, row.cells["score"].hi) == pytest.approx((lo, hi), abs=1e-6)
        spe = direct_boot(model, "rolebench_specific_en")
        cell = row.cells["en_spe"]
        assert cell.value == pytest.approx(np.mean([r["spe"] for r in samples(model, "rolebench_specific_en")]))
        assert (cell.lo, cell.hi) == pytest.approx(tuple(np.percentile(spe, [2.5, 97.5])), abs=1e-6)
        assert cell.n == 12


def test_paired_tests_equal_a_direct_computation(board):
    test = board.row(MODEL_B).vs_above
    boot = np.mean([direct_boot(MODEL_B, t, minus="org/model-c") for t in SCORE_TASKS], axis=0)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    assert (test.lo, test.hi) == pytest.approx((lo, hi), abs=1e-6)
    assert test.p == pytest.approx(min(1.0, 2 * min(np.mean(boot <= 0), np.mean(boot >= 0))), abs=0.01)
    assert test.n_items == 24 and test.tie == (lo <= 0 <= hi)
    versus = board.row("model-a").vs_baseline
    assert board.baseline == "base-7b+model-b"
    assert versus.other == "base-7b+model-b" and versus.diff == pytest.approx(0.2) and not versus.tie


def test_raw_is_shown_when_measured_with_its_coverage(board):
    records = samples("org/model-a", "rolebench_general_zh")
    raw = [r["raw"] for r in records if "raw" in r]
    cell = board.row("model-a").cells["raw"]
    assert len(raw) == 4 and cell.value == pytest.approx(np.mean(raw)) and cell.n == 4
    assert cell.note == "rolebench_general_zh: 4 of 6 items scored (4 of 6 items have a raw answer)"
    assert cell.lo < cell.value < cell.hi
    assert board.column_tasks["raw"] == ["rolebench_general_zh"]
    assert board.row("RoleGLM").value("raw") == 0.5255  # the paper's RAW on the same task, as published


def test_runs_without_samples_have_values_but_no_intervals(board):
    cell = board.row("model-i").cells["score"]
    assert cell.value == pytest.approx(direct_score("org/model-a") - 0.25) and cell.lo is None
    assert "no per-item scores" in board.row("model-i").cells["en_spe"].note


def test_incomparable_runs_are_excluded_with_reasons(board):
    reasons = {r.full_name: " ".join(r.reasons) for r in board.excluded}
    assert set(reasons) == {"org/model-d", "org/model-e", "org/model-f"}
    assert "--limit 4" in reasons["org/model-d"]
    assert "task version 0.9" in reasons["org/model-e"] and "the installed task is 1.1" in reasons["org/model-e"]
    assert "rolebench_general_zh: data ffffffffffff" in reasons["org/model-f"]
    assert not any(r.full_name in reasons for r in board.rows)


def test_include_incomparable_shows_them_unranked():
    board = build_leaderboard([RUNS], options=Options(include_incomparable=True, n_boot=50, browse_items=0))
    shown = {r.name: r for r in board.measured}
    assert {"model-d", "model-e", "model-f"} <= set(shown)
    assert all(shown[n].rank is None and not shown[n].comparable for n in ("model-d", "model-e"))
    assert [r.name for r in board.measured if r.rank is not None][:2] == ["model-a", "model-c"]


def test_broken_inputs_are_reported_and_the_rest_is_built(board):
    messages = [str(e) for e in board.errors]
    assert any("corrupt_results/results_" in m and "invalid JSON" in m for m in messages)
    assert any("corrupt_samples/samples_rolebench_general_zh" in m and ".jsonl:6: " in m for m in messages)
    assert any("org__model-b" in m and "summary.json" in m for m in messages)  # a truncated judge summary
    names = {r.full_name for r in board.rows}
    assert "org/model-g" not in names and "org/model-h" not in names
    with pytest.raises(InputError, match="corrupt_results"):
        build_leaderboard([RUNS], options=Options(strict=True, n_boot=50))


def test_samples_of_another_run_are_rejected(tmp_path):
    shutil.copytree(RUNS / "a", tmp_path / "a")
    shutil.copy(next((RUNS / "b").glob("samples_rolebench_specific_en_*.jsonl")), tmp_path / "a")
    board = build_leaderboard([tmp_path], options=Options(n_boot=50, browse_items=0))
    assert not board.measured
    assert [(e.field, e.path.endswith(".jsonl")) for e in board.errors] == [("spe", True)]
    assert "samples of another run?" in str(board.errors[0]) and "results_2026-01-01" in str(board.errors[0])


def test_an_incomparable_or_unknown_baseline_is_an_error():
    with pytest.raises(InputError, match="org/model-d.*not comparable"):
        build_leaderboard([RUNS], options=Options(baseline="org/model-d", n_boot=50))
    with pytest.raises(InputError, match="'nobody' is not a measured row; rows: model-a"):
        build_leaderboard([RUNS / "a"], options=Options(baseline="nobody", n_boot=50))


def test_newest_run_of_a_model_wins(tmp_path):
    shutil.copytree(RUNS / "a", tmp_path / "old")
    shutil.copytree(RUNS / "b", tmp_path / "new")
    for path in (tmp_path / "new").iterdir():
        path.rename(path.with_name(path.name.replace("2026-01-01", "2026-02-01")))
    board = build_leaderboard([tmp_path], options=Options(names={MODEL_B: "one model", "org/model-a": "one model"},
                                                          n_boot=50))
    assert [r.name for r in board.measured] == ["one model"]
    assert board.row("one model").value("score") == pytest.approx(direct_score(MODEL_B))
    assert any("rolebench_specific_en taken from" in n and "/new/" in n for n in board.notes)


def test_a_later_limit_run_does_not_hide_a_full_run(tmp_path):
    shutil.copytree(RUNS / "a", tmp_path / "full")
    shutil.copytree(RUNS / "limited", tmp_path / "smoke")
    for path in (tmp_path / "smoke").iterdir():
        path.rename(path.with_name(path.name.replace("2026-01-01", "2026-03-01")))
    board = build_leaderboard([tmp_path], options=Options(names=["org/model-d=A", "org/model-a=A"], n_boot=50))
    row = board.row("A")
    assert row.comparable and row.value("score") == pytest.approx(direct_score("org/model-a"))
    assert not board.excluded


def test_reported_rows_come_from_the_paper_ranked_among_the_measured_ones(board):
    reported = {r.name: r for r in board.rows if r.source == "reported"}
    assert {"RoleGPT", "RoleLLaMA", "RoleGLM", "ChatGLM2", "LLaMA-script"} <= set(reported)
    gpt = reported["RoleGPT"]
    assert "2310.00746" in gpt.citation
    # one order: by Score, the paper's row (Score of its published cells) between the measured ones
    assert [(r.rank, r.name, r.source) for r in board.rows[:4]] == [
        (1, "model-a", "measured"), (2, "RoleGPT", "reported"), (3, "model-c", "measured"),
        (4, "base-7b+model-b", "measured")]
    assert gpt.vs_above is None and board.row("model-c").vs_above.other == "model-a"  # tests: measured rows only
    no_score = [r for r in board.rows if r.source == "reported" and r.value("score") is None]
    assert no_score and board.rows[-len(no_score):] == no_score and all(r.rank is None for r in no_score)
    assert gpt.value("en_spe") == 0.3229 and gpt.value("zh_raw") == 0.5748 and gpt.cells["en_spe"].lo is None
    assert gpt.value("score") == pytest.approx((0.3229 + 0.2985 + 0.5368) / 3)
    assert reported["RoleLLaMA"].value("paper_wr_en") == pytest.approx(0.5582)
    assert reported["LLaMA"].value("rolegen_avg") == 0.2238  # kept as published, although inconsistent
    assert gpt.twin is None and not any(r.twin for r in board.rows)  # no measured row is a paper system


def test_a_system_both_measured_and_reported_carries_a_note_saying_why(tmp_path):
    board = build_leaderboard([RUNS], out=tmp_path, options=Options(
        n_boot=50, browse_items=0, names={"org/model-c": "RoleGPT (replay)", "org/model-a": "RoleLLaMA-7B"}))
    replay, paper = board.row("RoleGPT (replay)"), board.row("RoleGPT")
    assert (replay.twin, paper.twin) == ("RoleGPT", "RoleGPT (replay)")
    assert replay.twin_note == paper.twin_note == (
        f"RoleGPT (replay) and RoleGPT (paper) are the same system, measured here and as reported (Score "
        f"{replay.value('score'):.4f} measured, {paper.value('score'):.4f} reported): CUS here takes the best match "
        "over an item's references (the paper's rule is unpublished), and role-generalization SPE counts the 500 of "
        "2,534 items that have a RoleGPT answer in the dataset.")
    assert board.row("RoleLLaMA-7B").twin is None  # another name, another system
    assert replay.twin_note in board.notes
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert page.count("also as reported: RoleGPT ↓") == 1 and page.count("also measured: RoleGPT (replay) ↓") == 1
    assert '<ul id="same-system" class="twins"><li>RoleGPT (replay) and RoleGPT (paper) are the same system' in page


def test_seen_unseen_gap(board):
    gap = board.row("model-a").cells["role_gap"]
    spe = lambda t: np.mean([r["spe"] for r in samples("org/model-a", t)])  # noqa: E731
    assert gap.value == pytest.approx(spe("rolebench_specific_en") - spe("rolebench_rolegen_specific_en"))
    boot = (direct_boot("org/model-a", "rolebench_specific_en")
            - direct_boot("org/model-a", "rolebench_rolegen_specific_en"))
    assert (gap.lo, gap.hi) == pytest.approx(tuple(np.percentile(boot, [2.5, 97.5])), abs=1e-6)
    assert board.row("RoleGPT").value("role_gap") == pytest.approx(0.3229 - 0.2985)


def test_breakdowns_by_role_type_and_language(board):
    roles = board.breakdowns["role"]["base-7b+model-b"]
    assert set(roles) == {"Old Captain", "Lighthouse Keeper", '<b>Bold & "Quoted"</b>', "老船长", "小书童",
                          "Wandering Bard", "Clockmaker"}
    records = samples(MODEL_B, "rolebench_specific_en")
    captain = [r["spe"] for r in records if r["doc"]["role"] == "Old Captain"]
    assert roles["Old Captain"].value == pytest.approx(np.mean(captain)) and roles["Old Captain"].n == 4
    positions = {"Old Captain": np.array([i for i, r in enumerate(records) if r["doc"]["role"] == "Old Captain"])}
    values = np.array([r["spe"] for r in records])
    boot = stratified_means_loop(values, positions, N_BOOT, DEFAULT_SEED, "rolebench_specific_en")
    assert (roles["Old Captain"].lo, roles["Old Captain"].hi) == pytest.approx(
        tuple(np.percentile(boot, [2.5, 97.5])), abs=1e-6)
    types = board.breakdowns["type"]["base-7b+model-b"]
    en_based = [r["spe"] for r in records if r["doc"]["type"] == ["script_based"]]
    rg_based = [r["spe"] for r in samples(MODEL_B, "rolebench_rolegen_specific_en")
                if r["doc"]["type"] == ["script_based"]]
    assert types["script_based"].value == pytest.approx((np.mean(en_based) + np.mean(rg_based)) / 2)
    language = board.breakdowns["language"]["base-7b+model-b"]
    zh = [r["cus"] for r in samples(MODEL_B, "rolebench_general_zh")]
    assert language["zh"].value == pytest.approx(np.mean(zh))
    assert language["en"].value == pytest.approx((np.mean(values) + np.mean(
        [r["spe"] for r in samples(MODEL_B, "rolebench_rolegen_specific_en")])) / 2)


def _mt_by_item(model: str, folder: str) -> dict[int, dict[str, float]]:
    """depth -> item_id -> SPE, read with plain json."""
    out: dict[int, dict[str, float]] = {}
    for r in samples(model, MT, folder):
        out.setdefault(r["doc"]["depth"], {})[r["doc"]["item_id"]] = r[f"spe_d{r['doc']['depth']}"]
    return out


def test_multi_turn_continuity_is_the_paired_drop_with_its_interval(board):
    spe = _mt_by_item("org/model-a", "mt_a")
    items = sorted(spe[1])
    drops = np.array([spe[1][i] - spe[4][i] for i in items])
    cell = board.row("model-a").cells["continuity"]
    assert cell.value == pytest.approx(drops.mean()) and cell.n == 6
    roles = {r["doc"]["item_id"]: r["doc"]["role"] for r in samples("org/model-a", MT, "mt_a")}
    groups = {role: np.array([k for k, i in enumerate(items) if roles[i] == role]) for role in sorted(set(roles.values()))}
    boot = stratified_means_loop(drops, groups, N_BOOT, DEFAULT_SEED, MT)
    assert (cell.lo, cell.hi) == pytest.approx(tuple(np.percentile(boot, [2.5, 97.5])), abs=1e-6)
    assert cell.lo < cell.value < cell.hi
    c = board.row("model-c")
    assert c.value("continuity") > board.row("model-a").value("continuity")  # model-c forgets faster
    assert c.value("mt_break") == pytest.approx(2 / 6) and board.row("model-a").value("mt_break") == 0.0
    assert board.row("base-7b+model-b").value("continuity") is None  # it has no multi-turn run
    curve = board.depth_curves["model-a"][MT]
    assert [d for d, _ in curve] == [1, 2, 4]
    assert [c.value for _, c in curve] == pytest.approx([np.mean(list(spe[d].values())) for d in (1, 2, 4)])
    assert board.column_tasks["continuity"] == [MT] and MT not in board.score_tasks


def test_outputs_are_written_and_escaped(board):
    out = board.outputs
    assert {"markdown", "csv", "breakdowns_csv", "json", "html", "items_html", "items_data", "scores_png",
            "splits_png", "roles_png", "depth_png"} <= set(out)
    markdown = out["markdown"].read_text(encoding="utf-8")
    assert "&lt;img src=x onerror=alert(1)&gt;" in markdown and XSS not in markdown
    with out["csv"].open(encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    first = table[0]
    assert first["model"] == "model-a" and first["full_name"] == "org/model-a" and first["rank"] == "1"
    assert float(first["score"]) == pytest.approx(direct_score("org/model-a"))
    incomparable = {row["full_name"] for row in table if row["comparable"] == "False"}
    assert incomparable == {"org/model-d", "org/model-e", "org/model-f"}
    data = json.loads(out["json"].read_text(encoding="utf-8"))
    assert data["kind"] == "rolebench-leaderboard" and data["score_tasks"] == SCORE_TASKS
    rows = {r["name"]: r for r in data["rows"]}
    assert rows["base-7b+model-b"]["vs_above"]["tie"] is True and rows["RoleGPT"]["rank"] == 2
    assert data["depth_curves"]["model-a"][MT][0]["depth"] == 1
    for name in ("scores_png", "splits_png", "roles_png", "depth_png"):
        assert out[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out["html"].parent.glob(".*.tmp"))
    page = out["html"].read_text(encoding="utf-8")
    n = board.row("model-a").cells["score"].n
    assert n == sum(len(samples("org/model-a", t)) for t in SCORE_TASKS)  # each row shows its n
    assert (f'<span class="model">model-a</span><span class="about" title="date: 2026-01-03">2026-01-03</span>'
            f'<span class="n" title="items scored on the Score\'s tasks">n = {n:,}</span>') in page


def test_the_item_browser_keeps_per_role_items_with_every_models_answer():
    board = build_leaderboard([RUNS / "a", RUNS / "c", RUNS / "b", RUNS / "mt_a"], judges=[JUDGES],
                              options=Options(n_boot=50, browse_items=1, browse_models=2))
    items = board.items
    assert [m["name"] for m in items["models"]] == ["model-a", "model-c"] and items["n_models"] == 3
    roles = {(i["task"], items["roles"][i["role"]]) for i in items["items"]}
    assert len(items["items"]) == len(roles) == 9  # one item per role of each task (7 single-turn, 2 multi-turn)
    judged = next(i for i in items["items"] if items["roles"][i["role"]] == "Old Captain")
    assert judged["doc_id"] == 0 and judged["question"] == "Question 0: what do you see at sea?"
    a = next(x for x in judged["answers"] if items["models"][x["model"]]["name"] == "model-a")
    assert a["text"] == "model-a sees the waves (0)." and a["score"] == 0.5
    assert {items["judges"][v["judge"]]["judge"] for v in a["judges"]} == {"pairwise", "rank", "rubric"}
    mt = build_leaderboard([RUNS / "mt_a"], options=Options(n_boot=50)).items["items"]
    assert {i["depth"] for i in mt} == {1, 2, 4} and len(mt) == 18
    deep = next(i for i in mt if i["depth"] == 4 and i["doc_id"] == 12)
    assert deep["answers"][0]["score"] == next(r["spe_d4"] for r in samples("org/model-a", MT, "mt_a")
                                               if r["doc_id"] == 12)
    off = build_leaderboard([RUNS / "a"], out=None, options=Options(n_boot=50, browse_items=0))
    assert off.items is None


def test_a_probe_task_gives_the_break_rate_at_the_deepest_depth(tmp_path):
    probe = "rolebench_mt_probe_en"
    (tmp_path / "probe").mkdir()
    shutil.copytree(RUNS / "c", tmp_path / "c")
    src = next((RUNS / "mt_c").glob("samples_*.jsonl"))
    rows = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines()]
    for row in rows:
        for key in [k for k in row if k.startswith(("spe_", "rougeL_f_", "resp_tokens_"))]:
            del row[key]
        row["metrics"] = [k for k in row["metrics"] if k.startswith("break_")]
    (tmp_path / "probe" / src.name.replace(MT, probe)).write_text("".join(json.dumps(r) + "\n" for r in rows))
    results = json.loads(next((RUNS / "mt_c").glob("results_*.json")).read_text(encoding="utf-8"))
    for block in ("results", "configs", "versions", "n-samples"):
        results[block] = {probe: results[block][MT]}
    results["results"][probe] = {k: v for k, v in results["results"][probe].items() if k.startswith("break_")}
    (tmp_path / "probe" / next((RUNS / "mt_c").glob("results_*.json")).name).write_text(json.dumps(results))
    board = build_leaderboard([tmp_path], options=Options(n_boot=N_BOOT, browse_items=0))
    cell = board.row("model-c").cells["mt_break"]
    breaks = [r["break_d4"] for r in rows if "break_d4" in r]
    assert cell.value == pytest.approx(np.mean(breaks)) == pytest.approx(2 / 6) and cell.n == 6
    assert cell.lo <= cell.value <= cell.hi and "probe" in cell.note
    assert board.row("model-c").value("continuity") is None and board.column_tasks["mt_break"] == [probe]


@pytest.mark.integration
def test_real_multi_turn_runs_of_lm_eval_give_continuity(tmp_path, mt_data_dir):
    """The multi-turn tasks as lm-eval runs them (the RoleGPT replay answers the same at every depth)."""
    from rolebench_eval.tasks.runner import evaluate

    evaluate(model="rolegpt", tasks=["rolebench_mt_specific_zh", "rolebench_specific_zh"], data_dir=mt_data_dir,
             metadata={"depths": [1, 3]}, output_path=tmp_path / "out", log_samples=True)
    board = build_leaderboard([tmp_path / "out"], out=tmp_path / "site", options=Options(n_boot=100))
    row = board.row(REPLAY_LABEL)  # how a run of the replay is labelled
    assert row.comparable and row.rank == 1 and board.score_tasks == ["rolebench_specific_zh"]
    drop = row.cells["continuity"]
    assert (drop.value, drop.lo, drop.hi) == (0.0, 0.0, 0.0) and drop.n > 0  # same answer, same score, every depth
    curve = board.depth_curves[REPLAY_LABEL]["rolebench_mt_specific_zh"]
    assert [d for d, _ in curve] == [1, 3] and curve[0][1].value == curve[1][1].value
    assert (curve[0][1].value, curve[0][1].n) == (row.value("zh_spe"), row.cells["zh_spe"].n)  # depth 1 = single-turn
    depths = {i["depth"] for i in board.items["items"] if i["task"] == "rolebench_mt_specific_zh"}
    assert depths == {1, 3} and (tmp_path / "site" / "depth.png").is_file()
