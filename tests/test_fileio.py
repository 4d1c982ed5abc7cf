"""fileio: the one JSONL reader and writer, atomic writes, JSON reading with file:line errors."""

from __future__ import annotations

import json

import pytest

from rolebench_eval.errors import InputError
from rolebench_eval.fileio import (atomic_handle, load_yaml, read_json, read_jsonl, write_atomic, write_json_atomic,
                                   write_jsonl)


def test_written_rows_hold_no_raw_line_separator_and_read_back(tmp_path):
    rows = [{"answer": "one\u2028two\u2029three\u0085four\r\nfive"}, {"answer": "中文"}]
    path = write_jsonl(tmp_path / "a.jsonl", rows)
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) == 2 and "\u2028" not in text and "中文" in text  # UTF-8, not \\u escapes
    assert [value for _, value in read_jsonl(path)] == rows


def test_a_file_written_raw_by_an_earlier_version_still_reads(tmp_path):
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps({"a": "x\u2028y"}, ensure_ascii=False) + "\n\n" + json.dumps({"b": 1}) + "\n",
                    encoding="utf-8")
    assert list(read_jsonl(path)) == [(1, {"a": "x\u2028y"}), (3, {"b": 1})]


@pytest.mark.parametrize("content, line, problem", [
    (b'{"a": 1}\n{"b": \xff}\n', 2, "not valid UTF-8 (byte 0xff at column 7)"),
    ('{"a": 1}\n{"b": 2\n'.encode(), 2, "invalid JSON"),
    ('{"a": "中"}\n'.encode("gb18030"), 1, "files must be UTF-8"),
])
def test_bad_lines_name_the_file_and_line(tmp_path, content, line, problem):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        list(read_jsonl(path))
    assert (err.value.path, err.value.line) == (str(path), line) and problem in err.value.problem
    assert str(err.value).startswith(f"{path}:{line}: ")


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = write_atomic(tmp_path / "x.json", "old")
    with pytest.raises(RuntimeError):
        with atomic_handle(path) as handle:
            handle.write(b"half of the new")
            raise RuntimeError("killed")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_read_json_names_what_is_wrong(tmp_path):
    with pytest.raises(InputError, match="results file not found"):
        read_json(tmp_path / "nope.json", "results file")
    (tmp_path / "t.json").write_text('{\n  "a": 1,\n', encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_json(tmp_path / "t.json")
    assert err.value.line == 3 and "truncated or corrupt" in err.value.problem


def test_a_lone_surrogate_is_written_as_its_escape_and_reads_back(tmp_path):
    value = {"answer": "cut at the limit \ud83d", "ok": "😀"}  # half an emoji, as json.loads gives it
    write_jsonl(tmp_path / "a.jsonl", [value])
    assert b'"cut at the limit \\ud83d"' in (tmp_path / "a.jsonl").read_bytes()
    assert [row for _, row in read_jsonl(tmp_path / "a.jsonl")] == [value]
    write_json_atomic(tmp_path / "a.json", value)
    assert json.loads((tmp_path / "a.json").read_text(encoding="utf-8")) == value
    write_atomic(tmp_path / "a.html", "<p>\udc80</p>")
    assert (tmp_path / "a.html").read_text(encoding="utf-8") == "<p>\\udc80</p>"


def test_load_yaml_reads_what_safe_load_reads_and_names_a_lone_surrogate(tmp_path):
    """libyaml where PyYAML has it: the same documents; text with a lone surrogate (a non-UTF-8 byte in argv),
    which libyaml cannot take, is the pure loader's YAMLError, as before."""
    import yaml

    text = "a: 1\nb: [x, 'y', {c: null}]\nd: |\n  two\n  lines\ne: 2026-01-01\nf: 1.5e3\ng: ~\n"
    assert load_yaml(text) == yaml.safe_load(text)
    path = tmp_path / "f.yaml"
    path.write_text("a: [1\n", encoding="utf-8")
    with path.open(encoding="utf-8") as handle, pytest.raises(yaml.YAMLError) as err:
        load_yaml(handle)
    assert "f.yaml" in str(err.value)  # a stream's marks name its file
    with pytest.raises(yaml.YAMLError, match="unacceptable character"):
        load_yaml("path: /d/caf\udce9.jsonl")
