"""Judge outputs into the leaderboard: the judge columns' exact values, both summary versions.

``test_the_judges_own_output_goes_on_the_board`` runs ``rolebench-eval judge``'s library API
(pairwise; rank with two candidates ranked together with RoleGPT; rubric) against the scripted
local server and puts what it wrote on the board, checking the judge columns' exact values.
``test_judge_outputs_of_schema_2_give_exact_columns`` reads the committed fixture judge outputs
(``tests/fixtures/leaderboard/make_fixtures.py``, the same schema) that the page tests use.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rolebench_eval.leaderboard import build_leaderboard
from rolebench_eval.leaderboard.build import Options
from rolebench_eval.leaderboard.judges import find_summaries

FIX = Path(__file__).resolve().parent / "fixtures" / "leaderboard"
RUNS, JUDGES = FIX / "runs", FIX / "judges"
EN = "rolebench_specific_en"
KEY = "sk-test-leaderboard-judges-0c1d"


def _summary(model_folder: str, judge: str, task: str = EN) -> dict:
    return json.loads((JUDGES / model_folder / task / judge / "summary.json").read_text(encoding="utf-8"))


def _annotations(model_folder: str, judge: str, task: str = EN) -> list[dict]:
    path = JUDGES / model_folder / task / judge / "annotations.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def board():
    return build_leaderboard([RUNS / "a", RUNS / "c", RUNS / "xss"], judges=[JUDGES], options=Options(n_boot=100))


def _cells(board, name: str, task: str, judge: str) -> dict:
    prefix = "judge:"
    return {key.split(":")[1]: cell for key, cell in board.row(name).cells.items()
            if key.startswith(prefix) and key.endswith(f":{task}:{judge}")}


def test_judge_outputs_of_schema_2_give_exact_columns(board):
    a_pair, a_rank, a_rubric = (_summary("org__model-a", j) for j in ("pairwise", "rank", "rubric"))
    got = _cells(board, "model-a", EN, "pairwise")
    assert set(got) == {"win_rate", "lc_win_rate", "parse_failures"}  # the pairwise protocol's columns
    assert (got["win_rate"].value, got["win_rate"].lo, got["win_rate"].hi) == (a_pair["win_rate"], 0.55, 0.95)
    assert (got["lc_win_rate"].value, got["lc_win_rate"].lo, got["lc_win_rate"].hi) == (0.731, 0.52, 0.9)
    assert got["parse_failures"].value == 1 and got["win_rate"].n == 11
    scores = [r["score"] for r in _annotations("org__model-a", "pairwise") if r["status"] == "judged"]
    assert a_pair["win_rate"] == pytest.approx(sum(scores) / len(scores), abs=1e-6) == pytest.approx(9.5 / 11)

    got = _cells(board, "model-a", EN, "rank")
    assert set(got) == {"win_rate", "lc_win_rate", "mean_rank", "parse_failures"}
    assert got["mean_rank"].value == a_rank["mean_rank"] == pytest.approx(15 / 11, abs=1e-6)
    assert (got["win_rate"].value, got["lc_win_rate"].value, got["parse_failures"].value) == (
        a_rank["win_rate"], 0.702, 1)
    c_rank = _cells(board, "model-c", EN, "rank")  # the second candidate of the same joint ranking
    assert (c_rank["mean_rank"].value, c_rank["win_rate"].value, c_rank["lc_win_rate"].lo) == (
        pytest.approx(25 / 12, abs=1e-6), pytest.approx(2 / 12, abs=1e-6), 0.02)
    assert "ranked together with org/model-a, org/model-c, rolegpt" in got["mean_rank"].note
    rank_col = next(c for c in board.columns if c.key == f"judge:mean_rank:{EN}:rank")
    assert rank_col.display_name == "Rank /3" and "among the 3 systems" in rank_col.description

    got = _cells(board, "model-a", EN, "rubric")
    assert set(got) == {"rubric_mean", "character_break_rate", "parse_failures"}
    assert (got["rubric_mean"].value, got["rubric_mean"].lo, got["rubric_mean"].hi) == (
        a_rubric["rubric_means"]["overall"], 4.1, 4.7)
    assert got["character_break_rate"].value == a_rubric["character_break_rate"] == pytest.approx(1 / 11, abs=1e-6)
    assert got["rubric_mean"].note == "style 4.45; knowledge 4.18" and got["parse_failures"].value == 1

    xss = _cells(board, "<img src=x onerror=alert(1)>", EN, "pairwise")
    assert xss["win_rate"].value == pytest.approx(1.5 / 12, abs=1e-6) and xss["lc_win_rate"].value is None


def test_version_1_summaries_are_read_and_others_refused(board, tmp_path):
    old = _cells(board, "model-a", "rolebench_general_zh", "rank_gpt4")
    assert (old["win_rate"].value, old["mean_rank"].value, old["lc_win_rate"].value) == (0.5, 1.5, None)
    assert "schema-version-1" in old["lc_win_rate"].note
    assert [c.display_name for c in board.columns if c.key.endswith(":rolebench_general_zh:rank_gpt4")][2] == "Rank"
    assert any("not-on-the-board" in line for line in board.unmatched_judges)
    for change, field in (({"schema_version": 4}, "schema_version"), ({"protocol": ""}, "protocol"),
                          ({"lc_win_rate": 1.5}, "lc_win_rate"), ({"rubric_means": [4]}, "rubric_means"),
                          ({"rubric_ci95": "x"}, "rubric_ci95"), ({"rubric_ci95": {"overall": [1]}}, "rubric_ci95"),
                          ({"n_systems": "3"}, "n_systems")):
        folder = tmp_path / f"{field}-{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        (folder / "summary.json").write_text(json.dumps({**_summary("org__model-a", "pairwise"), **change}))
        found, errors = find_summaries([folder])
        assert not found and errors[0].field == field and str(folder) in errors[0].path


def test_a_bad_judge_summary_is_an_error_on_the_board_not_the_end_of_the_build(tmp_path):
    folder = tmp_path / "judges" / "org__model-a" / EN / "pairwise"
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps({**_summary("org__model-a", "pairwise"), "rubric_ci95": "x"}))
    board = build_leaderboard([RUNS / "a"], judges=[tmp_path / "judges"], out=tmp_path / "site",
                              options=Options(n_boot=20, browse_items=0))
    assert [(e.field, Path(e.path).name) for e in board.errors] == [("rubric_ci95", "summary.json")]
    assert (tmp_path / "site" / "index.html").is_file() and board.row("model-a").rank == 1


def test_a_judge_name_with_markup_and_pipes_stays_text_in_the_markdown(tmp_path):
    judge = "x|y<b>bold</b>"
    folder = tmp_path / "judges" / "org__model-a" / EN / judge
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps({**_summary("org__model-a", "pairwise"), "judge": judge}))
    build_leaderboard([RUNS / "a"], judges=[tmp_path / "judges"], out=tmp_path / "site",
                      options=Options(n_boot=20, browse_items=0))
    text = (tmp_path / "site" / "leaderboard.md").read_text(encoding="utf-8")
    assert "<b>" not in text and "x\\|y&lt;b&gt;bold&lt;/b&gt;" in text
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Rank"))
    table = lines[start:lines.index("", start)]
    assert "x\\|y" in table[0] and len(table) > 3
    assert len({len(line.replace("\\|", "").split("|")) for line in table}) == 1  # as many columns in every line


def test_the_judges_own_output_goes_on_the_board(llm_server, tmp_path, monkeypatch):
    """``rolebench-eval judge`` (pairwise; rank with model-a and model-c ranked together with RoleGPT;
    rubric) against the scripted server, then the board: its judge columns are the summaries' numbers,
    and those are what the script makes them (RoleGPT's answer is the marker 蓝色。)."""
    from rolebench_eval.judges.run import JudgeOptions, judge_outputs

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    runs = tmp_path / "runs"
    for folder in ("a", "c"):
        shutil.copytree(RUNS / folder, runs / folder)
    script = {"rules": [
        {"id": "pair", "match": ["[回答A开始]"], "reply_if_before": ["model-a sees", "蓝色。"],
         "reply": "回答A更好。[[A]]", "reply_else": "回答B更好。[[B]]"},
        {"id": "rank", "match": ["各个模型对这个问题的回答分别是"],
         "rank": {"model-a sees": 1, "蓝色。": 2, "model-c sees": 3}},
        {"id": "grade-1", "match": ["第1个问题"], "reply": '{"style": 2, "knowledge": 3, "instruction": 4, '
                                                        '"character_break": true, "reason": "r"}'}],
        "default_reply": '{"style": 4, "knowledge": 3, "instruction": 5, "character_break": false, "reason": "r"}'}
    srv = llm_server(script, expected_key=KEY)
    for judge in ("pairwise", "rank", "rubric"):
        judge_outputs([str(runs / "a"), str(runs / "c")], JudgeOptions(
            judge=judge, model="judge-m", base_url=srv.url, out=tmp_path / "judged", cache=tmp_path / "cache.sqlite",
            timeout=2, backoff_base=0.01, concurrency=4, progress=False))
    board = build_leaderboard([runs], judges=[tmp_path / "judged"], options=Options(n_boot=50))
    assert not board.unmatched_judges and not board.errors
    zh = "rolebench_general_zh"

    def summary(model: str, judge: str) -> dict:
        path = tmp_path / "judged" / f"org__{model}" / zh / judge / "summary.json"
        return json.loads(path.read_text(encoding="utf-8"))

    for model in ("model-a", "model-c"):  # every column is its summary's number, as written
        for judge, keys in (("pairwise", ("win_rate", "lc_win_rate")), ("rank", ("win_rate", "lc_win_rate",
                                                                                  "mean_rank"))):
            got, want = _cells(board, model, zh, judge), summary(model, judge)
            assert want["schema_version"] == 3
            for key in keys:
                assert got[key].value == want[key], (model, judge, key)
            assert (got["win_rate"].lo, got["win_rate"].hi) == tuple(want["ci95"] or (None, None))
            assert got["parse_failures"].value == want["n_parse_failures"] == 0
    a, c = _cells(board, "model-a", zh, "pairwise"), _cells(board, "model-c", zh, "pairwise")
    assert a["win_rate"].value == 1.0 and a["win_rate"].n == 6
    assert c["win_rate"].value == 0.5  # the verdict follows the order: a tie for model-c
    a, c = _cells(board, "model-a", zh, "rank"), _cells(board, "model-c", zh, "rank")
    assert (a["win_rate"].value, a["mean_rank"].value) == (1.0, 1.0)  # ranked above RoleGPT, first of three
    assert (c["win_rate"].value, c["mean_rank"].value) == (0.0, 3.0)
    rank_col = next(col for col in board.columns if col.key == f"judge:mean_rank:{zh}:rank")
    assert rank_col.display_name == "Rank /3" and summary("model-c", "rank")["systems"] == [
        "org/model-a", "org/model-c", "rolegpt"]
    rubric = _cells(board, "model-a", zh, "rubric")
    assert rubric["rubric_mean"].value == pytest.approx((5 * 4 + 3) / 6)
    assert rubric["rubric_mean"].value == summary("model-a", "rubric")["rubric_means"]["overall"]
    assert rubric["character_break_rate"].value == pytest.approx(1 / 6)
    items = [i for i in board.items["items"] if i["task"] == zh and i["doc_id"] == 1]
    verdicts = {board.items["judges"][v["judge"]]["judge"]: v["verdict"]
                for answer in items[0]["answers"] for v in answer["judges"]
                if board.items["models"][answer["model"]]["name"] == "model-a"}
    assert verdicts["pairwise"] == "win (orders: win, win)" and verdicts["rank"].startswith("win")
    assert verdicts["rubric"] == "3.00 (style 2, knowledge 3, instruction 4, character break: yes)"


def test_a_corrupt_annotations_file_is_reported_and_the_board_still_built(tmp_path):
    shutil.copytree(JUDGES, tmp_path / "judges")
    bad = tmp_path / "judges" / "org__model-a" / EN / "pairwise" / "annotations.jsonl"
    bad.write_text(bad.read_text(encoding="utf-8")[:-50] + "\n", encoding="utf-8")
    board = build_leaderboard([RUNS / "a"], judges=[tmp_path / "judges"], options=Options(n_boot=50))
    errors = [e for e in board.errors if e.path == str(bad)]
    assert len(errors) == 1 and errors[0].line == 12
    assert _cells(board, "model-a", EN, "pairwise")["win_rate"].value == _summary("org__model-a", "pairwise")["win_rate"]
    answers = [a for i in board.items["items"] if i["task"] == EN for a in i["answers"]]
    shown = {board.items["judges"][v["judge"]]["judge"] for a in answers for v in a["judges"]}
    assert shown == {"rank", "rubric"}  # the pairwise verdicts are missing, the others are there


def test_a_protocol_the_schema_does_not_name_gets_the_columns_its_summary_fills(tmp_path):
    """Adding a judge protocol needs no leaderboard edit: its schema-2 statistics are shown."""
    folder = tmp_path / "org__model-a" / EN / "vibes"
    folder.mkdir(parents=True)
    summary = {**_summary("org__model-a", "pairwise"), "protocol": "vibes", "judge": "vibes", "lc_win_rate": None,
               "lc_ci95": None}
    (folder / "summary.json").write_text(json.dumps(summary))
    board = build_leaderboard([RUNS / "a"], judges=[tmp_path], options=Options(n_boot=100))
    got = _cells(board, "model-a", EN, "vibes")
    assert set(got) == {"win_rate", "parse_failures"}  # filled statistics only: no empty LC, rank or rubric column
    assert (got["win_rate"].value, got["win_rate"].lo, got["win_rate"].hi) == (
        summary["win_rate"], *summary["ci95"])
    assert got["parse_failures"].value == summary["n_parse_failures"]


def test_the_answers_read_with_the_scores_give_the_browser_of_answers_read_after(monkeypatch):
    """The browser's answers read with each file's scores (the first items of each role) leave its data as it
    was when every answer was read afterwards, also where judge verdicts choose later items; fewer lines are
    read afterwards (only the first model's documents and the items the verdicts chose)."""
    from rolebench_eval.leaderboard import build, items

    inputs, opts, lines, ahead_of_time = [RUNS / "a", RUNS / "c", RUNS / "xss", RUNS / "mt_a", RUNS / "mt_c"], Options(
        n_boot=20, browse_items=1), [], []

    def first_answers(*args):
        ahead_of_time.append(True)
        try:
            return first(*args)
        finally:
            ahead_of_time.pop()

    def read_records_at(path, positions, *args, **kwargs):
        positions = list(positions)
        if not ahead_of_time:  # read by the browser, after the scores
            lines.append(len(positions))
        return read(path, positions, *args, **kwargs)

    read, first = items.read_records_at, items.first_answers
    monkeypatch.setattr(items, "read_records_at", read_records_at)
    monkeypatch.setattr(items, "first_answers", first_answers)
    ahead = build_leaderboard(inputs, judges=[JUDGES], options=opts)
    read_ahead, lines[:] = sum(lines), []
    monkeypatch.setattr(build, "_browse", lambda *args: None)
    after = build_leaderboard(inputs, judges=[JUDGES], options=opts)
    assert ahead.items == after.items and {i["task"] for i in after.items["items"]} >= {EN, "rolebench_mt_specific_en"}
    judged = [a for i in after.items["items"] for a in i["answers"] if a["judges"]]
    assert judged and 0 < read_ahead < sum(lines)
