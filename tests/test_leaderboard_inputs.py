"""Leaderboard inputs: results and samples files, the fast reader, the cache, parallel reading, labels."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from rolebench_eval import outputs
from rolebench_eval.errors import InputError
from rolebench_eval.leaderboard import scores, workers
from rolebench_eval.leaderboard.inputs import apply_names, read_run as _read_run, short_names, split_name
from rolebench_eval.leaderboard.model import load_schema

RUNS = Path(__file__).resolve().parent / "fixtures" / "leaderboard" / "runs"
DATE = "2026-01-01T00-00-00.000000"
TASKS = load_schema().tasks
ALL = ("cus", "spe", "raw", "rougeL_f", "resp_tokens")


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def read_run(path, source, tasks=TASKS):
    return _read_run(outputs.read_run(path, source), tasks)


def test_read_run_takes_scores_versions_and_provenance():
    run = read_run(RUNS / "b" / f"results_{DATE}.json", RUNS)
    assert run.run_name == "org/base-7b+org/model-b" and run.label is None  # base model plus adapter
    assert (run.model, run.adapter) == ("org/base-7b", "org/model-b")
    assert sorted(run.tasks) == ["rolebench_general_zh", "rolebench_rolegen_specific_en", "rolebench_specific_en"]
    spe = run.tasks["rolebench_specific_en"]
    assert spe.version == "1.1" and spe.data == "a" * 64 and spe.prompt_version == "1"
    assert spe.values["spe"] == pytest.approx(np.mean(
        [0.30, 0.42, 0.25, 0.38, 0.33, 0.29, 0.45, 0.31, 0.36, 0.27, 0.40, 0.34]))
    assert run.limit is None
    assert read_run(RUNS / "limited" / f"results_{DATE}.json", RUNS).limit == 4.0
    mt = read_run(RUNS / "mt_a" / "results_2026-01-03T00-00-00.000000.json", RUNS)
    assert list(mt.tasks) == ["rolebench_mt_specific_en"] and "spe_d4" in mt.tasks["rolebench_mt_specific_en"].values


def test_scores_are_read_like_json_sorted_by_doc_id_with_their_line_positions(tmp_path):
    path = RUNS / "a" / f"samples_rolebench_general_zh_{DATE}.jsonl"
    shuffled = tmp_path / path.name
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    shuffled.write_text("".join(lines[::-1]), encoding="utf-8")
    got = outputs.read_scores(shuffled, ALL)
    records = sorted(_lines(path), key=lambda r: r["doc_id"])
    assert got.doc_ids.tolist() == [r["doc_id"] for r in records]
    assert got.metrics["cus"].tolist() == [r["cus"] for r in records]
    assert np.isnan(got.metrics["spe"]).all()  # not a metric of this task
    assert [np.isnan(v) for v in got.metrics["raw"]] == ["raw" not in r for r in records]
    assert [got.role_names[c] for c in got.roles] == [r["doc"]["role"] for r in records]
    assert got.item_ids is None and got.depths is None
    again = outputs.read_records_at(shuffled, zip(got.offsets.tolist(), got.lines.tolist()))
    assert [r.doc_id for r in again] == got.doc_ids.tolist()
    assert [r.response for r in again] == [r["filtered_resps"][0] for r in records]
    assert got.lines.tolist() == [len(lines) - i for i in range(len(lines))]


def test_multi_turn_documents_give_item_ids_and_depths():
    path = next((RUNS / "mt_a").glob("samples_*.jsonl"))
    got = outputs.read_scores(path, ("spe_d1", "spe_d4"))
    records = _lines(path)
    assert [got.item_names[c] for c in got.item_ids] == [r["doc"]["item_id"] for r in records]
    assert got.depths.tolist() == [r["doc"]["depth"] for r in records]
    assert int((~np.isnan(got.metrics["spe_d4"])).sum()) == 6


def test_blank_lines_and_compact_separators_read_the_same(tmp_path):
    path = RUNS / "a" / f"samples_rolebench_specific_en_{DATE}.jsonl"
    other = tmp_path / path.name
    rows = _lines(path)
    other.write_text("\n" + "\n\n".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False) for r in rows)
                     + "\n", encoding="utf-8")
    fast, slow = outputs.read_scores(path, ("spe",)), outputs.read_scores(other, ("spe",))
    assert fast.doc_ids.tolist() == slow.doc_ids.tolist()
    assert fast.metrics["spe"].tolist() == slow.metrics["spe"].tolist()
    assert slow.lines.tolist() == [2 * i + 2 for i in range(len(rows))]
    assert [r.doc_id for r in outputs.read_records_at(other, zip(slow.offsets, slow.lines))] == fast.doc_ids.tolist()


@pytest.mark.parametrize("chunk", [256, 2048, 5000])
def test_a_file_read_in_chunks_of_lines_reads_as_one_chunk(monkeypatch, tmp_path, chunk):
    """Lines longer than a chunk (256), chunks of a few lines: the columns of the whole file in one chunk,
    item types included (msgspec's raw values point into what was decoded, and the buffer is reused);
    a bad line or a cut-off end in a later chunk is named by its line."""
    from rolebench_eval.outputs import scores as reader

    path = RUNS / "a" / f"samples_rolebench_specific_en_{DATE}.jsonl"
    whole = outputs.read_scores(path, ALL)
    monkeypatch.setattr(reader, "CHUNK", chunk)
    got = outputs.read_scores(path, ALL)
    assert got.doc_ids.tolist() == whole.doc_ids.tolist() == list(range(12))
    assert all(np.array_equal(got.metrics[m], whole.metrics[m], equal_nan=True) for m in ALL)
    assert [got.role_names[c] for c in got.roles] == [whole.role_names[c] for c in whole.roles]
    records = _lines(path)
    assert got.types.tolist() == [_scores_types(r) for r in records] == whole.types.tolist()
    assert got.offsets.tolist() == whole.offsets.tolist() and got.lines.tolist() == list(range(1, 13))
    text = path.read_text(encoding="utf-8")
    bad = tmp_path / path.name
    bad.write_text(text.replace('"doc_id": 10, ', '"doc_id": 10, {{', 1), encoding="utf-8")
    with pytest.raises(InputError) as err:
        outputs.read_scores(bad, ALL)
    assert err.value.line == 11 and "invalid JSON" in str(err.value)
    bad.write_text(text[:-40], encoding="utf-8")
    with pytest.raises(InputError) as err:
        outputs.read_scores(bad, ALL)
    assert err.value.line == 12 and "truncated" in str(err.value)


def _scores_types(record: dict) -> int:
    return sum(outputs.TYPE_BITS[t] for t in record["doc"]["type"])


def test_whole_file_decoding_falls_back_line_by_line_whenever_lines_and_values_may_differ(tmp_path):
    """Two values on one line plus a blank line elsewhere (as many values as lines), CRLF, lone surrogates."""
    path = RUNS / "a" / f"samples_rolebench_specific_en_{DATE}.jsonl"
    rows, fast = _lines(path), outputs.read_scores(path, ("spe",))
    text = [json.dumps(r, ensure_ascii=False) for r in rows]
    two = tmp_path / "two.jsonl"
    two.write_text("\n".join([text[0] + " " + text[1], "", *text[2:]]) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        outputs.read_scores(two, ("spe",))
    assert err.value.line == 1 and "invalid JSON" in str(err.value)
    crlf = tmp_path / "crlf.jsonl"
    crlf.write_bytes("".join(t + "\r\n" for t in text).encode("utf-8"))
    got = outputs.read_scores(crlf, ("spe",))
    assert got.doc_ids.tolist() == fast.doc_ids.tolist() and got.lines.tolist() == list(range(1, len(rows) + 1))
    assert got.metrics["spe"].tolist() == fast.metrics["spe"].tolist()
    lone = tmp_path / "lone.jsonl"
    lone.write_text("\n".join(text[:2] + [text[2].replace(json.dumps(rows[2]["doc"]["role"], ensure_ascii=False),
                                                            '"\\ud800x"', 1)] + text[3:]) + "\n", encoding="utf-8")
    got = outputs.read_scores(lone, ("spe",))
    assert got.role_names[got.roles[2]] == "\ufffdx" and got.metrics["spe"].tolist() == fast.metrics["spe"].tolist()


@pytest.mark.parametrize("damage, line, field, reason", [
    (lambda text: text[:-40], 6, None, "truncated"),
    (lambda text: text.replace('"doc_id": 2, ', '"doc_id": 2, {{', 1), 3, None, "invalid JSON"),
    (lambda text: text.replace('"cus": 0.58', '"cus": "high"', 1), 3, "cus", "expected a number"),
    (lambda text: text.replace('"role": "老船长"', '"role": 7', 1), 1, "doc.role", "expected str, got int"),
    (lambda text: text.replace('"doc_id": 4, ', '"doc_id": 1, ', 1), None, "doc_id", "more than once"),
])
def test_corrupt_samples_name_file_line_and_field(tmp_path, damage, line, field, reason):
    path = tmp_path / "samples_rolebench_general_zh_x.jsonl"
    text = (RUNS / "b" / f"samples_rolebench_general_zh_{DATE}.jsonl").read_text(encoding="utf-8")
    path.write_text(damage(text), encoding="utf-8")
    with pytest.raises(InputError) as err:
        outputs.read_scores(path, ("cus",))
    assert err.value.path == str(path) and err.value.line == line and err.value.field == field
    assert reason in str(err.value) and str(path) in str(err.value)


def test_corrupt_results_file_is_named():
    with pytest.raises(InputError) as err:
        read_run(RUNS / "corrupt_results" / f"results_{DATE}.json", RUNS)
    assert "corrupt_results" in err.value.path and err.value.line is not None


def test_cache_is_one_npz_per_run_that_returns_the_same_scores_and_notices_changes(tmp_path):
    mt, zh = tmp_path / "samples_rolebench_mt_specific_en_x.jsonl", tmp_path / "samples_rolebench_general_zh_x.jsonl"
    shutil.copy(next((RUNS / "mt_a").glob("samples_*.jsonl")), mt)
    shutil.copy(RUNS / "a" / f"samples_rolebench_general_zh_{DATE}.jsonl", zh)
    job = [(mt, ("spe_d1", "spe_d4", "break_d4")), (zh, ("cus", "raw"))]
    fresh = [outputs.read_scores(path, metrics) for path, metrics in job]
    root = tmp_path / "cache"
    assert scores.load(root, job) is None
    scores.save(root, job, fresh)
    entry = scores.entry(root, job)
    assert entry.suffix == ".npz" and set(np.load(entry)) == {"meta", "warm", "offsets", "lines"}
    cached = scores.load(root, job)
    assert all(c.offsets is None for c in cached)  # read only when the item browser asks
    for one, again in zip(fresh, cached):
        again.positions()
        for name in ("doc_ids", "roles", "types", "offsets", "lines"):
            assert getattr(again, name).tolist() == getattr(one, name).tolist(), name
            assert getattr(again, name).dtype == getattr(one, name).dtype, name
        assert again.role_names == one.role_names and again.item_names == one.item_names
        assert list(again.metrics) == list(one.metrics)
        for m in one.metrics:
            assert np.array_equal(again.metrics[m], one.metrics[m], equal_nan=True)
    assert cached[0].item_ids.tolist() == fresh[0].item_ids.tolist() and cached[1].item_ids is None
    assert cached[0].depths.tolist() == fresh[0].depths.tolist() and cached[1].depths is None
    assert scores.load(root, [job[0]]) is None  # other files or metrics: another entry
    os.utime(zh, ns=(zh.stat().st_atime_ns, zh.stat().st_mtime_ns + 10**9))
    assert scores.load(root, job) is None  # a file changed: a miss
    entry = scores.entry(root, job)
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_bytes(b"PK\x03\x04 cut short")
    assert scores.load(root, job) is None  # unreadable entries are misses too


def test_cache_keeps_every_value_exactly_whatever_its_columns_hold(tmp_path):
    path = tmp_path / "samples_rolebench_general_zh_x.jsonl"
    shutil.copy(RUNS / "a" / f"samples_rolebench_general_zh_{DATE}.jsonl", path)
    job = [(path, ("cus", "raw", "resp_tokens"))]
    one = outputs.read_scores(path, job[0][1])
    n = one.doc_ids.size
    one.doc_ids = one.doc_ids * 3 + 7  # not 0..n-1: stored
    one.metrics["resp_tokens"] = np.arange(n, dtype=np.float64) - 2  # integer-valued: stored as int32
    one.metrics["raw"] = np.full(n, np.nan)  # all NaN: not stored
    odd = np.linspace(0, 1, n)
    odd[0], odd[-1] = -0.0, 2.0**40  # not exactly int32: stored as float64
    one.metrics["cus"] = odd
    scores.save(tmp_path / "cache", job, [one])
    again = scores.load(tmp_path / "cache", job)[0]
    assert again.doc_ids.tolist() == one.doc_ids.tolist() and again.doc_ids.dtype == np.int64
    for m, values in one.metrics.items():
        assert again.metrics[m].dtype == np.float64
        assert np.array_equal(again.metrics[m], values, equal_nan=True), m
    assert np.signbit(again.metrics["cus"][0])


def test_parallel_reading_equals_reading_here_and_fills_the_cache(tmp_path, monkeypatch):
    jobs = [[(f, ("cus", "spe", "rougeL_f")) for f in sorted((RUNS / run).glob("samples_*.jsonl"))] for run in "abc"]
    here = scores.read_all(jobs, None, workers=1)
    monkeypatch.setattr(workers, "PARALLEL_BYTES", 0)  # worker processes even for these small files
    pooled = scores.read_all(jobs, tmp_path / "cache", workers=2)
    for run_a, run_b in zip(here, pooled):
        for a, b in zip(run_a, run_b):
            assert a.doc_ids.tolist() == b.doc_ids.tolist() and a.role_names == b.role_names
            assert np.array_equal(a.metrics["spe"], b.metrics["spe"], equal_nan=True)
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == len(jobs)  # the workers wrote the entries
    bad = tmp_path / "samples_rolebench_general_zh_bad.jsonl"
    bad.write_text('{"doc_id": 0, "doc": {"role": "x"}, "cus": "high"}\n', encoding="utf-8")
    got = scores.read_all([jobs[0], [(bad, ("cus",))]], tmp_path / "cache2", workers=2)
    assert isinstance(got[1][0], InputError) and got[1][0].line == 1 and got[1][0].field == "cus"
    assert len(list((tmp_path / "cache2").rglob("*.npz"))) == 1  # a run with an unreadable file is not cached


def test_a_name_splits_at_the_equals_sign_whose_path_names_a_run():
    runs = [read_run(RUNS / "a" / f"results_{DATE}.json", RUNS / "a"),
            read_run(RUNS / "b" / f"results_{DATE}.json", RUNS / "b")]
    assert split_name(f"{RUNS / 'a'}=RoleLLaMA lr=2e-4", runs) == (str(RUNS / "a"), "RoleLLaMA lr=2e-4")
    assert split_name("org/model-b=LoRA r=8", runs) == ("org/model-b", "LoRA r=8")  # the adapter names its run
    with pytest.raises(InputError, match="no input, results file, folder or model name matches"):
        split_name("org/nobody=x", runs)
    with pytest.raises(InputError, match="expected PATH=LABEL"):
        split_name("no-equals-sign", runs)
    with pytest.raises(InputError, match="'org/nobody' names no input"):
        apply_names(runs, {"org/nobody": "x"})
    apply_names(runs, {str(RUNS / "a"): "Model A", "org/base-7b+org/model-b": "Model B"})
    assert [r.label for r in runs] == ["Model A", "Model B"] and runs[0].run_name == "org/model-a"


def test_default_names_are_short_unique_and_keep_renames_apart():
    full = {"org/model-a": ("org/model-a", None), "org/base-7b+org/model-b": ("org/base-7b", "org/model-b"),
            "x/runs/a/m+x/runs/a/adapter": ("x/runs/a/m", "x/runs/a/adapter"),
            "y/runs/b/m+y/runs/b/adapter": ("y/runs/b/m", "y/runs/b/adapter"),
            "rolegpt": ("rolegpt", None), "team/rolegpt": ("team/rolegpt", None), "z/model-c": ("z/model-c", None)}
    names = short_names(full, taken={"model-c"})
    assert names == {"org/model-a": "model-a", "org/base-7b+org/model-b": "base-7b+model-b",
                     "x/runs/a/m+x/runs/a/adapter": "a/m+a/adapter", "y/runs/b/m+y/runs/b/adapter": "b/m+b/adapter",
                     "rolegpt": "rolegpt", "team/rolegpt": "team/rolegpt", "z/model-c": "z/model-c"}
    assert short_names({"a": ("a", None), "b": ("a", None)}, set()) == {"a": "a", "b": "b"}


def test_records_at_positions_read_only_what_they_are_asked(tmp_path):
    path = RUNS / "a" / f"samples_rolebench_general_zh_{DATE}.jsonl"
    got = outputs.read_scores(path, ("cus",))
    at = list(zip(got.offsets.tolist(), got.lines.tolist()))[2:4]
    full, light = outputs.read_records_at(path, at), outputs.read_records_at(path, at, ("cus",), with_docs=False)
    assert [r.doc_id for r in full] == [r.doc_id for r in light] == [2, 3]
    assert set(full[0].metrics) == {"cus", "rougeL_f", "resp_tokens"} and set(light[0].metrics) == {"cus"}
    assert light[0].doc is None and light[0].doc_hash == full[0].doc_hash and light[0].response == full[0].response
    bad = tmp_path / path.name
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    row = json.loads(lines[3])
    row["filtered_resps"] = [7]
    bad.write_text("".join(lines[:3]) + json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    offset = int(outputs.read_scores(bad, ("cus",)).offsets[3])
    with pytest.raises(InputError) as err:
        outputs.read_records_at(bad, [(offset, 4)], ("cus",), with_docs=False)
    assert (err.value.line, err.value.field) == (4, "filtered_resps") and "expected generated text" in str(err.value)


def test_a_library_call_starts_no_process_unless_asked(tmp_path, monkeypatch):
    """A user's script without a main guard would run again in every spawned worker: only the CLI spawns."""
    import multiprocessing

    from rolebench_eval.leaderboard import build as build_module
    from rolebench_eval.leaderboard.build import Options, build_leaderboard

    def refuse(*args, **kwargs):
        raise AssertionError("a worker process was started")

    monkeypatch.setattr(multiprocessing, "get_context", refuse)
    monkeypatch.setattr(workers, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(build_module, "BACKGROUND_ITEMS", 0)
    runs = [RUNS / "a", RUNS / "b"]
    board = build_leaderboard(runs, out=tmp_path / "site", options=Options(n_boot=20, workers=2, browse_items=0))
    assert (tmp_path / "site" / "index.html").is_file() and len(board.measured) == 2
    with pytest.raises(AssertionError, match="worker process"):
        build_leaderboard(runs, out=tmp_path / "s2", options=Options(n_boot=20, workers=2, processes=True))
