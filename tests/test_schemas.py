"""The typed hand-off files: written from their schema, read through it, bad ones named to the field."""

from __future__ import annotations

import json

import msgspec
import pytest

from rolebench_eval.errors import InputError
from rolebench_eval.outputs import codec
from rolebench_eval.outputs.adapter import read_provenance, read_run_record
from rolebench_eval.outputs.generated import read_folder_record
from rolebench_eval.outputs.judge import STATISTICS, decode_summary, make_summary, read_annotations, write

FIELDS = {"model": "org/m", "task": "rolebench_specific_en", "judge": "pairwise", "protocol": "pairwise",
          "n_judged": 3, "n_parsed": 2, "n_parse_failures": 1, "win_rate": 0.75, "ci95": [0.5, 1.0],
          "lc_method": "logistic", "rubric_means": None}


def _error(call) -> InputError:
    with pytest.raises(InputError) as err:
        call()
    return err.value


def test_the_judges_files_read_back_as_written(tmp_path):
    summary = make_summary(FIELDS)
    rows = [{"doc_id": 0, "status": "judged", "score": 1, "value": {"outcome": "win"}, "flip": False},
            {"doc_id": 1, "status": "pending"}]
    write(tmp_path, rows, summary)
    text = (tmp_path / "summary.json").read_text(encoding="utf-8")
    assert json.loads(text)["ci95"] == [0.5, 1.0] and "lc_note" not in json.loads(text)  # unset: not written
    assert decode_summary(text.encode(), tmp_path / "summary.json") == summary
    lines = [json.loads(line) for line in (tmp_path / "annotations.jsonl").read_text(encoding="utf-8").splitlines()]
    assert lines[0]["flip"] is False and "flip" not in lines[1] and lines[1]["score"] is None
    got = list(read_annotations(tmp_path / "annotations.jsonl"))
    assert [(n, a.doc_id, a.status, a.score) for n, a in got] == [(1, 0, "judged", 1.0), (2, 1, "pending", None)]


def test_the_statistics_are_the_schemas_marked_fields():
    assert STATISTICS == ("win_rate", "ci95", "lc_win_rate", "lc_ci95", "mean_rank", "position_flip_rate",
                          "rubric_means", "rubric_ci95", "character_break_rate")


def test_a_field_the_schema_lacks_or_a_wrong_type_is_refused_when_written():
    with pytest.raises(msgspec.ValidationError, match="unknown field `win_rat`"):
        make_summary(FIELDS | {"win_rat": 0.5})
    with pytest.raises(msgspec.ValidationError, match=r"\$\.n_parsed"):
        make_summary(FIELDS | {"n_parsed": -1})


@pytest.mark.parametrize("change, field, problem", [
    ({"win_rate": 1.5}, "win_rate", "expected float <= 1.0"),
    ({"n_judged": "3"}, "n_judged", "expected int, got str"),
    ({"rubric_ci95": {"overall": [1]}}, "rubric_ci95", "expected array of length >= 2"),
    ({"model": ""}, "model", "expected str of length >= 1"),
    ({"n_parsed": None}, "n_parsed", "expected int, got null"),
])
def test_a_bad_summary_names_its_field(tmp_path, change, field, problem):
    path = tmp_path / "summary.json"
    raw = json.dumps(msgspec.to_builtins(make_summary(FIELDS)) | change).encode()
    err = _error(lambda: decode_summary(raw, path))
    assert (err.path, err.line, err.field, err.problem) == (str(path), None, field, problem)


def test_a_missing_field_is_named_as_the_field(tmp_path):
    raw = json.dumps({k: v for k, v in FIELDS.items() if k != "n_parsed"} | {"schema_version": 2}).encode()
    err = _error(lambda: decode_summary(raw, tmp_path / "s.json"))
    assert (err.field, err.problem) == ("n_parsed", "missing")


def test_summary_versions_old_and_new(tmp_path):
    path = tmp_path / "summary.json"
    v1 = {k: v for k, v in FIELDS.items() if not k.startswith("lc_")} | {"schema_version": 1}
    assert decode_summary(json.dumps(v1).encode(), path).lc_win_rate is None  # version 1 reads
    v2 = {k: v for k, v in FIELDS.items()} | {"schema_version": 2}  # before ensembles: their fields unset
    assert decode_summary(json.dumps(v2).encode(), path).members is msgspec.UNSET
    err = _error(lambda: decode_summary(json.dumps(FIELDS | {"schema_version": 4}).encode(), path))
    assert str(err) == (f"{path}: field 'schema_version': is 4; this rolebench-eval reads 1 and 2 and 3: written by a "
                        "newer rolebench-eval: upgrade rolebench-eval to read it")
    err = _error(lambda: decode_summary(json.dumps(FIELDS | {"schema_version": 0}).encode(), path))
    assert err.problem == "is 0; this rolebench-eval reads 1 and 2 and 3: rerun `rolebench-eval judge` to rewrite it"


def test_a_bad_annotation_line_names_line_and_field(tmp_path):
    path = tmp_path / "annotations.jsonl"
    path.write_text('{"doc_id": 0, "status": "judged"}\n\n{"doc_id": 1, "status": "judged", "score": "high"}\n',
                    encoding="utf-8")
    err = _error(lambda: list(read_annotations(path)))
    assert (err.line, err.field, err.problem) == (3, "score", "expected float | null, got str")
    path.write_text('{"doc_id": 0, "status": "maybe"}\n', encoding="utf-8")
    assert _error(lambda: list(read_annotations(path))).field == "status"
    path.write_text('{"doc_id": 0, "status": "judged"}\n{"doc_id": 1, "sta', encoding="utf-8")
    err = _error(lambda: list(read_annotations(path)))
    assert err.line == 2 and err.problem.startswith("invalid JSON")


def test_a_lone_surrogate_escape_reads_as_a_replacement_character(tmp_path):
    path = tmp_path / "summary.json"
    raw = json.dumps(FIELDS | {"model": "org/m\ud800", "schema_version": 2}).encode()  # json writes "\ud800"
    assert decode_summary(raw, path).model == "org/m\ufffd"


def test_the_adapter_records_refuse_a_newer_version(tmp_path):
    path = tmp_path / "rolebench_provenance.json"
    path.write_text(json.dumps({"format_version": 2}), encoding="utf-8")
    err = _error(lambda: read_provenance(path))
    assert (err.field, err.problem) == ("format_version", "is 2; this rolebench-eval reads 1: written by a newer "
                                                          "rolebench-eval: upgrade rolebench-eval to read it")
    path.write_text(json.dumps({"prompt": {"format": "html"}}), encoding="utf-8")
    assert _error(lambda: read_provenance(path)).field == "prompt.format"
    path.write_text(json.dumps({"base_model": {"name_or_path": "m", "path": "/m", "config_sha256": "ab"}}))
    record = read_provenance(path)  # no version: version 1; sections it lacks are empty
    assert (record.format_version, record.base_model.config_sha256, record.result.global_step) == (1, "ab", None)
    assert msgspec.to_builtins(record.base_model) == {"name_or_path": "m", "path": "/m", "config_sha256": "ab"}
    run = tmp_path / "rolebench_run.json"
    run.write_text(json.dumps({"format_version": 1, "settings": {"lora_r": 8}}), encoding="utf-8")
    assert read_run_record(run).settings == {"lora_r": 8}
    run.write_text(json.dumps({"settings": [8]}), encoding="utf-8")
    assert (_error(lambda: read_run_record(run)).field, _error(lambda: read_run_record(run)).line) == ("settings", None)


def test_the_generated_folder_record_reads_format_1_and_refuses_3(tmp_path):
    path = tmp_path / "rolebench_custom.json"
    path.write_text(json.dumps({"format_version": 1, "lang": "en", "roles": {"Pip": {"rolegpt": {"n": 1}}}}))
    record = read_folder_record(path)
    assert (record.lang, record.roles["Pip"].rolegpt, bool(record.roles["Pip"].writing)) == ("en", {"n": 1}, False)
    path.write_text(json.dumps({"format_version": 3, "lang": "en", "roles": {}}))
    assert _error(lambda: read_folder_record(path)).problem.startswith("is 3; this rolebench-eval reads 1 and 2: "
                                                                       "written by a newer rolebench-eval")
    path.write_text(json.dumps({"format_version": 2, "lang": "fr", "roles": {}}))
    assert _error(lambda: read_folder_record(path)).field == "lang"
    path.write_text(json.dumps({"format_version": 2, "lang": "en", "roles": {"Pip": {"writing": 3}}}))
    assert _error(lambda: read_folder_record(path)).field == "roles"


def test_an_input_error_takes_its_four_parts_separately():
    with pytest.raises(TypeError):
        InputError("a whole message")  # the preformatted form is gone
    err = InputError("--max-systems", None, None, "expected at least 2, got 1")
    assert str(err) == "--max-systems: expected at least 2, got 1"
    assert codec.field_and_problem(msgspec.ValidationError("Expected `int`, got `str` - at `$[3].score`")) == (
        "[3].score", "expected int, got str")
