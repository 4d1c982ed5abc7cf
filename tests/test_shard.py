"""Shards (``run --shard K/N``) and ``merge``: the merged parts are the single run, file for file."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from rolebench_eval import evaluate
from rolebench_eval.cli import main
from rolebench_eval.errors import InputError
from rolebench_eval.source import load_split
from rolebench_eval.tasks.multiturn import continuity_docs, settings_from
from rolebench_eval.tasks.runner import _shard_to_metadata
from rolebench_eval.tasks.shard import doc_item, parse_shard, select
from rolebench_eval.tasks.task import build_docs

# ------------------------------------------------------------------ choosing the shard


@pytest.mark.parametrize("value, want", [("0/3", (0, 3)), (" 2/3 ", (2, 3)), ("0/1", (0, 1)), (None, None),
                                         ({"index": 1, "count": 2, "docs": 5}, (1, 2))])
def test_shard_is_k_of_n_counted_from_zero(value, want):
    assert parse_shard(value) == want


@pytest.mark.parametrize("value", ["3/3", "1/0", "-1/3", "1", "a/b", "1/2/3"])
def test_a_bad_shard_is_one_line_naming_the_flag(value):
    with pytest.raises(InputError, match=r"^--shard: .*K"):
        parse_shard(value)


def test_the_flag_becomes_metadata_beside_the_users():
    argv = ["--model", "rolegpt", "--shard", "1/4", "--metadata", '{"k": 2}']
    assert _shard_to_metadata(argv) == ["--model", "rolegpt", "--metadata", '{"k": 2}', "--metadata",
                                        '{"shard": "1/4"}']
    assert _shard_to_metadata(["--shard=0/2"]) == ["--metadata", '{"shard": "0/2"}']
    assert _shard_to_metadata(["--tasks", "x"]) == ["--tasks", "x"]


def test_shards_partition_the_items_balanced_across_roles(real_data_dir):
    docs = build_docs(load_split("specific_zh", real_data_dir))
    parts = [select(docs, k, 3) for k in range(3)]
    assert sorted(i for part in parts for i in part) == list(range(len(docs)))
    items = [{doc_item(docs[i]) for i in part} for part in parts]
    assert not (items[0] & items[1]) and not (items[1] & items[2]) and not (items[0] & items[2])
    assert max(map(len, items)) - min(map(len, items)) <= 1
    for role in {d["role"] for d in docs}:
        per_part = [len({doc_item(docs[i]) for i in part if docs[i]["role"] == role}) for part in parts]
        assert max(per_part) - min(per_part) <= 1, role
    # order-free: the same items whatever order the file lists them in
    backwards = docs[::-1]
    assert {doc_item(backwards[i]) for i in select(backwards, 0, 3)} == items[0]


def test_a_conversation_stays_in_one_shard(mt_data_dir):
    docs, _ = continuity_docs(build_docs(load_split("specific_zh", mt_data_dir)), settings_from({"depths": [1, 3]}))
    parts = [select(docs, k, 2) for k in range(2)]
    depths = Counter(docs[i]["item_id"] for i in parts[0])
    assert set(depths.values()) == {2} and not set(depths) & {docs[i]["item_id"] for i in parts[1]}


def test_a_shard_without_items_is_one_line(fixture_data_dir):
    docs = build_docs(load_split("specific_zh", fixture_data_dir))
    assert [len(select(docs, k, 2)) for k in range(2)] == [1, 1]
    with pytest.raises(InputError, match=r"^--shard: shard 2/3 of x holds no item: it has 2 items, fewer than"):
        select(docs, 2, 3, "x")


# ------------------------------------------------------------------ runs and merges


def _run(out: Path, tasks, data_dir, shard=None, gen_kwargs=None, **metadata) -> Path:
    meta = metadata | ({"shard": shard} if shard else {})
    evaluate(model="rolegpt", tasks=tasks, data_dir=data_dir, output_path=out, log_samples=True, metadata=meta,
             gen_kwargs=gen_kwargs)
    return out


def _files(out: Path) -> tuple[dict, dict[str, list[str]]]:
    (results,) = out.glob("*/results_*.json")
    samples = {p.name.split("_20")[0]: p.read_text(encoding="utf-8").split("\n") for p in out.glob("*/samples_*.jsonl")}
    return json.loads(results.read_text(encoding="utf-8")), samples


def _assert_same_run(merged_dir: Path, single_dir: Path) -> dict:
    merged, merged_samples = _files(merged_dir)
    single, single_samples = _files(single_dir)
    assert merged_samples == single_samples  # every line, doc_id included, in the same order
    for run in (merged, single):  # each run's own answer cache, beside its own output folder
        run["config"].pop("use_cache")
    for key in ("results", "groups", "group_subtasks", "configs", "versions", "n-shot", "higher_is_better",
                "n-samples", "task_hashes", "config", "model_name"):
        assert merged.get(key) == single.get(key), key
    return merged


def _merge(out: Path, *parts: Path) -> int:
    return main(["merge", *map(str, parts), "--output_path", str(out)])


@pytest.mark.slow
def test_three_shards_of_the_replay_merge_into_the_single_run(real_data_dir, tmp_path):
    task = ["rolebench_specific_zh"]
    parts = [_run(tmp_path / f"part{k}", task, real_data_dir, f"{k}/3") for k in range(3)]
    part0, _ = _files(parts[0])
    record = part0["configs"]["rolebench_specific_zh"]["metadata"]["shard"]
    version = str(part0["versions"]["rolebench_specific_zh"])  # the task's version, whatever it is now
    assert (record["index"], record["count"], record["version"]) == (0, 3, version)
    assert record["data_sha256"] == part0["configs"]["rolebench_specific_zh"]["metadata"]["data"]["sha256"]
    assert _merge(tmp_path / "merged", *parts) == 0
    merged = _assert_same_run(tmp_path / "merged", _run(tmp_path / "single", task, real_data_dir))
    assert round(merged["results"]["rolebench_specific_zh"]["spe,none"], 4) == 0.2478


@pytest.mark.slow
def test_shards_of_a_multi_turn_group_merge_into_the_single_run(mt_data_dir, tmp_path):
    meta = json.dumps({"depths": [1, 4], "data_dir": str(mt_data_dir)})

    def run(out: Path, *shard: str) -> Path:  # through the command line: --shard beside the user's --metadata
        flags = ["--model", "rolegpt", "--tasks", "rolebench_mt", "--output_path", str(out), "--log_samples"]
        assert main(["run", *flags, "--metadata", meta, *shard]) == 0
        return out

    parts = [run(tmp_path / f"part{k}", "--shard", f"{k}/2") for k in range(2)]
    assert _merge(tmp_path / "merged", *parts) == 0
    merged = _assert_same_run(tmp_path / "merged", run(tmp_path / "single"))
    assert merged["results"]["rolebench_mt_specific_en"]["spe_d4,none"] > 0
    assert merged["groups"]["rolebench_mt"]["rougeL_f_d4,none"] > 0  # a group averages only shared metrics


@pytest.fixture(scope="module")
def parts(tmp_path_factory, mt_data_dir):
    """Three shards of specific_zh on the fixture data, and one of a run with other generation settings."""
    root = tmp_path_factory.mktemp("parts")
    task = ["rolebench_specific_zh"]
    found = {k: _run(root / f"part{k}", task, mt_data_dir, f"{k}/3") for k in range(3)}
    found["foreign"] = _run(root / "foreign", task, mt_data_dir, "2/3", gen_kwargs="max_gen_toks=8")
    return found





def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.slow  # the parts: four runs of about 3 s
def test_a_missing_part_is_one_line(parts, tmp_path, capsys):
    assert _merge(tmp_path / "out", parts[0], parts[2]) == 2
    assert "missing part: shard 1/3" in _one_line(capsys) and not (tmp_path / "out").exists()


@pytest.mark.slow  # the parts: four runs of about 3 s
def test_a_duplicated_part_is_one_line_naming_it(parts, tmp_path, capsys):
    assert _merge(tmp_path / "out", parts[0], parts[1], parts[2], parts[1]) == 2
    line = _one_line(capsys)
    assert "duplicated part: shard 1/3" in line and str(parts[1]) in line


@pytest.mark.slow  # the parts: four runs of about 3 s
def test_a_foreign_part_is_one_line_naming_it(parts, tmp_path, capsys):
    assert _merge(tmp_path / "out", parts[0], parts[1], parts["foreign"]) == 2
    line = _one_line(capsys)
    assert line.startswith(f"rolebench-eval merge: error: {parts['foreign']}") and "not a part of the same run" in line


@pytest.mark.slow  # the parts: four runs of about 3 s
def test_the_merge_of_complete_parts_writes_one_folder(parts, tmp_path):
    assert _merge(tmp_path / "out", parts[2], parts[0], parts[1]) == 0  # any order
    results, samples = _files(tmp_path / "out")
    assert "shard" not in results["configs"]["rolebench_specific_zh"]["metadata"]
    ids = [json.loads(line)["doc_id"] for line in samples["samples_rolebench_specific_zh"] if line]
    assert ids == list(range(results["n-samples"]["rolebench_specific_zh"]["original"]))
    assert _merge(tmp_path / "out", *parts.values()) == 2  # never over an existing run
