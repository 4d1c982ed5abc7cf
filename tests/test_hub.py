"""The default data path (the Hub), end to end against a local stand-in served through HF_ENDPOINT.

Each load runs in a child Python, because huggingface_hub reads HF_ENDPOINT, HF_HOME and
HF_HUB_OFFLINE when it is imported. The stand-in records every request, so the tests count
requests instead of timing anything.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
_spec = importlib.util.spec_from_file_location("stand_in", FIXTURES / "hub" / "stand_in.py")
stand_in = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(stand_in)

CHILD = r"""
import json, sys
from rolebench_eval.errors import InputError
from rolebench_eval.source import load_split
out = []
for split in sys.argv[2].split(","):
    try:
        d = load_split(split, revision=sys.argv[1] or None)
        out.append({"split": split, "items": len(d.items), "provenance": d.provenance,
                    "baseline": d.baseline is not None, "descriptions": len(d.descriptions)})
    except InputError as err:
        out.append({"split": split, "error": str(err)})
print(json.dumps(out))
"""
SPLITS = "specific_zh,general_zh"


def closed_endpoint() -> str:
    """An address where nothing listens (a port just bound and released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def hub(fixture_data_dir):
    with stand_in.StandInHub(fixture_data_dir) as server:
        yield server


def load(tmp_path, endpoint: str, splits: str = SPLITS, revision: str = "", offline: bool = False) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    env |= {"HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1",
            "ROLEBENCH_HUB_TIMEOUT": "1"}
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    proc = subprocess.run([sys.executable, "-c", CHILD, revision, splits], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_downloads_once_then_reads_the_cache_and_records_the_commit(tmp_path, hub):
    first = load(tmp_path, hub.url)
    assert [(r["split"], r["items"], r["baseline"]) for r in first] == [("specific_zh", 2, True), ("general_zh", 2, True)]
    assert {r["provenance"]["commit"] for r in first} == {stand_in.COMMIT}
    assert first[0]["provenance"] | {"sha256": None} == {
        "origin": "hub", "repo": "ZenMoore/RoleBench", "revision": "main", "commit": stand_in.COMMIT,
        "file": "rolebench-zh/role_specific/test.jsonl", "sha256": None}
    got = hub.count("GET")
    assert got == 4  # two test files and two baselines; the absent desc.json is only asked about
    again = load(tmp_path, hub.url)
    assert again == first and hub.count("GET") == got  # second run: no download
    asked = [path for _, path in hub.requests]
    assert asked.count("/datasets/ZenMoore/RoleBench/resolve/main/profiles-zh/desc.json") == 1  # known absent
    before = len(hub.requests)
    assert load(tmp_path, hub.url, offline=True) == first and len(hub.requests) == before  # offline: no request


def test_a_run_pinned_to_a_cached_commit_sends_no_request(tmp_path, hub):
    load(tmp_path, hub.url)
    before = len(hub.requests)
    pinned = load(tmp_path, hub.url, revision=stand_in.COMMIT)
    assert [r["items"] for r in pinned] == [2, 2] and len(hub.requests) == before


@pytest.mark.parametrize("mode", ["500", "hang", "refused"])
def test_a_hub_outage_with_a_filled_cache_costs_one_request(tmp_path, hub, mode):
    first = load(tmp_path, hub.url)
    before = len(hub.requests)
    hub.mode = mode
    endpoint = closed_endpoint() if mode == "refused" else hub.url
    during = load(tmp_path, endpoint, splits=SPLITS + ",specific_en")
    assert during[:2] == first
    assert len(hub.requests) - before <= 1  # the first, short-timeout request; then the cache only
    assert "error" in during[2] and "the Hub did not answer" in during[2]["error"]


@pytest.mark.parametrize("case, expected", [
    ("refused", "the Hub is unreachable"),
    ("offline", "offline mode is on (HF_HUB_OFFLINE=1)"),
    ("revision", "revision 'no-such-branch' does not exist in the Hub dataset ZenMoore/RoleBench"),
    ("missing", "rolebench-eng/instruction-generalization/general/test.jsonl: file not found"),
])
def test_failures_are_one_line_that_names_the_cause_and_the_ways_out(tmp_path, hub, fixture_data_dir, case, expected):
    import shutil

    if case == "missing":  # a dataset without that split's test file
        hub.root = tmp_path / "served"
        shutil.copytree(fixture_data_dir, hub.root)
        (hub.root / "rolebench-eng/instruction-generalization/general/test.jsonl").unlink()
    (result,) = load(tmp_path, closed_endpoint() if case == "refused" else hub.url,
                     splits="general_en" if case == "missing" else "specific_zh",
                     revision="no-such-branch" if case == "revision" else "", offline=case == "offline")
    assert expected in result["error"] and "\n" not in result["error"]
    assert "ROLEBENCH_DATA_DIR" in result["error"] and "data_dir" in result["error"]


def test_a_missing_baseline_file_is_no_baseline_not_an_error(tmp_path, hub, fixture_data_dir):
    import shutil

    hub.root = tmp_path / "served"
    shutil.copytree(fixture_data_dir, hub.root)
    (hub.root / "rolebench-zh/role_specific/rolegpt_baseline.jsonl").unlink()
    (result,) = load(tmp_path, hub.url, splits="specific_zh")
    assert (result["items"], result["baseline"]) == (2, False)


DEMO_CHILD = r"""
import sys
from rolebench_eval.demo import check_data, data_root
root = data_root(None)
check_data(root)
print(root)
"""


def test_the_demo_without_a_data_folder_takes_the_chinese_files_from_the_hub(tmp_path, hub):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "ROLEBENCH_DATA_DIR")}
    env |= {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1",
            "ROLEBENCH_HUB_TIMEOUT": "1"}
    proc = subprocess.run([sys.executable, "-c", DEMO_CHILD], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    root = Path(proc.stdout.strip().splitlines()[-1])
    assert root.parent.name == "snapshots" and root.name == stand_in.COMMIT
    got = sorted(str(p.relative_to(root)) for p in root.rglob("*.jsonl"))
    assert got == [f"rolebench-zh/{kind}/{file}.jsonl" for kind in ("general", "role_specific")
                   for file in ("rolegpt_baseline", "test", "train")]
    assert (root / "rolebench-zh/general/train.jsonl").read_bytes() == (
        Path(__file__).parent / "fixtures/rolebench/rolebench-zh/general/train.jsonl").read_bytes()
