"""The leaderboard from fixture runs: rankings, intervals against a direct computation, guard
rails, judges, reported rows, breakdowns and the written outputs.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rolebench_eval.leaderboard import build_leaderboard
from rolebench_eval.leaderboard.build import Options
from rolebench_eval.leaderboard.errors import LoadError
from rolebench_eval.leaderboard.stats import DEFAULT_SEED, stratified_means_loop

HERE = Path(__file__).resolve().parent
FIX = HERE / "fixtures" / "leaderboard"
RUNS, JUDGES = FIX / "runs", FIX / "judges"
XSS = "<img src=x onerror=alert(1)>"
MODEL_B = "org/base-7b+org/model-b"  # base model plus adapter: the run-naming rule of rolebench_eval.outputs
FOLDERS = {"org/model-a": "a", MODEL_B: "b", "org/model-c": "c", XSS: "xss"}
SCORE_TASKS = ["rolebench_specific_en", "rolebench_rolegen_specific_en", "rolebench_general_zh"]
PAPER_METRIC = {"rolebench_specific_en": "spe", "rolebench_rolegen_specific_en": "spe", "rolebench_general_zh": "cus"}
N_BOOT = 400


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    out = tmp_path_factory.mktemp("board")
    return build_leaderboard([RUNS], judges=[JUDGES], out=out,
                             options=Options(baseline=MODEL_B, n_boot=N_BOOT))


def samples(model: str, task: str) -> list[dict]:
    """The fixture's per-item records, read with plain json (the direct computation's input)."""
    path = next((RUNS / FOLDERS[model]).glob(f"samples_{task}_*.jsonl"))
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


def measured(board):
    return [r for r in board.rows if r.source == "measured"]


def test_ranking_is_by_score_with_ties_marked(board):
    rows = measured(board)
    assert [(r.rank, r.name) for r in rows] == [
        (1, "org/model-a"), (2, "org/model-c"), (3, MODEL_B), (4, "org/model-i"), (5, XSS)]
    assert board.score_tasks == SCORE_TASKS
    for row in rows:
        if row.name in FOLDERS:
            assert row.value("score") == pytest.approx(direct_score(row.name), abs=1e-12)
    b, c = board.row(MODEL_B), board.row("org/model-c")
    assert b.vs_above.other == "org/model-c" and b.vs_above.tie  # c's lead is noise
    gap = direct_score("org/model-c") - direct_score("org/model-a")
    assert not c.vs_above.tie and c.vs_above.diff == pytest.approx(gap)
    assert board.row("org/model-i").vs_above is None  # no per-item scores, no paired test
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
    versus = board.row("org/model-a").vs_baseline
    assert versus.other == MODEL_B and versus.diff == pytest.approx(0.2) and not versus.tie


def test_runs_without_samples_have_values_but_no_intervals(board):
    cell = board.row("org/model-i").cells["score"]
    assert cell.value == pytest.approx(direct_score("org/model-a") - 0.25) and cell.lo is None
    assert "no per-item scores" in board.row("org/model-i").cells["en_spe"].note


def test_incomparable_runs_are_excluded_with_reasons(board):
    reasons = {r.name: " ".join(r.reasons) for r in board.excluded}
    assert set(reasons) == {"org/model-d", "org/model-e", "org/model-f"}
    assert "--limit 4" in reasons["org/model-d"]
    assert "task version 0.9" in reasons["org/model-e"] and "1.0" in reasons["org/model-e"]
    assert "rolebench_general_zh: data ffffffffffff" in reasons["org/model-f"]
    assert not any(r.name in reasons for r in board.rows)


def test_include_incomparable_shows_them_unranked():
    board = build_leaderboard([RUNS], options=Options(include_incomparable=True, n_boot=50))
    shown = {r.name: r for r in measured(board)}
    assert {"org/model-d", "org/model-e", "org/model-f"} <= set(shown)
    assert all(shown[n].rank is None and not shown[n].comparable for n in ("org/model-d", "org/model-e"))
    assert [r.name for r in measured(board) if r.rank is not None][:2] == ["org/model-a", "org/model-c"]


def test_broken_inputs_are_reported_and_the_rest_is_built(board):
    messages = [str(e) for e in board.errors]
    assert any("corrupt_results/results_" in m and "invalid JSON" in m for m in messages)
    assert any("corrupt_samples/samples_rolebench_general_zh" in m and ".jsonl:6: " in m for m in messages)
    assert any("org__model-b" in m and "summary.json" in m for m in messages)  # a truncated judge summary
    assert "org/model-g" not in {r.name for r in board.rows} and "org/model-h" not in {r.name for r in board.rows}
    with pytest.raises(LoadError, match="corrupt_results"):
        build_leaderboard([RUNS], options=Options(strict=True, n_boot=50))


def test_unknown_baseline_is_an_error():
    with pytest.raises(ValueError, match="org/model-d.*not comparable"):
        build_leaderboard([RUNS], options=Options(baseline="org/model-d", n_boot=50))


def test_newest_run_of_a_model_wins(tmp_path):
    shutil.copytree(RUNS / "a", tmp_path / "old")
    shutil.copytree(RUNS / "b", tmp_path / "new")
    for path in (tmp_path / "new").iterdir():
        path.rename(path.with_name(path.name.replace("2026-01-01", "2026-02-01")))
    board = build_leaderboard([tmp_path], options=Options(names={MODEL_B: "org/model-a"}, n_boot=50))
    assert [r.name for r in measured(board)] == ["org/model-a"]
    assert board.row("org/model-a").value("score") == pytest.approx(direct_score(MODEL_B))
    assert any("rolebench_specific_en taken from" in n and "/new/" in n for n in board.notes)


def test_a_later_limit_run_does_not_hide_a_full_run(tmp_path):
    shutil.copytree(RUNS / "a", tmp_path / "full")
    shutil.copytree(RUNS / "limited", tmp_path / "smoke")
    for path in (tmp_path / "smoke").iterdir():
        path.rename(path.with_name(path.name.replace("2026-01-01", "2026-03-01")))
    names = {"org/model-d": "org/model-a"}
    board = build_leaderboard([tmp_path], options=Options(names=names, n_boot=50))
    row = board.row("org/model-a")
    assert row.comparable and row.value("score") == pytest.approx(direct_score("org/model-a"))
    assert not board.excluded


def test_judge_summaries_become_columns(board):
    key = "judge:win_rate:rolebench_specific_en:rank_gpt4"
    fails = "judge:parse_failures:rolebench_specific_en:rank_gpt4"
    a = board.row("org/model-a")
    assert (a.cells[key].value, a.cells[key].lo, a.cells[key].hi) == (0.62, 0.41, 0.80)
    assert a.cells[fails].value == 1 and "11 parsed of 12" in a.cells[key].note
    assert board.row(XSS).cells[key].value == 0.18
    assert MODEL_B not in [r.name for r in board.rows if key in r.cells]  # its summary is corrupt
    assert any("not-on-the-board" in n for n in board.notes)
    assert [c.key for c in board.columns if c.key.startswith("judge:")][:2] == [key, fails]


def test_reported_rows_come_from_the_paper_and_are_never_ranked(board):
    reported = {r.name: r for r in board.rows if r.source == "reported"}
    assert {"RoleGPT", "RoleLLaMA", "RoleGLM", "ChatGLM2", "LLaMA-script"} <= set(reported)
    gpt = reported["RoleGPT"]
    assert gpt.rank is None and "2310.00746" in gpt.citation
    assert gpt.value("en_spe") == 0.3229 and gpt.value("zh_raw") == 0.5748 and gpt.cells["en_spe"].lo is None
    assert gpt.value("score") == pytest.approx((0.3229 + 0.2985 + 0.5368) / 3)
    assert reported["RoleLLaMA"].value("paper_wr_en") == pytest.approx(0.5582)
    assert reported["LLaMA"].value("rolegen_avg") == 0.2238  # kept as published, although inconsistent
    assert board.rows.index(gpt) > max(board.rows.index(r) for r in measured(board))


def test_seen_unseen_gap(board):
    gap = board.row("org/model-a").cells["role_gap"]
    spe = lambda t: np.mean([r["spe"] for r in samples("org/model-a", t)])  # noqa: E731
    assert gap.value == pytest.approx(spe("rolebench_specific_en") - spe("rolebench_rolegen_specific_en"))
    boot = (direct_boot("org/model-a", "rolebench_specific_en")
            - direct_boot("org/model-a", "rolebench_rolegen_specific_en"))
    assert (gap.lo, gap.hi) == pytest.approx(tuple(np.percentile(boot, [2.5, 97.5])), abs=1e-6)
    assert board.row("RoleGPT").value("role_gap") == pytest.approx(0.3229 - 0.2985)


def test_breakdowns_by_role_type_and_language(board):
    roles = board.breakdowns["role"][MODEL_B]
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
    types = board.breakdowns["type"][MODEL_B]
    en_based = [r["spe"] for r in records if r["doc"]["type"] == ["script_based"]]
    rg_based = [r["spe"] for r in samples(MODEL_B, "rolebench_rolegen_specific_en")
                if r["doc"]["type"] == ["script_based"]]
    assert types["script_based"].value == pytest.approx((np.mean(en_based) + np.mean(rg_based)) / 2)
    language = board.breakdowns["language"][MODEL_B]
    zh = [r["cus"] for r in samples(MODEL_B, "rolebench_general_zh")]
    assert language["zh"].value == pytest.approx(np.mean(zh))
    assert language["en"].value == pytest.approx((np.mean(values) + np.mean(
        [r["spe"] for r in samples(MODEL_B, "rolebench_rolegen_specific_en")])) / 2)


def test_outputs_are_written_and_escaped(board):
    out = board.outputs
    assert {"markdown", "csv", "breakdowns_csv", "json", "html", "scores_png", "splits_png", "roles_png"} <= set(out)
    markdown = out["markdown"].read_text(encoding="utf-8")
    assert "&lt;img src=x onerror=alert(1)&gt;" in markdown and XSS not in markdown
    with out["csv"].open(encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    first = table[0]
    assert first["model"] == "org/model-a" and first["rank"] == "1"
    assert float(first["score"]) == pytest.approx(direct_score("org/model-a"))
    incomparable = {row["model"] for row in table if row["comparable"] == "False"}
    assert incomparable == {"org/model-d", "org/model-e", "org/model-f"}
    data = json.loads(out["json"].read_text(encoding="utf-8"))
    assert data["kind"] == "rolebench-leaderboard" and data["score_tasks"] == SCORE_TASKS
    assert data["rows"][2]["vs_above"]["tie"] is True
    for name in ("scores_png", "splits_png", "roles_png"):
        assert out[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out["html"].parent.glob(".*.tmp"))


def test_cli_verb_prints_where_the_page_is(tmp_path):
    code = ("import sys; from rolebench_eval.cli import main; sys.exit(main(sys.argv[1:]))")
    args = [sys.executable, "-c", code, "leaderboard", str(RUNS / "a"), str(RUNS / "b"),
            "--out", str(tmp_path / "site"), "--name", f"{RUNS / 'a'}=Model A",
            "--cache-dir", str(tmp_path / "cache"), "--n-boot", "50"]
    done = subprocess.run(args, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert str((tmp_path / "site" / "index.html").resolve()) in done.stdout
    assert "Model A" in (tmp_path / "site" / "leaderboard.md").read_text(encoding="utf-8")
    assert list((tmp_path / "cache").rglob("*.bin"))  # the samples cache was filled
    strict = subprocess.run([*args[:4], str(RUNS), "--out", str(tmp_path / "s2"), "--strict", "--no-cache"],
                            capture_output=True, text=True)
    assert strict.returncode == 2 and "corrupt_results" in strict.stderr


def test_a_judge_summary_matching_two_rows_is_left_out():
    from rolebench_eval.leaderboard.judges import attach_judges
    from rolebench_eval.leaderboard.model import Row
    from rolebench_eval.leaderboard.schema import load_schema

    rows = [Row("llama-chat", "measured", run_names={"meta/llama"}),
            Row("llama-plain", "measured", run_names={"meta/llama", "meta/llama-plain"})]
    summary = json.loads(next(JUDGES.glob("org__model-a/rolebench_specific_en/*/summary.json")).read_text())
    columns, notes = attach_judges(load_schema(), rows, [(Path("s.json"), {**summary, "model": "meta/llama"})])
    assert columns == [] and "matches llama-chat, llama-plain" in notes[0]
    columns, notes = attach_judges(load_schema(), rows, [(Path("s.json"), {**summary, "model": "meta/llama-plain"})])
    assert rows[1].cells[columns[0].key].value == 0.62 and not notes
