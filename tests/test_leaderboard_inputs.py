"""Leaderboard inputs: lm-eval results and samples files, naming, corrupt files, the cache."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from rolebench_eval.leaderboard import cache
from rolebench_eval.leaderboard.errors import LoadError
from rolebench_eval import outputs
from rolebench_eval.leaderboard.inputs import apply_names, attach_samples, discover
from rolebench_eval.leaderboard.inputs import read_run as _read_run
from rolebench_eval.leaderboard.samples import DocIndex, read_samples
from rolebench_eval.leaderboard.schema import load_schema

RUNS = Path(__file__).resolve().parent / "fixtures" / "leaderboard" / "runs"
DATE = "2026-01-01T00-00-00.000000"
TASKS = load_schema().tasks


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def read_run(path, source, tasks):
    return _read_run(outputs.read_run(path, source), tasks)


def test_read_run_takes_scores_versions_and_provenance():
    run = read_run(RUNS / "b" / f"results_{DATE}.json", RUNS, TASKS)
    assert run.name == run.run_name == "org/base-7b+org/model-b"  # base model plus adapter
    assert sorted(run.tasks) == ["rolebench_general_zh", "rolebench_rolegen_specific_en", "rolebench_specific_en"]
    spe = run.tasks["rolebench_specific_en"]
    assert spe.version == "1.0" and spe.data == "a" * 64 and spe.prompt_version == "1"
    assert spe.values["spe"] == pytest.approx(np.mean(
        [0.30, 0.42, 0.25, 0.38, 0.33, 0.29, 0.45, 0.31, 0.36, 0.27, 0.40, 0.34]))
    assert run.limit is None
    assert read_run(RUNS / "limited" / f"results_{DATE}.json", RUNS, TASKS).limit == 4.0


def test_samples_are_read_like_json_and_sorted_by_doc_id(tmp_path):
    path = RUNS / "a" / f"samples_rolebench_specific_en_{DATE}.jsonl"
    shuffled = tmp_path / path.name
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    shuffled.write_text("".join(lines[::-1]), encoding="utf-8")
    index = DocIndex()
    items = read_samples(shuffled, ("spe", "rougeL_f", "resp_tokens", "cus"), index)
    records = sorted(_lines(path), key=lambda r: r["doc_id"])
    assert items.doc_ids.tolist() == [r["doc_id"] for r in records]
    assert items.metrics["spe"].tolist() == [r["spe"] for r in records]
    assert items.metrics["resp_tokens"].tolist() == [r["resp_tokens"] for r in records]
    assert np.isnan(items.metrics["cus"]).all()  # not a metric of this task
    assert [index.roles[c] for c in items.roles] == [r["doc"]["role"] for r in records]
    assert items.types.tolist() == [2 if r["doc"]["type"] == ["script_agnostic"] else 1 for r in records]


def test_lines_in_another_layout_are_parsed_one_by_one(tmp_path):
    """Compact separators defeat the fast path; the result must be the same."""
    path = RUNS / "a" / f"samples_rolebench_general_zh_{DATE}.jsonl"
    compact = tmp_path / path.name
    compact.write_text("".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n"
                               for r in _lines(path)), encoding="utf-8")
    fast = read_samples(path, ("cus",), DocIndex())
    slow = read_samples(compact, ("cus",), DocIndex())
    assert fast.doc_ids.tolist() == slow.doc_ids.tolist()
    assert fast.metrics["cus"].tolist() == slow.metrics["cus"].tolist()


def test_unscored_items_are_nan_not_zero(tmp_path):
    path = tmp_path / "samples_rolebench_general_zh_x.jsonl"
    records = _lines(RUNS / "a" / f"samples_rolebench_general_zh_{DATE}.jsonl")
    for key in ("cus", "rougeL_f", "resp_tokens"):
        records[2].pop(key)  # the rolegpt replay leaves items without an answer unscored
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    items = read_samples(path, ("cus",), DocIndex())
    assert np.isnan(items.metrics["cus"][2]) and not np.isnan(items.metrics["cus"]).sum() > 1


@pytest.mark.parametrize("damage, line, field, reason", [
    (lambda text: text[:-40], 6, None, "truncated"),
    (lambda text: text.replace('"doc_id": 2, ', '"doc_id": 2, {{', 1), 3, None, "invalid JSON"),
    (lambda text: text.replace('"cus": 0.58', '"cus": "high"', 1), 3, "cus", "expected a number"),
    (lambda text: text.replace('"doc_id": 4, ', '"doc_id": 1, ', 1), None, "doc_id", "more than once"),
])
def test_corrupt_samples_name_file_line_and_field(tmp_path, damage, line, field, reason):
    path = tmp_path / "samples_rolebench_general_zh_x.jsonl"
    text = (RUNS / "b" / f"samples_rolebench_general_zh_{DATE}.jsonl").read_text(encoding="utf-8")
    path.write_text(damage(text), encoding="utf-8")
    with pytest.raises(LoadError) as err:
        read_samples(path, ("cus",), DocIndex())
    assert err.value.path == str(path) and err.value.line == line and err.value.field == field
    assert reason in str(err.value) and str(path) in str(err.value)


def test_corrupt_results_file_is_named():
    with pytest.raises(LoadError) as err:
        read_run(RUNS / "corrupt_results" / f"results_{DATE}.json", RUNS, TASKS)
    assert "corrupt_results" in err.value.path and err.value.line is not None


def test_samples_of_another_run_are_rejected(tmp_path):
    shutil.copytree(RUNS / "a", tmp_path / "a")
    shutil.copy(RUNS / "b" / f"samples_rolebench_specific_en_{DATE}.jsonl", tmp_path / "a")
    run = read_run(tmp_path / "a" / f"results_{DATE}.json", tmp_path, TASKS)
    with pytest.raises(LoadError, match="samples of another run"):
        attach_samples(run, DocIndex())


def test_discover_searches_folders_and_reports_missing_inputs(tmp_path):
    found, errors = discover([RUNS / "a", RUNS / "b" / f"results_{DATE}.json", tmp_path / "nope", tmp_path])
    assert [run.folder.name for run in found] == ["a", "b"]
    assert [Path(e.path).name for e in errors] == ["nope", tmp_path.name]


def test_names_map_folders_files_and_model_names():
    run = read_run(RUNS / "a" / f"results_{DATE}.json", RUNS / "a", TASKS)
    apply_names(run, {str(RUNS / "a"): "Model A"})
    assert run.name == "Model A" and run.run_name == "org/model-a"
    other = read_run(RUNS / "c" / "results_2026-01-02T00-00-00.000000.json", RUNS, TASKS)
    apply_names(other, {"org/model-c": "Model C", "unrelated": "x"})
    assert other.name == "Model C"


def test_cache_returns_the_same_scores_and_notices_changes(tmp_path):
    source = tmp_path / "samples_rolebench_specific_en_x.jsonl"
    shutil.copy(RUNS / "a" / f"samples_rolebench_specific_en_{DATE}.jsonl", source)
    metrics = ("spe", "rougeL_f")
    index = DocIndex()
    fresh = read_samples(source, metrics, index)
    root = tmp_path / "cache"
    assert cache.load(root, source, metrics, index) is None
    cache.save(root, source, metrics, fresh, index)
    other_index = DocIndex(roles=["someone else"], role_codes={"someone else": 0})
    cached = cache.load(root, source, metrics, other_index)
    assert cached.doc_ids.tolist() == fresh.doc_ids.tolist()
    assert cached.metrics["spe"].tolist() == fresh.metrics["spe"].tolist()
    assert [other_index.roles[c] for c in cached.roles] == [index.roles[c] for c in fresh.roles]
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))
    assert cache.load(root, source, metrics, index) is None  # the file changed: a miss
    entry = cache.entry(root, source, metrics)
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_bytes(b"not a zip file")
    assert cache.load(root, source, metrics, index) is None  # unreadable entries are misses too
