"""The README's main job, on our fixture copy: replay, tiny model + adapter, leaderboard page."""

import json

import pytest

from rolebench_eval.demo import DemoSettings, run_demo


@pytest.mark.slow
def test_demo_builds_the_page_with_measured_and_reported_rows(tmp_path, fixture_data_dir):
    page = run_demo(fixture_data_dir, tmp_path / "demo", DemoSettings(train_steps=2, eval_holdout=0, max_gen_toks=4, batch_size=4))
    assert page.is_file() and page.name == "index.html"
    board = json.loads((page.parent / "leaderboard.json").read_text(encoding="utf-8"))
    measured = {r["name"] for r in board["rows"] if r["source"] == "measured"}
    assert measured == {"rolegpt", "tiny-llama (demo)", "tiny-llama + RoCIT (demo)"}
    assert {"RoleGPT", "RoleLLaMA", "RoleGLM"} <= {r["name"] for r in board["rows"] if r["source"] == "reported"}
    adapter = tmp_path / "demo" / "models" / "tiny-llama-rocit" / "adapter"
    assert (adapter / "adapter_config.json").is_file() and (adapter / "rolebench_provenance.json").is_file()
