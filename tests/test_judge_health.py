"""``rolebench-eval judge check``: a judge's health on a character set, against a scripted local judge.

The fixture set (tests/fixtures/health: four invented Chinese characters, three role-specific items
each) is asked with k = 4, so every prompt lists every character and the scripted judge can answer
by name: the accuracies below are counted by hand from the script. The labels file holds five
pairwise preferences and one ranking of three answers (eight pairs in all).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rolebench_eval.errors import InputError
from rolebench_eval.judges import health
from rolebench_eval.judges.check import CheckOptions, check_judge
from rolebench_eval.judges.protocols.identify import parse_choice
from rolebench_eval.outputs import health as schema

HERE = Path(__file__).parent
FIX = HERE / "fixtures" / "health"
LABELS = FIX / "labels.jsonl"
MODEL = "judge-m"

# The judge's reply to each reference answer (by a phrase of it); None: a reply with no choice in it.
NAMED = {
    "比桅杆还高三丈": "老船长", "海风配热茶，比岸上": "老船长", "鲨鱼怕我": "小书童",
    "少爷读了半卷": "小书童", "我天天磨墨": None, "最怕先生的戒尺": "小书童",
    "此剑名为秋水": "老船长", "一人一剑": "算命先生", "卖豆腐的婆婆": "女侠客",
    "印堂发亮": "老船长", "三文钱一卦": "老船长", "卜者不自卜": "小书童",
}
# (correct, parsed) per role, counted from NAMED
BY_HAND = {"老船长": (2, 3), "小书童": (2, 2), "女侠客": (1, 3), "算命先生": (0, 3)}


def _identify_rules() -> list[dict]:
    return [{"id": f"identify-{n}", "match": [phrase],
             "reply": f"说话风格像。[[{name}]]" if name else "看不出来。"} for n, (phrase, name) in enumerate(NAMED.items())]


def _prefers(n: int, better: str, worse: str) -> dict:
    """A pairwise rule: the judge prefers ``better`` in both orders."""
    return {"id": f"pair-{n}", "match": [better, worse], "reply_if_before": [better, worse],
            "reply": "[[A]]", "reply_else": "[[B]]"}


def _pairwise_rules() -> list[dict]:
    return [_prefers(1, "甲一", "乙一"), _prefers(2, "乙二", "甲二"), _prefers(3, "乙三", "甲三"),
            {"id": "pair-4", "match": ["甲四"], "reply": "[[A]]"},  # always the first shown: a flip, a tie
            {"id": "pair-5", "match": ["甲五"], "reply": "[[A]]"},
            _prefers(6, "丙一", "丙二"), _prefers(7, "丙一", "丙三"), _prefers(8, "丙三", "丙二")]


def _rank_rules() -> list[dict]:
    ranks = [{"甲一": 1, "乙一": 2}, {"甲二": 2, "乙二": 1}, {"甲三": 2, "乙三": 1}, {"甲四": 1, "乙四": 1},
             {"甲五": 1, "乙五": 1}, {"丙一": 1, "丙二": 3, "丙三": 2}]
    return [{"id": f"rank-{n}", "match": [next(iter(r))], "rank": r} for n, r in enumerate(ranks)]


# the person's label and the scripted judge's for the eight pairs, in the file's order
HUMAN = ["A", "B", "A", "tie", "B", "A", "A", "A"]
JUDGE = ["A", "B", "B", "tie", "tie", "A", "A", "B"]


def _kappa_by_hand(human: list[str], judge: list[str]) -> float:
    n = len(human)
    observed = sum(h == j for h, j in zip(human, judge)) / n
    chance = sum(human.count(c) * judge.count(c) for c in ("A", "B", "tie")) / n ** 2
    return (observed - chance) / (1 - chance)


def _options(srv, tmp_path: Path, **given) -> CheckOptions:
    client = {"base_url": srv.url, "timeout": 5.0, "backoff_base": 0.01, "concurrency": 4}
    return CheckOptions(**{"model": MODEL, "client": client, "data_dir": FIX, "out": tmp_path / "out",
                           "cache": tmp_path / "cache.sqlite", "progress": False, **given})


def test_identification_accuracy_per_role_is_counted_by_hand(llm_server, tmp_path):
    srv = llm_server({"rules": _identify_rules()})
    report = check_judge(_options(srv, tmp_path, split="specific_zh", k=4, items_per_role=3))
    ident = report.health.identification
    assert (ident.k, ident.chance, ident.n_roles, ident.n_total) == (4, 0.25, 4, 12)
    assert (ident.n_parsed, ident.n_parse_failures, ident.n_pending) == (11, 1, 0)
    assert ident.accuracy == pytest.approx(5 / 11)
    got = {r.role: (r.n_correct, r.n_parsed, r.accuracy) for r in ident.roles}
    assert got == {role: (c, p, pytest.approx(c / p)) for role, (c, p) in BY_HAND.items()}
    assert ident.roles_at_or_below_chance == ["算命先生"]  # 0 of 3; 女侠客's 1/3 is above 1/4
    by_role = {r.role: r for r in ident.roles}
    assert by_role["小书童"].ci95 == [1.0, 1.0] and by_role["算命先生"].ci95 == [0.0, 0.0]
    lo, hi = by_role["老船长"].ci95
    assert lo <= 2 / 3 <= hi and lo < hi
    assert srv.count("ok") == 12
    written = schema.decode((report.folder / "health.json").read_bytes(), report.folder / "health.json")
    assert written.identification == ident and written.judge_model == MODEL
    assert report.folder == tmp_path / "out" / "health" / MODEL / "specific_zh"
    lines = [json.loads(x) for x in (report.folder / "identification.jsonl").read_text("utf-8").splitlines()]
    assert len(lines) == 12 and all(sorted(r["names"]) == sorted(BY_HAND) for r in lines)
    failed = [r for r in lines if r["parse_error"]]
    assert [(r["role"], r["named"], r["parse_error"]) for r in failed] == [("小书童", None, "no choice [[n]] found")]
    again = check_judge(_options(srv, tmp_path, split="specific_zh", k=4, items_per_role=3))
    assert srv.count("ok") == 12 and again.health.identification == ident  # cached: nothing sent


def test_distractors_are_seeded_from_the_same_set(llm_server, tmp_path):
    srv = llm_server({"rules": [], "default_reply": "[[1]]"})
    report = check_judge(_options(srv, tmp_path, split="specific_zh", k=2, items_per_role=2, choice_seed=7))
    lines = [json.loads(x) for x in (report.folder / "identification.jsonl").read_text("utf-8").splitlines()]
    assert len(lines) == 8 and all(len(r["names"]) == 2 and r["role"] in r["names"] for r in lines)
    assert all(set(r["names"]) <= set(BY_HAND) for r in lines)
    for r in lines:  # the reply [[1]] names the first name shown
        assert r["named"] == r["names"][0] and r["correct"] == (r["names"][0] == r["role"])
        assert tuple(r["names"]) == health.names_shown(r["role"], r["question"], 0, list(BY_HAND), 2, 7)
    ident = report.health.identification
    assert ident.accuracy == pytest.approx(sum(r["correct"] for r in lines) / 8) and ident.chance == 0.5
    shown = {tuple(health.names_shown("老船长", "q", 0, list(BY_HAND), 2, seed)) for seed in range(20)}
    assert len(shown) > 2  # the seed moves the choice of distractor and the order


def test_parse_choice_reads_numbers_and_names_only():
    names = ("老船长", "小书童", "女侠客")
    assert parse_choice("理由……\n[[2]]", names) == "小书童"
    assert parse_choice("[[ 女侠客 ]]", names) == "女侠客"
    for text, why in (("[[7]]", "[[7]] is not one of the 3 names listed"), ("也许是船长", "no choice [[n]] found"),
                      ("[[1]] 或 [[3]]", "conflicting choices")):
        with pytest.raises(ValueError, match=why.replace("[", r"\[").replace("]", r"\]")):
            parse_choice(text, names)


@pytest.mark.parametrize("judge, rules, flips", [("pairwise", _pairwise_rules, 2 / 8),
                                                 ("rank", _rank_rules, None)])
def test_agreement_with_people_gives_accuracy_and_kappa_by_hand(llm_server, tmp_path, judge, rules, flips):
    srv = llm_server({"rules": rules()})
    report = check_judge(_options(srv, tmp_path, labels=LABELS, judge=judge))
    agree = report.health.agreement
    assert (agree.n_labels, agree.n_pairs, agree.n_parsed, agree.n_parse_failures) == (6, 8, 8, 0)
    assert agree.accuracy == pytest.approx(5 / 8)
    assert agree.kappa == pytest.approx(_kappa_by_hand(HUMAN, JUDGE)) == pytest.approx(17 / 41)
    assert agree.accuracy_ci95[0] < 5 / 8 < agree.accuracy_ci95[1]
    assert agree.kappa_ci95[0] < 17 / 41 < agree.kappa_ci95[1]
    assert agree.position_flip_rate == flips and agree.protocol == judge
    assert srv.count("ok") == (16 if judge == "pairwise" else 6)  # both orders per pair; one prompt per label
    assert report.health.identification is None and report.folder.name == "labels"


def test_agreement_numbers_match_sklearn_and_resample_labels():
    from sklearn.metrics import cohen_kappa_score

    labels = [[("A", "A")], [("B", "B")], [("A", "B")], [("tie", "tie")], [("B", "tie")],
              [("A", "A"), ("A", "A"), ("A", "B")], [("A", None)]]
    got = health.agreement_numbers(labels)
    assert got["kappa"] == pytest.approx(cohen_kappa_score(HUMAN, JUDGE)) and got["accuracy"] == 5 / 8
    assert health.order_pairs([1, 2, 3]) == ["A", "A", "A"] and health.order_pairs([2, 2, 1]) == ["tie", "B", "B"]
    assert health.agreement_numbers([[("A", None)]])["kappa"] is None


@pytest.mark.parametrize("line, field, problem", [
    ({"role": "R", "lang": "zh", "question": "q", "answers": ["a", "b"], "preference": "C"}, "preference",
     "invalid enum value 'C'"),
    ({"role": "R", "lang": "zh", "question": "q", "answers": ["a", "b", "c"], "ranking": [1, 2]}, "ranking",
     "2 ranks for 3 answers"),
    ({"role": "R", "lang": "fr", "question": "q", "answers": ["a", "b"], "preference": "A"}, "lang", "expected one of"),
    ({"role": "R", "lang": "zh", "question": "q", "answers": ["a", "b"]}, "preference", "exactly one of"),
    ({"role": "R", "lang": "zh", "question": "q", "answers": ["a", "b"], "preference": "A", "score": 3}, "score",
     "unknown field"),
])
def test_a_bad_labels_line_is_one_error_naming_file_line_and_field(tmp_path, line, field, problem):
    path = tmp_path / "labels.jsonl"
    good = LABELS.read_text(encoding="utf-8").splitlines()[0]
    path.write_text(good + "\n" + json.dumps(line, ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        schema.read_labels(path)
    assert (Path(err.value.path), err.value.line, err.value.field) == (path, 2, field)
    assert problem in str(err.value) and str(path) in str(err.value) and ":2" in str(err.value)


def test_cli_bad_labels_line_exits_2_with_one_line(tmp_path):
    path = tmp_path / "labels.jsonl"
    path.write_text('{"role": "R", "lang": "zh", "question": "q", "answers": ["a"], "preference": "A"}\n',
                    encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "rolebench_eval.cli", "judge", "check", "--labels", str(path),
                           "--model", MODEL, "--base-url", "http://127.0.0.1:9/v1", "--out", str(tmp_path / "out"),
                           "--cache", str(tmp_path / "c.sqlite")], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "answers" in proc.stderr and f"{path}:1" in proc.stderr


def test_biases_are_read_from_the_judges_summaries_of_that_model(tmp_path):
    from rolebench_eval.judges.check import measured_summaries

    judges = HERE / "fixtures" / "leaderboard" / "judges" / "org__model-a"
    found = measured_summaries([judges], "gpt-4o-2024-08-06")
    biases = health.biases(found)
    pairwise = [b for b in biases.summaries if b.protocol == "pairwise"]
    assert pairwise and biases.position_flip_rate == pytest.approx(
        sum(b.position_flip_rate * b.n_parsed for b in pairwise) / sum(b.n_parsed for b in pairwise))
    raw = json.loads(Path(pairwise[0].summary).read_text(encoding="utf-8"))
    assert pairwise[0].position_flip_rate == raw["position_flip_rate"]
    assert pairwise[0].lc_win_rate == raw["lc_win_rate"]
    assert measured_summaries([judges], "another-model") == []


def _health_file(folder: Path, judge_model: str) -> Path:
    role = schema.RoleAccuracy(role="<script>alert('role')</script>", n=4, n_parsed=4, n_correct=0, accuracy=0.0,
                               ci95=[0.0, 0.0], at_or_below_chance=True)
    ident = schema.Identification(split="specific_en", answers="reference", k=4, chance=0.25, choice_seed=0,
                                  items_per_role=4, n_roles=1, n_total=4, n_parsed=4, n_parse_failures=0,
                                  accuracy=0.0, ci95=[0.0, 0.0], roles=[role], roles_at_or_below_chance=[role.role])
    agree = schema.Agreement(labels_file="<b>labels</b>.jsonl", judge="pairwise", protocol="pairwise", n_labels=5,
                             n_pairs=8, n_parsed=8, n_parse_failures=0, accuracy=0.625, accuracy_ci95=[0.25, 0.875],
                             kappa=0.4146, kappa_ci95=[-0.1, 0.8])
    path = folder / "health" / judge_model / "specific_en" / "health.json"
    schema.write(path, schema.JudgeHealth(judge_model=judge_model, identification=ident, agreement=agree))
    return path


def test_the_leaderboard_shows_a_judge_health_panel_beside_that_judges_columns(tmp_path):
    from rolebench_eval.leaderboard import build_leaderboard
    from rolebench_eval.leaderboard.build import Options

    board_fix = HERE / "fixtures" / "leaderboard"
    _health_file(tmp_path / "judged", "gpt-4o-2024-08-06")
    _health_file(tmp_path / "judged", "<i>other</i>")
    board = build_leaderboard([board_fix / "runs" / "a"], judges=[board_fix / "judges" / "org__model-a",
                                                                 tmp_path / "judged"],
                              out=tmp_path / "site", options=Options(n_boot=50))
    ours, other = sorted(board.health, key=lambda p: p["judge_model"] != "gpt-4o-2024-08-06")
    assert ours["groups"] and all(g.startswith(("pairwise", "rank", "rubric")) for g in ours["groups"])
    assert other["groups"] == []
    assert "Identification on specific_en (reference answers, 4 names each, chance 0.250): 0.000 [0.000–0.000]" \
        in ours["lines"][0]
    assert "Cohen's kappa 0.415 [-0.100–0.800]" in ours["lines"][2]
    html = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert "<script>alert('role')</script>" not in html and "<i>other</i>" not in html and "<b>labels" not in html
    assert ("&lt;script&gt;alert(&#39;role&#39;)&lt;/script&gt;: 0.000 [0.000–0.000], n = 4 — at or below chance"
            in html)
    assert f'href="#{ours["id"]}">judge health</a>' in html and f'id="{ours["id"]}"' in html
    assert html.count(">judge health</a>") == len(ours["groups"])
    # the machine-readable results carry each summary whole, and a push to the Hub uploads each file
    data = json.loads((tmp_path / "site" / "leaderboard.json").read_text(encoding="utf-8"))
    health = {h["judge_model"]: h for h in data["judge_health"]}
    assert set(health) == {"gpt-4o-2024-08-06", "<i>other</i>"}
    assert health["gpt-4o-2024-08-06"]["groups"] == ours["groups"] and health["<i>other</i>"]["groups"] == []
    assert health["gpt-4o-2024-08-06"]["summary"]["agreement"]["kappa"] == 0.4146
    assert health["gpt-4o-2024-08-06"]["summary"]["identification"]["roles"][0]["role"] == \
        "<script>alert('role')</script>"
    from rolebench_eval.leaderboard.publish import hub_files

    files = {k: v for k, v in hub_files(board).items() if k.startswith("judges/health/")}
    assert files == {"judges/health/gpt-4o-2024-08-06.specific_en.json": Path(health["gpt-4o-2024-08-06"]["file"]),
                     "judges/health/i_other_i_.specific_en.json": Path(health["<i>other</i>"]["file"])}


def test_the_identify_folder_renders_the_numbered_names_in_both_languages():
    from rolebench_eval.judges.config import load_judge
    from rolebench_eval.judges.protocols import Item
    from rolebench_eval.judges.protocols.identify import Choice

    judge = load_judge("identify")
    assert judge.settings == {"k": 4, "items_per_role": 20, "choice_seed": 0}
    for lang in ("en", "zh"):
        item = Item(0, "老船长", "q", lang, "specific", (), "", " 那浪比桅杆还高。 ", None)
        (messages,) = judge.impl.requests(judge, Choice([(None, item)], names=("小书童", "老船长")))
        user = messages[1]["content"]
        assert "1. 小书童\n2. 老船长\n" in user and "那浪比桅杆还高。" in user and "[[n]]" in user
    with pytest.raises(InputError, match="judge check"):
        judge.impl.jobs([], judge, {})


def test_cli_judge_check_prints_the_health_and_a_dry_run_prices_it(llm_server, tmp_path):
    srv = llm_server({"rules": _identify_rules() + _pairwise_rules()})
    cmd = [sys.executable, "-m", "rolebench_eval.cli", "judge", "check", "--split", "specific_zh", "--data-dir",
           str(FIX), "--k", "4", "--items-per-role", "3", "--labels", str(LABELS), "--model", MODEL, "--base-url",
           srv.url, "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "c.sqlite"), "--no-progress",
           "--price-input", "2.5", "--price-output", "10"]
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_BASE_URL"}
    dry = subprocess.run(cmd + ["--dry-run"], capture_output=True, text=True, env=env)
    assert dry.returncode == 0, dry.stderr
    assert "identification:\n  requests to send: 12 " in dry.stdout and "agreement:\n  requests to send: 16 " in dry.stdout
    assert srv.count("ok") == 0 and not (tmp_path / "out" / "health").exists()
    run = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert "accuracy 0.455" in run.stdout and "AT OR BELOW CHANCE" in run.stdout
    assert "accuracy 0.625" in run.stdout and "Cohen's kappa 0.415" in run.stdout
    assert (tmp_path / "out" / "health" / MODEL / "specific_zh" / "health.json").is_file()
    assert srv.count("ok") == 12 + 16


def test_no_reply_parsed_is_exit_5(llm_server, tmp_path):
    srv = llm_server({"rules": [], "default_reply": "I cannot tell."})
    cmd = [sys.executable, "-m", "rolebench_eval.cli", "judge", "check", "--split", "specific_zh", "--data-dir",
           str(FIX), "--items-per-role", "1", "--model", MODEL, "--base-url", srv.url, "--out", str(tmp_path / "out"),
           "--cache", str(tmp_path / "c.sqlite"), "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 5 and "no reply of the judge parsed (4 answered)" in proc.stderr
    assert (tmp_path / "out" / "health" / MODEL / "specific_zh" / "health.json").is_file()


def test_a_ranking_longer_than_the_rank_judge_takes_is_refused_before_any_request(llm_server, tmp_path):
    srv = llm_server({"rules": []})
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps({"role": "R", "lang": "en", "question": "q", "answers": list("abcdef"),
                                "ranking": [1, 2, 3, 4, 5, 6]}) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        check_judge(_options(srv, tmp_path, labels=path, judge="rank"))
    assert (err.value.line, err.value.field) == (1, "answers") and "max_systems=5" in str(err.value)
    assert srv.count("ok") == 0


def test_a_generated_folder_is_a_character_set_too(llm_server, tmp_path):
    folder = tmp_path / "brine"
    (folder / "general").mkdir(parents=True)
    rows = [("Captain Brine", "Storms?", "Salt in the wound, sugar in the tea!"),
            ("Captain Brine", "Tea?", "Strong enough to float a spoon."),
            ("Miss Quill", "Ink?", "Ink is patience made visible.")]
    for name, answer_of in (("test", lambda r: f"reference {r[2]}"), ("rolegpt_baseline", lambda r: r[2])):
        (folder / "general" / f"{name}.jsonl").write_text("".join(
            json.dumps({"role": r[0], "question": r[1], "generated": [answer_of(r)]}) + "\n" for r in rows))
    (folder / "rolebench_custom.json").write_text(json.dumps({"format_version": 2, "lang": "en", "roles": {}}))
    srv = llm_server({"rules": [{"id": "brine", "match": ["float a spoon"], "reply": "[[Miss Quill]]"}],
                      "default_reply": "[[Captain Brine]]"})
    report = check_judge(_options(srv, tmp_path, split="custom_general", data_dir=folder, answers="rolegpt"))
    ident = report.health.identification
    assert report.folder.name == "brine-custom_general" and (ident.k, ident.n_total, ident.answers) == (2, 3, "rolegpt")
    assert {r.role: (r.n_correct, r.n_parsed) for r in ident.roles} == {"Captain Brine": (1, 2), "Miss Quill": (0, 1)}
    assert ident.roles_at_or_below_chance == ["Captain Brine", "Miss Quill"]  # 1/2 is chance with k = 2
    lines = (report.folder / "identification.jsonl").read_text(encoding="utf-8")
    assert "reference " not in lines and "Salt in the wound" in lines  # RoleGPT's answers were shown
