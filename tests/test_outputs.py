"""The lm-eval output contract (rolebench_eval.outputs): finding runs, naming them, reading items."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rolebench_eval import outputs
from rolebench_eval.errors import InputError

RUNS = Path(__file__).resolve().parent / "fixtures" / "leaderboard" / "runs"
DATE = "2026-01-01T00-00-00.000000"


@pytest.mark.parametrize("config, model_name, expected", [
    ({"model": "hf", "model_args": "pretrained=org/base,peft=runs/lora"}, "runs/lora", "org/base+runs/lora"),
    ({"model": "hf", "model_args": {"pretrained": "org/base", "delta": "org/delta"}}, "org/delta", "org/base+org/delta"),
    ({"model": "vllm", "model_args": "pretrained=org/base,lora_local_path=/a/lora"}, "org/base", "org/base+/a/lora"),
    ({"model": "local-chat-completions", "model_args": "model=gpt-x,base_url=http://127.0.0.1:1/v1"}, "gpt-x", "gpt-x"),
    ({"model": "rolegpt", "model_args": {"model": "rolegpt"}}, "rolegpt", "rolegpt"),
    ({"model": "hf", "model_args": ""}, "k3x9a", "k3x9a"),  # lm-eval's random id when nothing names the model
])
def test_one_naming_rule_base_model_plus_adapter(config, model_name, expected):
    model, adapter = outputs.run_identity({"config": config, "model_name": model_name})
    assert outputs.run_name(model, adapter) == expected


def test_find_runs_takes_folders_results_and_samples_files(tmp_path):
    runs, errors = outputs.find_runs([RUNS / "a", RUNS / "b" / f"results_{DATE}.json",
                                      RUNS / "c" / "samples_rolebench_specific_en_2026-01-02T00-00-00.000000.jsonl",
                                      tmp_path / "nope", tmp_path])
    assert [r.name for r in runs] == ["org/model-a", "org/base-7b+org/model-b", "org/model-c"]
    assert sorted(runs[0].samples) == ["rolebench_general_zh", "rolebench_rolegen_specific_en",
                                       "rolebench_specific_en"]
    assert list(runs[2].samples) == ["rolebench_specific_en"]  # a samples file keeps its own task only
    assert [e.problem.split(" ")[0] for e in errors] == ["no", "no"] and str(tmp_path / "nope") in str(errors[0])
    assert runs[0].task_metadata("rolebench_specific_en")["data"]["sha256"] == "a" * 64


def test_samples_without_their_results_file_are_refused(tmp_path):
    src = next((RUNS / "a").glob("samples_rolebench_specific_en_*.jsonl"))
    shutil.copy(src, tmp_path)
    runs, errors = outputs.find_runs([tmp_path / src.name])
    assert not runs and "point at the whole output folder" in str(errors[0])


def test_latest_samples_keeps_the_newest_run_of_each_name_and_task(tmp_path):
    shutil.copytree(RUNS / "a", tmp_path / "a")
    newer = "2026-02-01T00-00-00.000000"
    for path in (tmp_path / "a").glob(f"*_{DATE}.json*"):
        shutil.copy(path, path.with_name(path.name.replace(DATE, newer)))
    runs, _ = outputs.find_runs([tmp_path])
    chosen = outputs.latest_samples(runs)
    assert len(runs) == 2 and {path.name.split("_")[-1] for _, _, path in chosen} == {f"{newer}.jsonl"}


def test_records_and_scores_agree_on_every_item():
    path = RUNS / "a" / f"samples_rolebench_specific_en_{DATE}.jsonl"
    records = outputs.read_records(path)
    scores = outputs.read_scores(path, ("spe", "cus"))
    assert scores.doc_ids.tolist() == [r.doc_id for r in records]
    assert scores.metrics["spe"].tolist() == [r.metrics["spe"] for r in records]
    assert np.isnan(scores.metrics["cus"]).all()
    assert [scores.role_names[c] for c in scores.roles] == [r.doc["role"] for r in records]
    assert scores.types.tolist() == [outputs.TYPE_BITS[r.doc["type"][0]] for r in records]


def test_a_line_separator_inside_an_answer_is_one_item(tmp_path):
    src = RUNS / "a" / f"samples_rolebench_general_zh_{DATE}.jsonl"
    rows = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines()]
    rows[1]["filtered_resps"] = ["one\u2028two\u0085three"]
    path = tmp_path / src.name
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    records = outputs.read_records(path)
    assert len(records) == len(rows) and records[1].response == "one\u2028two\u0085three"
    assert outputs.read_scores(path, ("cus",)).doc_ids.size == len(rows)


def test_bad_items_name_file_line_and_field(tmp_path):
    src = RUNS / "a" / f"samples_rolebench_general_zh_{DATE}.jsonl"
    lines = src.read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[3])
    row["cus"] = "high"
    lines[3] = json.dumps(row, ensure_ascii=False)
    path = tmp_path / src.name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for read in (lambda: outputs.read_records(path), lambda: outputs.read_scores(path, ("cus",))):
        with pytest.raises(InputError) as err:
            read()
        assert (err.value.path, err.value.line, err.value.field) == (str(path), 4, "cus")
        assert "expected a number" in err.value.problem


def test_records_at_positions_decoded_at_once_equal_those_decoded_line_by_line(tmp_path, monkeypatch):
    """The item browser's reader decodes all the lines it is asked in one call; any line it cannot take
    that way is read on its own, so a bad one is still named by its line and field."""
    from rolebench_eval.outputs import records

    path = RUNS / "a" / f"samples_rolebench_general_zh_{DATE}.jsonl"
    got = outputs.read_scores(path, ("cus",))
    at = list(zip(got.offsets.tolist(), got.lines.tolist()))[::-1]
    batched = [outputs.read_records_at(path, at, ("cus",), docs) for docs in (True, False)]
    monkeypatch.setattr(records, "_decode_all", lambda *args: None)
    assert batched == [outputs.read_records_at(path, at, ("cus",), docs) for docs in (True, False)]
    assert [r.doc_id for r in batched[0]] == got.doc_ids.tolist()[::-1] and batched[1][0].doc is None
    monkeypatch.undo()
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    for line, fix, field in ((2, lambda row: row.update(cus=True), "cus"), (3, lambda row: None, None)):
        row = json.loads(lines[line - 1])
        fix(row)
        text = json.dumps(row, ensure_ascii=False) + "\n"
        bad = tmp_path / f"{line}.jsonl"
        bad.write_text("".join(lines[:line - 1]) + (text if field else text[:40] + "\n") + "".join(lines[line:]),
                       encoding="utf-8")
        offsets = [len("".join(lines[:i]).encode("utf-8")) for i in range(len(lines))]
        with pytest.raises(InputError) as err:
            outputs.read_records_at(bad, [(offsets[i], i + 1) for i in range(3)], ("cus",), with_docs=True)
        assert (err.value.line, err.value.field) == (line, field), str(err.value)
