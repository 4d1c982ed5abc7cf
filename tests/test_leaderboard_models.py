"""Models described: display data from a models.yaml (or the board spec) on every output, the replay's one
label, and the board's hand-off of its models' display data to its leaderboard step."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest

from rolebench_eval.board import models_file, plan
from rolebench_eval.errors import InputError
from rolebench_eval.leaderboard import build_leaderboard
from rolebench_eval.leaderboard.build import Options
from rolebench_eval.outputs.board_spec import read_spec
from rolebench_eval.outputs.models import REPLAY_LABEL, billions, read_models

HERE = Path(__file__).resolve().parent
FIX = HERE / "fixtures" / "leaderboard"
RUNS, MODELS = FIX / "runs", FIX / "models.yaml"
EXAMPLE = HERE.parent / "examples" / "board_replay.yaml"
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    out = tmp_path_factory.mktemp("board")
    return build_leaderboard([RUNS], out=out, options=Options(n_boot=20, browse_items=0, models=read_models(MODELS),
                                                              models_source=str(MODELS)))


def test_sizes_read_as_billions():
    assert [billions(v) for v in ("7B", "1.5b", "350M", " 70 B", "2T", "12K", 7_000_000_000, 0, "0")] == \
        pytest.approx([7.0, 1.5, 0.35, 70.0, 2000.0, 1.2e-5, 7.0, 0.0, 0.0])
    assert [billions(v) for v in ("seven", "7 GB", "-1", -5, None, True)] == [None] * 6


@pytest.mark.parametrize("entry, line, field, problem", [
    ("  - {name: m, link: 'javascript:alert(1)'}", 3, "models[0].link",
     "'javascript:alert(1)' is not an http:// or https:// address"),
    ("  - {name: m, parameters: seven}", 3, "models[0].parameters",
     "'seven' is not a size: a count, or a number with K, M, B or T (7B)"),
    ("  - {name: m, licence: mit}", 3, "models[0]", "object contains unknown field licence"),
    ("  - {name: m}\n  - {name: m}", 4, "models[1].name", "'m' is described twice"),
    ("  - {parameters: 7B}", 3, "models[0].name", "missing"),
    ("  - {name: m, parameters: [7]}", 3, "models[0].parameters", "expected int | float | str | null, got array"),
])
def test_a_bad_models_file_is_one_line_naming_line_and_field(tmp_path, entry, line, field, problem):
    path = tmp_path / "models.yaml"
    path.write_text(f"# models\nmodels:\n{entry}\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_models(path)
    assert (str(err.value.path), err.value.line, err.value.field) == (str(path), line, field)
    assert err.value.problem == problem


def test_rows_carry_their_display_data_and_the_run_date(board):
    a, b, paper = board.row("model-a"), board.row("base-7b+model-b"), board.row("RoleGLM")
    assert (a.about.parameters, a.about.base_model, a.about.license, a.date) == (
        "7B", "huggyllama/llama-7b", "llama-license", "2026-01-03")  # the newest of its runs (mt_a)
    assert (b.about.parameters, b.date) == (7_000_000_000, "2026-01-01")
    assert (paper.source, paper.about.base_model, paper.date) == ("reported", "THUDM/chatglm2-6b", None)
    assert board.row("model-i").about is None
    assert f"{MODELS}: 'not-on-the-board' describes no row on the board (rows are named by their label)" in board.notes


def test_json_csv_and_markdown_carry_the_fields(board):
    data = json.loads(board.outputs["json"].read_text(encoding="utf-8"))
    assert data["schema_version"] == 5
    rows = {r["name"]: r for r in data["rows"]}
    assert {k: rows["model-a"][k] for k in ("parameters", "base_model", "link", "license", "date", "source")} == {
        "parameters": "7B", "base_model": "huggyllama/llama-7b", "link": 'https://example.org/model-a?x=1&y="2"',
        "license": "llama-license", "date": "2026-01-03", "source": "measured"}
    assert (rows["base-7b+model-b"]["parameters"], rows["RoleGLM"]["source"], rows["model-i"]["license"]) == (
        "7000000000", "reported", None)
    with board.outputs["csv"].open(encoding="utf-8") as handle:
        table = {r["model"]: r for r in csv.DictReader(handle)}
    assert (table["model-c"]["parameters"], table["model-c"]["license"], table["model-c"]["date"]) == (
        "13B", "apache-2.0", "2026-01-03")
    assert table["RoleGLM"]["base_model"] == "THUDM/chatglm2-6b" and table["model-i"]["parameters"] == ""
    markdown = board.outputs["markdown"].read_text(encoding="utf-8")
    assert "| Model | Source | parameters | base_model | link | license | date |" in re.sub(" +", " ", markdown)
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in markdown and "<script>" not in markdown


def test_the_page_links_only_http_and_escapes_everything(board):
    page = board.outputs["html"].read_text(encoding="utf-8")
    assert '<a class="model" href="https://example.org/model-a?x=1&amp;y=&#34;2&#34;" rel="noopener noreferrer">' \
           'model-a</a>' in page
    assert '<span class="about" title="parameters: 7B; base model: huggyllama/llama-7b; license: llama-license; ' \
           'date: 2026-01-03">7B · huggyllama/llama-7b · llama-license · 2026-01-03</span>' in page
    assert 'data-params="7.0" data-license="llama-license"' in page and 'data-params="13.0"' in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page and "<script>alert" not in page
    assert '<option>apache-2.0</option><option>llama-license</option>' in page  # the licenses on the board
    assert 'id="size-min"' in page and 'id="show-measured"' in page


def test_a_board_without_display_data_offers_no_size_or_license_filter(tmp_path):
    board = build_leaderboard([RUNS / "a"], out=tmp_path / "site", options=Options(n_boot=10, browse_items=0))
    page = board.outputs["html"].read_text(encoding="utf-8")
    assert 'id="size-min"' not in page and 'id="license"' not in page and 'id="show-measured"' in page


def test_a_models_entry_with_run_labels_those_runs(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text(f"models:\n  - {{name: My model, run: '{RUNS / 'a'}', parameters: 1.5B}}\n", encoding="utf-8")
    board = build_leaderboard([RUNS / "a"], options=Options(n_boot=10, browse_items=0, models=read_models(path)))
    assert board.row("My model").about.parameters == "1.5B" and board.row("My model").run_names == {"org/model-a"}


def test_a_run_of_the_replay_model_is_labelled_as_the_demo_labels_it(tmp_path):
    run = tmp_path / "runs" / "rolegpt"
    shutil.copytree(RUNS / "c", run)
    results = next(run.glob("results_*.json"))
    data = json.loads(results.read_text(encoding="utf-8"))
    data["config"].update(model="rolegpt", model_args="")
    data.pop("model_name")
    results.write_text(json.dumps(data), encoding="utf-8")
    board = build_leaderboard([run, RUNS / "a"], options=Options(n_boot=10, browse_items=0))
    assert REPLAY_LABEL == "RoleGPT (replay)"
    replay = board.row(REPLAY_LABEL)
    assert replay.run_names == {"rolegpt"} and replay.twin == "RoleGPT"  # beside the paper's RoleGPT, with a note
    renamed = build_leaderboard([run], options=Options(n_boot=10, browse_items=0, names={"rolegpt": "Mine"}))
    assert [r.name for r in renamed.measured] == ["Mine"]  # a rename still wins


def test_the_board_hands_its_models_display_data_to_the_leaderboard_step(tmp_path):
    spec = read_spec(EXAMPLE)
    spec.out = str(tmp_path / "out")
    path, document = models_file(spec)
    leaderboard = plan(spec)[-1]
    assert leaderboard.argv[leaderboard.argv.index("--models") + 1] == str(path)
    assert path.parent == tmp_path / "out" / ".models"
    path.parent.mkdir(parents=True)
    path.write_bytes(document)
    entries = read_models(path)
    assert [(e.name, e.base_model, e.parameters, e.link) for e in entries] == [
        ("RoleGPT (replay)", "gpt-4", None, "https://arxiv.org/abs/2310.00746"),
        ("dummy", None, "0", "https://github.com/EleutherAI/lm-evaluation-harness")]
    spec.models[1].license = "MIT"  # display data changed: another file, so the leaderboard step is redone
    assert models_file(spec)[0] != path and plan(spec)[-1].argv != leaderboard.argv


def test_a_board_spec_refuses_a_link_that_is_not_http(tmp_path):
    spec = tmp_path / "board.yaml"
    spec.write_text("models:\n  - name: m\n    model: dummy\n    link: file:///etc/passwd\ntasks: [rolebench_general_zh]\n",
                    encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_spec(spec)
    assert (err.value.line, err.value.field) == (4, "models[0].link")
    assert err.value.problem == "'file:///etc/passwd' is not an http:// or https:// address"
