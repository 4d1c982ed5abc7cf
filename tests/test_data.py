"""Data layer: strict reading, clear errors, location order, provenance, data check."""

from __future__ import annotations

import json

import pytest

from rolebench_eval.data import (
    RoleBenchDataError,
    is_degenerate,
    read_baseline,
    read_descriptions,
    read_items,
)
from rolebench_eval.catalogue import splits
from rolebench_eval.datacheck import check_data, format_report
from rolebench_eval.fileio import sha256_file
from rolebench_eval.source import DataSource, load_split

GOOD = {"role": "Marlow Finch", "question": " Why?", "generated": [" Because."], "type": "script_based"}


def write_lines(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_reads_fixture_keeping_raw_text(fixture_data_dir):
    items = read_items(fixture_data_dir / "rolebench-eng/instruction-generalization/role_specific/test.jsonl")
    assert len(items) == 3
    assert items[0].question.startswith(" Marlow Finch")  # leading space kept
    assert items[0].references[0].startswith(" The navy")
    assert items[2].types == ("script_based",)  # a plain string becomes a tuple


@pytest.mark.parametrize("line,field,problem", [
    ("{not json", None, "invalid JSON"),
    (json.dumps(["a list"]), None, "expected a JSON object"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "role"}), "role", "missing"),
    (json.dumps(GOOD | {"question": 3}), "question", "expected a string"),
    (json.dumps(GOOD | {"question": "   "}), "question", "empty"),
    (json.dumps(GOOD | {"generated": "one answer"}), "generated", "expected a list"),
    (json.dumps(GOOD | {"generated": []}), "generated", "empty list"),
    (json.dumps(GOOD | {"generated": ["ok", None]}), "generated[1]", "expected a string"),
    (json.dumps(GOOD | {"type": 7}), "type", "expected a string or a list"),
])
def test_malformed_row_names_file_line_and_field(tmp_path, line, field, problem):
    path = write_lines(tmp_path / "test.jsonl", [json.dumps(GOOD), "", line])
    with pytest.raises(RoleBenchDataError) as err:
        read_items(path)
    assert err.value.line == 3 and err.value.field == field
    assert str(err.value).startswith(f"{path}:3:") and problem in str(err.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(RoleBenchDataError, match="file not found"):
        read_items(tmp_path / "nope.jsonl")


def test_blank_lines_are_not_rows(tmp_path):
    path = write_lines(tmp_path / "t.jsonl", ["", json.dumps(GOOD), "   ", json.dumps(GOOD)])
    assert len(read_items(path)) == 2


def test_degenerate_references():
    assert is_degenerate(" (No response provided)")
    assert is_degenerate("(No dialogue provided in the script to generate a response)")
    assert is_degenerate("   ")
    assert not is_degenerate("(smiling) No response is needed, lad.")
    assert not is_degenerate("No.")


def test_baseline_conflict_is_an_error(tmp_path):
    a = GOOD | {"generated": ["first"]}
    path = write_lines(tmp_path / "b.jsonl", [json.dumps(a), json.dumps(a), json.dumps(a | {"generated": ["other"]})])
    with pytest.raises(RoleBenchDataError, match=r"rows 1 and 3"):
        read_baseline(path)
    assert read_baseline(write_lines(tmp_path / "ok.jsonl", [json.dumps(a)] * 2)) == {(a["role"], a["question"]): "first"}


def test_descriptions_validated(tmp_path):
    (tmp_path / "d.json").write_text(json.dumps({"A": "x", "B": 3}), encoding="utf-8")
    with pytest.raises(RoleBenchDataError, match="field 'B'"):
        read_descriptions(tmp_path / "d.json")
    (tmp_path / "e.json").write_text("[1]", encoding="utf-8")
    with pytest.raises(RoleBenchDataError, match="JSON object"):
        read_descriptions(tmp_path / "e.json")


def test_location_order(tmp_path, monkeypatch, fixture_data_dir):
    monkeypatch.setenv("ROLEBENCH_DATA_DIR", str(fixture_data_dir))
    assert DataSource.resolve(tmp_path).local_root == tmp_path.resolve()  # explicit beats env
    assert DataSource.resolve().local_root == fixture_data_dir.resolve()  # env beats hub
    monkeypatch.delenv("ROLEBENCH_DATA_DIR")
    hub = DataSource.resolve()
    assert hub.local_root is None and hub.revision == "main"
    with pytest.raises(RoleBenchDataError, match="data folder not found"):
        DataSource.resolve(tmp_path / "missing")


def test_hub_provenance_records_the_commit(tmp_path):
    fetched = tmp_path / "datasets--ZenMoore--RoleBench" / "snapshots" / "abc123" / "x" / "test.jsonl"
    assert DataSource(None, "main").describe(fetched) == {
        "origin": "hub", "repo": "ZenMoore/RoleBench", "revision": "main", "commit": "abc123"}


def test_load_split_joins_baseline_and_descriptions(fixture_data_dir):
    data = load_split("specific_en", fixture_data_dir)
    assert len(data.items) == 3 and len(data.baseline) == 2
    assert data.descriptions["Marlow Finch"].startswith("a gruff")
    assert data.provenance["file"] == "rolebench-eng/instruction-generalization/role_specific/test.jsonl"
    path = fixture_data_dir / data.provenance["file"]
    assert data.provenance["sha256"] == sha256_file(path)
    assert load_split("rolegen_general_en", fixture_data_dir).baseline is None  # not released


def test_load_split_missing_test_file_says_how_to_fix(tmp_path):
    with pytest.raises(RoleBenchDataError, match="ROLEBENCH_DATA_DIR"):
        load_split("general_en", tmp_path)
    with pytest.raises(ValueError, match="known: general_en"):
        load_split("nope", tmp_path)


def test_splits_table_matches_the_dataset_layout():
    assert set(splits()) == {"general_en", "specific_en", "rolegen_general_en", "rolegen_specific_en",
                             "general_zh", "specific_zh"}
    assert {s.lang for s in splits().values()} == {"en", "zh"}


def test_data_check_on_fixtures(fixture_data_dir):
    report = check_data(fixture_data_dir)
    by_key = {(f.split, f.file): f for f in report.files}
    spe = by_key[("specific_en", "test")]
    assert (spe.rows, spe.roles, spe.degenerate_refs, spe.baseline_coverage) == (3, 2, 1, "2/3")
    assert spe.types == {"script_agnostic": 1, "script_based": 2}
    assert by_key[("general_en", "test")].refs_per_item == {1: 1, 2: 2, 3: 1}
    assert "profiles-zh/desc.json (role prompts fall back to the role name alone)" in report.missing
    assert not report.problems
    assert "No problems found." in format_report(report)


def test_data_check_reports_problems_and_goes_on(tmp_path, fixture_data_dir):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(fixture_data_dir, root)
    bad = root / "rolebench-zh/general/test.jsonl"
    bad.write_text(bad.read_text(encoding="utf-8") + json.dumps(GOOD | {"generated": []}) + "\n", encoding="utf-8")
    report = check_data(root)
    assert report.problems == [f"{bad}:3: field 'generated': empty list: an item needs at least one reference"]
    assert ("specific_zh", "test") in {(f.split, f.file) for f in report.files}  # the rest is still read


@pytest.mark.integration
def test_real_data_reads_cleanly(real_data_dir):
    report = check_data(real_data_dir)
    assert not report.problems
    spe = next(f for f in report.files if (f.split, f.file) == ("specific_en", "test"))
    assert (spe.rows, spe.roles, spe.degenerate_refs, spe.baseline_coverage) == (4750, 95, 2, "4750/4750")
    rolegen = next(f for f in report.files if (f.split, f.file) == ("rolegen_specific_en", "test"))
    assert rolegen.baseline_coverage == "500/2534"


def _fake_hub_cache(cache, fixture_data_dir, commit="0123abcd"):
    """A Hugging Face cache holding the fixture copy as dataset ZenMoore/RoleBench@main."""
    import shutil

    repo = cache / "datasets--ZenMoore--RoleBench"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(fixture_data_dir, repo / "snapshots" / commit)
    absent = repo / ".no_exist" / commit / "profiles-zh" / "desc.json"  # how the cache marks missing files
    absent.parent.mkdir(parents=True)
    absent.touch()
    return commit


def test_hub_source_through_huggingface_hub(tmp_path, monkeypatch, fixture_data_dir):
    import huggingface_hub.constants

    commit = _fake_hub_cache(tmp_path, fixture_data_dir)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    data = load_split("specific_zh")  # no data_dir, no env: the Hub (offline, from the cache)
    assert len(data.items) == 2 and data.provenance["commit"] == commit and data.provenance["origin"] == "hub"
    # offline and not cached is an error, never "the file does not exist"
    (tmp_path / "datasets--ZenMoore--RoleBench" / "snapshots" / commit / "profiles-eng" / "desc.json").unlink()
    with pytest.raises(RoleBenchDataError, match="not in the local Hugging Face cache"):
        load_split("specific_en")


# ------------------------------------------------------------------ what run refuses, data check refuses


def _copy(fixture_data_dir, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(fixture_data_dir, root)
    return root


def _non_utf8(path):
    path.write_bytes(path.read_bytes().replace("老船长".encode(), b"\xff\xfe", 1))


def _gb18030(path):
    path.write_bytes(path.read_text(encoding="utf-8").encode("gb18030"))


def _empty(path):
    path.write_text("", encoding="utf-8")


def _bad_desc(path):
    (path.parents[2] / "profiles-zh").mkdir(exist_ok=True)
    (path.parents[2] / "profiles-zh" / "desc.json").write_text('{"老船长": "x",', encoding="utf-8")


@pytest.mark.parametrize("damage, expected", [
    (_non_utf8, ":1: not valid UTF-8"),
    (_gb18030, ":1: not valid UTF-8"),
    (_empty, "no rows: a split file needs at least one item"),
    (_bad_desc, "desc.json:1: invalid JSON"),
])
def test_data_check_and_run_refuse_the_same_files_with_the_same_line(tmp_path, fixture_data_dir, damage, expected):
    root = _copy(fixture_data_dir, tmp_path)
    damage(root / "rolebench-zh/general/test.jsonl")
    with pytest.raises(RoleBenchDataError) as err:
        load_split("general_zh", root)
    assert expected in str(err.value) and str(root) in str(err.value)
    report = check_data(root)
    assert str(err.value) in report.problems
    assert "Problems (run refuses these)" in format_report(report)


def test_data_check_treats_a_folder_without_rolebench_files_as_a_problem(tmp_path):
    report = check_data(tmp_path)
    assert report.problems == [f"{tmp_path}: no RoleBench split files in this folder (expected the layout of the "
                               "Hub dataset, e.g. rolebench-eng/instruction-generalization/general/test.jsonl)"]


def test_rows_kept_as_released_are_counted_not_refused(tmp_path, fixture_data_dir):
    root = _copy(fixture_data_dir, tmp_path)
    path = root / "rolebench-zh/role_specific/test.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    extra = [rows[0], rows[1] | {"generated": [""], "question": "新问题？"},
             rows[1] | {"type": "SCRIPT_BASED ", "question": "第三个问题？"},
             rows[1] | {"type": ["", "Script_Agnostic", "scene-based"], "question": "第四个问题？"}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows + extra), encoding="utf-8")
    data = load_split("specific_zh", root)
    assert [i.types for i in data.items[-2:]] == [("script_based",), ("script_agnostic", "scene-based")]
    audit = data.audit
    assert (audit["rows"], audit["duplicate_rows"], audit["duplicate_example"]) == (6, 1, "lines 1 and 3")
    assert (audit["items_without_usable_reference"], audit["unknown_types"]) == (1, {"scene-based": 1})
    report = check_data(root)
    assert not report.problems
    notes = next(f for f in report.files if (f.split, f.file) == ("specific_zh", "test")).remarks
    assert notes == ["1 duplicate (role, question) rows, e.g. lines 1 and 3",
                     "1 items whose references are all empty or placeholders (every model scores 0 on them)",
                     "unknown item types (after trimming and lower-casing): 'scene-based' x1"]


# ------------------------------------------------------------------ RAW: the original answers


def test_raw_answers_are_matched_on_normalised_questions(fixture_data_dir):
    data = load_split("general_en", fixture_data_dir)
    assert data.raw == ["Grey, violet and gold.", "The harbour closed due to fog.", None, "Four."]
    assert data.raw_provenance["fields"] == {"target": 6}
    assert data.raw_provenance["coverage"] == "3 of 4 items have a raw answer"
    assert data.audit["raw_answers"] == "3 of 4 items"
    assert load_split("specific_en", fixture_data_dir).raw is None  # RAW is a general-instruction metric


def test_raw_file_accepts_answer_and_output_and_says_which(tmp_path, fixture_data_dir):
    root = _copy(fixture_data_dir, tmp_path)
    raw = root / "instructions-zh" / "instructions-general.jsonl"
    raw.parent.mkdir()
    raw.write_text(json.dumps({"instruction": "用一句话形容大海。", "answer": "大海很大。"}, ensure_ascii=False) + "\n"
                   + json.dumps({"question": " 一加一等于几？ ", "output": "二。"}, ensure_ascii=False) + "\n",
                   encoding="utf-8")
    data = load_split("general_zh", root)
    assert data.raw == ["大海很大。", "二。"] and data.raw_provenance["fields"] == {"answer": 1, "output": 1}
    raw.write_text(json.dumps({"instruction": "x", "reply": "y"}) + "\n", encoding="utf-8")
    with pytest.raises(RoleBenchDataError, match=r"instructions-general.jsonl:1: field 'target': missing"):
        load_split("general_zh", root)
