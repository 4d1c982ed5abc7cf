"""Judges: configs, parsing, statistics, lm-eval sample reading and exact end-to-end results.

End-to-end tests run the library API against a scripted OpenAI-compatible server on
127.0.0.1 (tests/fixtures/llm/fake_openai_server.py) with injected faults. The fixture
model "fake/cand-7b" answers 8 English role-specific items (qid-1..8; qid-7 has no RoleGPT
answer) and 2 Chinese general ones; candidate answers hold "CAND", baselines "BASE".
"""

from __future__ import annotations

import doctest
import os
import itertools
import json
import shutil
from pathlib import Path

import pytest

from rolebench_eval.data import RoleBenchDataError
from rolebench_eval.judges import inputs as judge_inputs, parsing, protocols, stats
from rolebench_eval.judges.config import JudgeConfigError, builtin_judges, load_judge
from rolebench_eval.judges.protocols import rank as rank_protocol
from rolebench_eval.judges.parsing import ParseError, parse_ranking, parse_rubric, parse_verdict
from rolebench_eval.judges.run import JudgeOptions, judge_outputs
from rolebench_eval.outputs import find_runs, latest_samples, read_records

HERE = Path(__file__).parent
FIX = HERE / "fixtures" / "judges"
OUT = FIX / "lmeval_out"
KEY = "sk-test-DISTINCTIVE-judges-5e6f"
# schema version 2 (the brief's interface 2), every key
SUMMARY_KEYS = {"kind", "schema_version", "model", "task", "judge", "protocol", "judge_model", "baseline", "systems",
                "n_systems", "n_total", "n_judged", "n_parsed", "n_parse_failures", "n_refusals",
                "n_skipped_no_baseline", "n_skipped_no_answer", "n_pending", "complete", "win_rate", "ci95",
                "lc_win_rate", "lc_ci95", "mean_rank", "position_flip_rate", "rubric_means", "rubric_ci95",
                "character_break_rate", "rouge_agreement", "rouge_agreement_method", "decoding", "package_version",
                "created_at"}
ANNOTATION_KEYS = {"doc_id", "role", "question", "judge_texts", "judge_refusals", "refused", "value", "parse_error",
                   "judge_model", "decoding", "prompt_hash", "timestamp", "package_version"}
CONFIGURED_DECODING = {"temperature": 0, "seed": 0, "max_tokens": 512}  # judges/defaults.yaml


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def _script(name: str) -> dict:
    return json.loads((FIX / f"{name}_script.json").read_text(encoding="utf-8"))


def _run(srv, tmp_path, judge: str, inputs=(OUT,), **kw):
    opts = JudgeOptions(judge=judge, model="judge-m", base_url=srv.url, out=tmp_path / "out",
                        cache=tmp_path / "cache.sqlite", timeout=0.5, backoff_base=0.01, concurrency=4,
                        progress=False, **kw)
    report = judge_outputs(list(inputs), opts)
    return report, {(s["task"]): s for s in report.summaries}


def _annotations(tmp_path, task: str, judge: str, model: str = "fake__cand-7b") -> list[dict]:
    path = tmp_path / "out" / model / task / judge / "annotations.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _job(item: protocols.Item, model: str = "fake/cand-7b", baseline: str | None = "rolegpt") -> protocols.Job:
    """A job of one candidate (what one input gives every protocol)."""
    unit = protocols.Unit(model, "rolebench_specific_en", Path("samples.jsonl"), baseline, [item], [], [],
                          systems=[model, baseline])
    return protocols.Job([(unit, item)])


def _requests(judge, item: protocols.Item) -> list:
    return judge.impl.requests(judge, _job(item))


def _tau_b(x, y) -> float:
    """Kendall's tau-b by counting pairs (independent of scipy)."""
    conc = disc = tx = ty = 0
    for (x1, y1), (x2, y2) in itertools.combinations(zip(x, y), 2):
        dx, dy = (x1 > x2) - (x1 < x2), (y1 > y2) - (y1 < y2)
        if dx and dy:
            conc, disc = conc + (dx == dy), disc + (dx != dy)
        elif dx:
            ty += 1
        elif dy:
            tx += 1
    return (conc - disc) / ((conc + disc + tx) * (conc + disc + ty)) ** 0.5


# ------------------------------------------------------------------ parsing and statistics


@pytest.mark.parametrize("module", [parsing, stats, rank_protocol, judge_inputs])
def test_doctests(module):
    assert doctest.testmod(module).failed == 0


@pytest.mark.parametrize("text, expected", [
    ("A is better.\n[[A]]", "A"), ("[[ B ]]", "B"), ("tie [[C]] [[C]]", "C"),
    ("no verdict", None), ("[[A]] or maybe [[B]]", None), ("[A]", None), ("", None),
])
def test_parse_verdict(text, expected):
    if expected is None:
        with pytest.raises(ParseError):
            parse_verdict(text)
    else:
        assert parse_verdict(text) == expected


LABELS = ["model_1", "model_2"]


@pytest.mark.parametrize("text, expected", [
    ('[{"model": "model_1", "rank": 2}, {"model": "model_2", "rank": 1}]', {"model_1": 2, "model_2": 1}),
    ("Result: [{'model': 'model_1', 'rank': '1', 'reason': 'x'}, {'model': 'model_2', 'rank': 1}]",
     {"model_1": 1, "model_2": 1}),
    ('[{"model": "model_1", "rank": 1}, {"model": "model_1", "rank": 2}]', None),   # twice
    ('[{"model": "model_1", "rank": 1}, {"model": "model_3", "rank": 2}]', None),   # unknown label
    ('[{"model": "model_1", "rank": 0}, {"model": "model_2", "rank": 1}]', None),   # out of range
    ('[{"model": "model_1", "rank": true}, {"model": "model_2", "rank": 1}]', None),  # bool is not a rank
    ("[{'model': 'model_1', 'rank': 1}, {'model': 'model_2'", None),                # truncated
    ("model_1 is first", None),
])
def test_parse_ranking(text, expected):
    if expected is None:
        with pytest.raises(ParseError):
            parse_ranking(text, LABELS)
    else:
        assert parse_ranking(text, LABELS) == expected


@pytest.mark.parametrize("text, ok", [
    ('{"style": 5, "knowledge": 1, "character_break": true}', True),
    ('{"style": 5.0, "knowledge": "1", "character_break": false}', True),
    ('{"style": 5, "character_break": false}', False),                 # missing criterion
    ('{"style": 6, "knowledge": 1, "character_break": false}', False),  # out of scale
    ('{"style": 5, "knowledge": 1, "character_break": "no"}', False),   # flag not boolean
    ('{"style": 4.5, "knowledge": 1, "character_break": false}', False),
    ("Great answer!", False),
])
def test_parse_rubric(text, ok):
    if ok:
        parsed = parse_rubric(text, ["style", "knowledge"], (1, 5), "character_break")
        assert parsed["style"] == 5 and parsed["knowledge"] == 1
    else:
        with pytest.raises(ParseError):
            parse_rubric(text, ["style", "knowledge"], (1, 5), "character_break")


def test_bootstrap_ci_is_deterministic_and_brackets_the_mean():
    scores = [1.0] * 30 + [0.5] * 10 + [0.0] * 20
    lo, hi = stats.bootstrap_ci(scores)
    assert stats.bootstrap_ci(scores) == [lo, hi]
    assert stats.win_rate(scores) == pytest.approx(35 / 60)
    assert lo < 35 / 60 < hi
    # the normal-approximation interval of a mean is close to the percentile bootstrap's
    import numpy as np
    se = np.std(scores) / np.sqrt(len(scores))
    assert lo == pytest.approx(35 / 60 - 1.96 * se, abs=0.03) and hi == pytest.approx(35 / 60 + 1.96 * se, abs=0.03)
    big = stats.bootstrap_ci([0.0, 1.0] * 5000, n_boot=2000)  # chunked path
    assert big[0] == pytest.approx(0.49, abs=0.005) and big[1] == pytest.approx(0.51, abs=0.005)
    assert stats.bootstrap_ci([]) is None
    with pytest.raises(ValueError):
        stats.win_rate([0.7])


def test_kendall_tau_matches_pair_counting():
    x, y = [1, 0, 0.5, 0, 1, 1, 0.5], [0.9, -1, 0, 0.2, 1, 0.3, 0.2]
    assert stats.kendall_tau(x, y) == pytest.approx(_tau_b(x, y))
    assert stats.kendall_tau([1], [2]) is None


# ------------------------------------------------------------------ judge folders


def test_builtin_judges_load_and_render_in_both_languages():
    assert tuple(builtin_judges()) == protocols.names() == ("conversation", "identify", "pairwise", "rank", "rubric")
    item = protocols.Item(doc_id=0, role="Captain Brine", question=" qid-1: Who? ", lang="en", kind="specific",
                          references=(" The tide.",), role_prompt="You are Captain Brine. Now please answer.",
                          candidate="CAND", baseline="BASE", description='A gruff captain. Catchphrase: "Arr!"')
    for name in ("pairwise", "rank", "rubric"):  # identify is judge check's (tests/test_judge_health.py),
        # conversation judges whole conversations (tests/test_judge_conversation.py)
        judge = load_judge(name)
        assert judge.protocol == name and judge.impl.name == name and judge.model is None
        assert judge.decoding == CONFIGURED_DECODING  # the shared defaults (judges/defaults.yaml)
        for lang in ("en", "zh"):
            for messages in _requests(judge, protocols.Item(**{**item.__dict__, "lang": lang})):
                assert [m["role"] for m in messages] == ["system", "user"]
                user = messages[1]["content"]
                assert "qid-1: Who?" in user and "Captain Brine" in user and "The tide." in user  # reference shown
                # the description slot holds the description and catchphrases, not the candidate's role prompt
                assert 'A gruff captain. Catchphrase: "Arr!"' in user and "Now please answer" not in user
    general = protocols.Item(**{**item.__dict__, "kind": "general"})
    assert "The tide." not in _requests(load_judge("pairwise"), general)[0][1]["content"]


@pytest.mark.parametrize("description", [None, "", "   "])
def test_description_slot_falls_back_to_the_role_name(description):
    """As in the paper: 'The role description of "R" is "R"' when the data has no description."""
    item = protocols.Item(0, "Captain Brine", "qid-1: Who?", "en", "general", (), "You are Captain Brine, your "
                          "description is: . Now please answer", "CAND", "BASE", description)
    user = _requests(load_judge("rank"), item)[0][1]["content"]
    assert 'The role description of "Captain Brine" is "Captain Brine".' in user and "Now please" not in user
    zh = _requests(load_judge("rank"), protocols.Item(**{**item.__dict__, "lang": "zh", "role": "海盗王"}))
    assert '"海盗王"的角色描述是"海盗王"' in zh[0][1]["content"]


def _copy_judge(tmp_path: Path, name: str = "pairwise") -> Path:
    folder = tmp_path / "my_judge"
    shutil.copytree(load_judge(name).folder, folder)
    return folder


@pytest.mark.parametrize("name, edit, message", [
    ("pairwise", lambda t: t.replace("protocol: pairwise", "protocol: duel"), "field 'protocol'"),
    ("pairwise", lambda t: t + "decodng: {temperature: 0}\n", "unknown key(s) ['decodng']"),
    ("pairwise", lambda t: t.replace("user_zh.jinja", "missing.jinja"), "field 'prompts.zh.user'"),
    ("pairwise", lambda t: t + "decoding: {temprature: 0}\n", "field 'decoding'"),
    ("pairwise", lambda t: t + "\n  - [", "invalid YAML"),
    ("pairwise", lambda t: t + "rank: {max_systems: 3}\n", "unknown key(s) ['rank']"),  # not its protocol's
    ("rank", lambda t: t + "rank: {max_systems: 1}\n", "field 'rank.max_systems'"),
    ("rank", lambda t: t + "rank: {max_sytems: 4}\n", "field 'rank'"),
    ("rubric", lambda t: t.replace("scale: [1, 5]", "scale: [5, 1]"), "field 'rubric.scale'"),
])
def test_bad_judge_configs_name_the_file_and_field(tmp_path, name, edit, message):
    folder = _copy_judge(tmp_path, name)
    config = folder / "config.yaml"
    config.write_text(edit(config.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(JudgeConfigError) as err:
        load_judge(folder)
    assert str(config) in str(err.value) and message in str(err.value)


def test_unknown_judge_and_undefined_template_variable(tmp_path):
    with pytest.raises(JudgeConfigError, match="built-in judges"):
        load_judge("no-such-judge")
    folder = _copy_judge(tmp_path)
    (folder / "user_en.jinja").write_text("{{ answr_a }}", encoding="utf-8")
    item = protocols.Item(0, "R", "q", "en", "general", ("r",), "p", "c", "b")
    with pytest.raises(Exception, match="answr_a"):
        _requests(load_judge(folder), item)


@pytest.mark.parametrize("template, problem", [
    ("{{ ''.__class__.__mro__ }}", "reaches for Python internals"),
    ("{{ cycler.__init__.__globals__.os.system('touch ' ~ marker) }}", "reaches for Python internals"),
    ("{{ question.__class__.__subclasses__() }}", "reaches for Python internals"),
    ("{{ 1 / 0 }}", "ZeroDivisionError"),
])
def test_a_template_reaching_for_python_internals_is_one_error_naming_its_file(tmp_path, template, problem):
    """Judge folders are shared data: templates render in jinja2's sandbox, and nothing of a hostile one runs."""
    folder = _copy_judge(tmp_path)
    marker = tmp_path / "PWNED"
    (folder / "user_en.jinja").write_text(template.replace("marker", repr(str(marker))), encoding="utf-8")
    judge = load_judge(folder)
    with pytest.raises(JudgeConfigError) as err:
        _requests(judge, protocols.Item(0, "R", "q", "en", "general", ("r",), "p", "c", "b"))
    assert str(err.value).startswith(f"{folder / 'user_en.jinja'}: ") and problem in str(err.value)
    assert "\n" not in str(err.value) and not marker.exists()


def test_a_template_that_does_not_compile_names_its_file_and_line(tmp_path):
    folder = _copy_judge(tmp_path)
    (folder / "system_zh.txt").write_text("line one\n{% if %}\n", encoding="utf-8")
    with pytest.raises(JudgeConfigError, match=f"^{folder / 'system_zh.txt'}:2: invalid template"):
        load_judge(folder)


def test_a_judge_folder_overrides_the_shared_defaults(tmp_path):
    folder = _copy_judge(tmp_path, "rank")
    config = folder / "config.yaml"
    config.write_text(config.read_text(encoding="utf-8") + "decoding: {max_tokens: 64}\nrank: {max_systems: 3}\n",
                      encoding="utf-8")
    judge = load_judge(folder)
    assert judge.decoding == {**CONFIGURED_DECODING, "max_tokens": 64}  # merged key by key
    assert judge.settings == {"max_systems": 3, "order_seed": 0}
    assert judge.config_hash != load_judge("rank").config_hash


# ------------------------------------------------------------------ reading lm-eval outputs


def _samples(inputs):
    runs, errors = find_runs(inputs)
    if errors:
        raise errors[0]
    return latest_samples(runs)


def test_find_and_read_samples():
    files = _samples([OUT])
    assert [(run.name, task) for run, task, _ in files] == [("fake/cand-7b", "rolebench_general_zh"),
                                                            ("fake/cand-7b", "rolebench_specific_en")]
    samples = read_records(files[1][2])
    assert len(samples) == 8 and samples[6].doc["rolegpt"] is None
    assert samples[0].response.startswith("CAND Arr") and samples[0].doc["question"].startswith(" qid-1:")
    assert len(read_records(files[1][2], limit=3)) == 3
    single = _samples([files[0][2]])  # a single file works too
    assert [(run.name, task, path) for run, task, path in single] == [("fake/cand-7b", *files[0][1:])]


@pytest.mark.parametrize("mutate, where", [
    (lambda row: row.pop("filtered_resps"), "field 'filtered_resps'"),
    (lambda row: row["doc"].pop("role"), "field 'doc.role'"),
    (lambda row: row["doc"].update(lang="fr"), "field 'doc.lang'"),
    (lambda row: row.update(doc_id="3"), "field 'doc_id'"),
])
def test_malformed_samples_name_file_line_and_field(tmp_path, mutate, where):
    src = _samples([OUT])[1][2]
    lines = src.read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[2])
    mutate(row)
    lines[2] = json.dumps(row)
    bad = tmp_path / src.name
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(RoleBenchDataError) as err:
        read_records(bad)
    assert f"{bad}:3:" in str(err.value) and where in str(err.value)


def test_inputs_without_samples_are_errors(tmp_path):
    with pytest.raises(RoleBenchDataError, match="--output_path"):
        _samples([tmp_path])
    with pytest.raises(RoleBenchDataError, match="no such file"):
        _samples([tmp_path / "nope"])
    shutil.copy(next(OUT.glob("*/results_*.json")), tmp_path)
    with pytest.raises(RoleBenchDataError, match="--log_samples"):
        judge_outputs([tmp_path], JudgeOptions(judge="pairwise", model="m", base_url="http://127.0.0.1:9"))


# ------------------------------------------------------------------ end to end, exact results


def test_pairwise_end_to_end_with_faults(llm_server, tmp_path):
    srv = llm_server(_script("pairwise"), expected_key=KEY)
    report, by_task = _run(srv, tmp_path, "pairwise")
    en = by_task["rolebench_specific_en"]
    assert SUMMARY_KEYS <= set(en) and en["kind"] == "rolebench-judge-summary" and en["schema_version"] == 3
    assert (en["model"], en["judge"], en["protocol"], en["judge_model"], en["baseline"]) == (
        "fake/cand-7b", "pairwise", "pairwise", "judge-m", "rolegpt")
    assert (en["systems"], en["n_systems"], en["n_refusals"], en["n_skipped_no_answer"]) == (None, None, 0, 0)
    assert en["decoding"] == CONFIGURED_DECODING and en["lc_method"].startswith("logistic regression")
    # wins 1, 5, 8; loss 2; tie 3; order-dependent 4 -> tie + flip; 6 unparseable; 7 has no baseline
    assert (en["n_total"], en["n_judged"], en["n_parsed"], en["n_parse_failures"], en["n_skipped_no_baseline"]) == (
        8, 7, 6, 1, 1)
    assert en["win_rate"] == pytest.approx((3 + 0.5 * 2) / 6)
    assert en["position_flip_rate"] == pytest.approx(1 / 6)
    assert en["ci95"][0] < en["win_rate"] < en["ci95"][1]
    assert en["rouge_agreement"] == pytest.approx(1.0)  # the fixture's answers order ROUGE like the judge
    assert en["mean_rank"] is None and en["rubric_means"] is None and en["complete"] is True
    zh = by_task["rolebench_general_zh"]  # the Chinese template was used (rules match 回答A)
    assert (zh["n_parsed"], zh["win_rate"]) == (2, pytest.approx(0.75))
    rows = _annotations(tmp_path, "rolebench_specific_en", "pairwise")
    assert [r["doc_id"] for r in rows] == list(range(8)) and all(ANNOTATION_KEYS <= set(r) for r in rows)
    assert [r["status"] for r in rows] == ["judged"] * 5 + ["parse_error", "skipped_no_baseline", "judged"]
    bad = rows[5]
    assert bad["value"] is None and bad["score"] is None and "no verdict" in bad["parse_error"]
    assert bad["judge_texts"] == ["I cannot decide between them."] * 2
    assert rows[3]["flip"] is True and rows[3]["value"]["orders"] == ["win", "loss"]
    assert all(r["timestamp"] and r["prompt_hash"] for r in rows if r["status"] != "skipped_no_baseline")
    assert all(r["decoding"] == CONFIGURED_DECODING and r["refused"] is False for r in rows if r["judge_texts"])
    log = srv.requests()
    assert all(e["auth"] for e in log) and not any(e["rule"] == "qid-7" for e in log)
    for rule in {e["rule"] for e in log}:  # each item's two orders answered exactly once each
        assert sum(1 for e in log if e["rule"] == rule and e["outcome"] == "ok") == 2
    assert sorted(e["outcome"] for e in log if e["outcome"] != "ok") == ["429", "500", "garbage", "hang", "truncate"]
    assert report.batch.n_sent == 18 and report.batch.n_retries == 5


def test_rank_end_to_end(llm_server, tmp_path):
    srv = llm_server(_script("rank"), expected_key=KEY)
    _, by_task = _run(srv, tmp_path, "rank")
    en = by_task["rolebench_specific_en"]
    # win 1, 5, 8; loss 2, 4; tie 3 (both ranked 1); 6 lacks model_2 (parse failure); 7 skipped
    assert (en["n_parsed"], en["n_parse_failures"], en["n_skipped_no_baseline"]) == (6, 1, 1)
    assert en["win_rate"] == pytest.approx(3.5 / 6)
    assert en["mean_rank"] == pytest.approx((1 + 2 + 1 + 2 + 1 + 1) / 6)
    assert en["position_flip_rate"] is None
    assert (en["systems"], en["n_systems"]) == (["fake/cand-7b", "rolegpt"], 2)  # one input: k = 2
    rows = [r for r in _annotations(tmp_path, "rolebench_specific_en", "rank") if r["status"] == "judged"]
    expected_tau = _tau_b([r["score"] for r in rows], [r["rouge_candidate"] - r["rouge_baseline"] for r in rows])
    assert en["rouge_agreement"] == pytest.approx(expected_tau)
    labels = {r["value"]["candidate_label"] for r in rows}
    assert labels == {"model_1", "model_2"}  # both presentation orders occur
    assert by_task["rolebench_general_zh"]["win_rate"] == pytest.approx(0.75)


def test_rubric_end_to_end(llm_server, tmp_path):
    srv = llm_server(_script("rubric"), expected_key=KEY)
    _, by_task = _run(srv, tmp_path, "rubric")
    en = by_task["rolebench_specific_en"]
    # parsed: 1 (5,4,5), 2 (2,3,4, break), 3 (3,3,3), 4 (4,4,4), 7 (1,1,1, break), 8 (5,5,5); 5 and 6 fail
    assert (en["n_total"], en["n_parsed"], en["n_parse_failures"], en["n_skipped_no_baseline"]) == (8, 6, 2, 0)
    assert en["baseline"] is None and en["win_rate"] is None and en["ci95"] is None
    means = en["rubric_means"]
    assert means["style"] == pytest.approx(20 / 6) and means["knowledge"] == pytest.approx(20 / 6)
    assert means["instruction"] == pytest.approx(22 / 6)
    assert means["overall"] == pytest.approx((14 / 3 + 3 + 3 + 4 + 1 + 5) / 6)
    assert en["character_break_rate"] == pytest.approx(2 / 6)
    errors = {r["doc_id"]: r["parse_error"] for r in _annotations(tmp_path, "rolebench_specific_en", "rubric")
              if r["parse_error"]}
    assert set(errors) == {4, 5} and "style is 7" in errors[5]
    assert by_task["rolebench_general_zh"]["rubric_means"]["overall"] == pytest.approx(3.0)


def test_another_model_as_baseline(llm_server, tmp_path):
    """--baseline <samples of another model>: matched on (role, question), qid-7 now judged."""
    other = tmp_path / "other" / "org__base-model"
    other.mkdir(parents=True)
    src = _samples([OUT])[1][2]
    rows = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines()]
    for row in rows:
        answer = row["doc"]["rolegpt"] or "BASE I would rather not say"
        row.update(filtered_resps=[answer], resps=[[answer]])
    rows.reverse()  # doc order differs: matching must not rely on doc_id
    (other / src.name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (other / "results_2026-01-02T03-04-05.000006.json").write_text(json.dumps(
        {"results": {}, "model_name": "org/base-model", "config": {"model": "hf", "model_args": {"pretrained": "org/base-model"}}}))
    srv = llm_server(_script("pairwise"), expected_key=KEY)
    _, by_task = _run(srv, tmp_path, "pairwise", inputs=[src], baseline=str(other))
    en = by_task["rolebench_specific_en"]
    assert en["baseline"] == "org/base-model" and en["n_skipped_no_baseline"] == 0
    assert (en["n_parsed"], en["win_rate"]) == (7, pytest.approx((4 + 0.5 * 2) / 7))


def test_limit_and_summary_written_atomically(llm_server, tmp_path):
    srv = llm_server(_script("pairwise"), expected_key=KEY)
    _, by_task = _run(srv, tmp_path, "pairwise", limit=2)
    assert by_task["rolebench_specific_en"]["n_total"] == 2
    folder = tmp_path / "out" / "fake__cand-7b" / "rolebench_specific_en" / "pairwise"
    assert sorted(p.name for p in folder.iterdir()) == ["annotations.jsonl", "summary.json"]  # no temp files left


@pytest.mark.integration
def test_real_lm_eval_output_on_real_data(llm_server, tmp_path, monkeypatch):
    """lm-eval's own files (rolegpt replay on the real Chinese data) go through the judge (RoleGPT against itself,
    asked for: it measures the judge's order bias)."""
    from rolebench_eval.tasks.runner import run_lm_eval

    data_dir = Path(os.environ.get("ROLEBENCH_DATA_DIR", HERE.parent.parent / "shared" / "rolebench"))
    monkeypatch.setenv("ROLEBENCH_DATA_DIR", str(data_dir))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "lm_eval_out"
    run_lm_eval(["--model", "rolegpt", "--tasks", "rolebench_specific_zh", "--output_path", str(out),
                 "--log_samples", "--limit", "3"])
    ranked = '[{"model": "model_1", "rank": 1}, {"model": "model_2", "rank": 2}]'
    srv = llm_server({"default_reply": ranked}, expected_key=KEY)
    _, by_task = _run(srv, tmp_path, "rank", inputs=[out], allow_identical=True)
    summary = by_task["rolebench_specific_zh"]
    assert (summary["model"], summary["n_total"], summary["n_parsed"]) == ("rolegpt", 3, 3)
    # RoleGPT against itself: whichever answer is shown first wins, so the rate follows the order
    rows = [json.loads(line) for line in (tmp_path / "out" / "rolegpt" / "rolebench_specific_zh" / "rank" /
                                          "annotations.jsonl").read_text(encoding="utf-8").splitlines()]
    assert all(r["candidate"] == r["baseline"] and r["lang"] == "zh" for r in rows)
    first = sum(r["value"]["candidate_label"] == "model_1" for r in rows)
    assert summary["win_rate"] == pytest.approx(first / 3) and srv.count() == 3


# ------------------------------------------------------------------ refusals and the decoding sent


def _summary_of(records: list[dict], judge) -> dict:
    from rolebench_eval.judges import report

    import msgspec

    return msgspec.to_builtins(report.summarize(records, {"model": "m", "task": "t", "judge": judge.name}, judge,
                                                None, CONFIGURED_DECODING))


def test_a_refusal_is_a_counted_failure_with_its_text_kept():
    from rolebench_eval.judges import report
    from rolebench_eval.judges.protocols.base import judge_job

    judge = load_judge("pairwise")
    item = protocols.Item(0, "Captain Brine", "qid-1: Who?", "en", "general", (), "p", "CAND", "BASE")
    job = _job(item)
    # the second order is refused (content null, the API's refusal field); the first says [[A]]
    answers = [{"text": "[[A]]"}, {"text": "", "refusal": "I can't help with\n comparing these."}]
    [judgment] = judge_job(judge, job, answers)
    assert judgment.value is None and judgment.score is None
    assert judgment.error == "refusal: I can't help with comparing these."
    row = report.judged_annotation(item, judgment, answers, [[]], "judge-m", CONFIGURED_DECODING, None)
    assert (row["status"], row["refused"], row["judge_refusals"]) == (
        "parse_error", True, [None, "I can't help with\n comparing these."])
    won = [{"text": "[[A]]"}, {"text": "[[B]]"}]  # the candidate wins in both orders
    fine = report.judged_annotation(item, judge_job(judge, job, won)[0], won, [[]], "judge-m", CONFIGURED_DECODING,
                                    (0.5, 0.2))
    summary = _summary_of([row, fine], judge)
    assert (summary["n_refusals"], summary["n_parse_failures"], summary["n_parsed"], summary["win_rate"]) == (
        1, 1, 1, 1.0)
    # responses without a refusal key (older clients, other servers) are tolerated
    assert judge_job(judge, job, [{"text": "[[B]]"}, {"text": "[[A]]"}])[0].value["outcome"] == "loss"


def test_a_failure_on_a_cut_answer_says_so():
    from rolebench_eval.judges.protocols.base import judge_job

    judge = load_judge("rank")
    item = protocols.Item(0, "R", "q", "en", "general", (), "p", "CAND", "BASE")
    [judgment] = judge_job(judge, _job(item), [{"text": '[{"model": "model_1", "rank"', "finish_reason": "length"}])
    assert judgment.value is None and "cut at its token limit" in judgment.error


def test_the_decoding_sent_is_recorded():
    from rolebench_eval.judges import report
    from rolebench_eval.judges.protocols.base import judge_job

    judge = load_judge("pairwise")
    item = protocols.Item(0, "R", "q", "en", "general", (), "p", "CAND", "BASE")
    adapted = {"max_completion_tokens": 512, "seed": 0}  # what an adapting client reports it sent
    rows = []
    for decoding in (adapted, adapted, None):
        answers = [{"text": "[[A]]", **({"decoding": decoding} if decoding else {})}, {"text": "[[B]]"}]
        rows.append(report.judged_annotation(item, judge_job(judge, _job(item), answers)[0], answers, [[]], "m",
                                             CONFIGURED_DECODING, (0.1, 0.2)))
    assert [r["decoding"] for r in rows] == [adapted, adapted, CONFIGURED_DECODING]
    summary = _summary_of(rows, judge)
    assert summary["decoding"] == adapted and summary["decodings_seen"] == [adapted, CONFIGURED_DECODING]
    assert _summary_of(rows[:2], judge)["decodings_seen"] is None
    assert _summary_of([], judge)["decoding"] == CONFIGURED_DECODING  # nothing judged: what was configured


def test_refusal_end_to_end(llm_server, tmp_path):
    script = _script("rank")
    script["rules"].insert(0, {"id": "qid-3", "match": ["qid-3:", "rank the models"],
                               "refusal": "I'm sorry, I can't rank these answers."})
    srv = llm_server(script, expected_key=KEY)
    report, by_task = _run(srv, tmp_path, "rank")
    if not any(r is not None and "refusal" in r for r in report.batch.responses):
        pytest.skip("this branch's LLM client does not pass the API's refusal field through yet (issue 10, client)")
    en = by_task["rolebench_specific_en"]
    assert (en["n_refusals"], en["n_parse_failures"], en["n_parsed"]) == (1, 2, 5)  # qid-3 refused, qid-6 garbled
    assert en["win_rate"] == pytest.approx(3 / 5)  # wins 1, 5, 8; losses 2, 4
    row = next(r for r in _annotations(tmp_path, "rolebench_specific_en", "rank") if r["refused"])
    assert row["judge_refusals"] == ["I'm sorry, I can't rank these answers."] and row["score"] is None
    assert row["parse_error"].startswith("refusal: I'm sorry")
