"""The README's main job, on our fixture copy: replay, tiny model + adapter, score table, leaderboard page."""

import json
import re

import pytest

from rolebench_eval.demo import DemoSettings, check_data, run_demo, score_table
from rolebench_eval.errors import InputError

SMALL = DemoSettings(tokenizer_items=50, vocab_size=600, train_steps=3, max_length=512, max_gen_toks=4, batch_size=4)


@pytest.mark.slow
def test_demo_prints_the_table_and_builds_the_page(tmp_path, fixture_data_dir, capfd):
    printed = []
    page = run_demo(fixture_data_dir, tmp_path / "demo", SMALL, echo=printed.append)
    assert page.is_file() and page.name == "index.html"
    board = json.loads((page.parent / "leaderboard.json").read_text(encoding="utf-8"))
    measured = {r["name"] for r in board["rows"] if r["source"] == "measured"}
    assert measured == {"RoleGPT (replay)", "tiny-llama (demo)", "tiny-llama + RoCIT (demo)"}  # as in the table
    assert {"RoleGPT", "RoleLLaMA", "RoleGLM"} <= {r["name"] for r in board["rows"] if r["source"] == "reported"}

    table = printed[-2].strip()
    names = [line.split("  ")[0] for line in table.splitlines()[2:]]
    assert names == ["RoleGPT (replay)", "tiny-llama (demo)", "tiny-llama + RoCIT (demo)", "RoleGPT (paper)",
                     "ChatGLM2 (paper)", "RoleGLM (paper)"]
    assert re.search(r"RoleGLM \(paper\)\s+reported\s+0\.5049\s+0\.5255\s+0\.3406", table)
    assert [p[:3] for p in printed[:5]] == ["1/4", "2/4", "3/4", "3/4", "4/4"]  # one line per step
    assert printed[-1].startswith("\nThe tiny models show the pipeline at work")

    run = tmp_path / "demo" / "models" / "tiny-llama-rocit"
    adapter = run / "adapter"
    assert (adapter / "adapter_config.json").is_file() and (adapter / "rolebench_provenance.json").is_file()
    assert not list(run.glob("checkpoint-*"))  # no intermediate checkpoints kept
    err = capfd.readouterr().err
    assert "pin_memory" not in err
    warned = [line for line in err.splitlines() if "Warning" in line or "WARNING" in line]
    assert len(warned) == len(set(warned)), warned  # each warning once

    stamp = (adapter / "adapter_model.safetensors").stat().st_mtime_ns
    run_demo(fixture_data_dir, tmp_path / "demo", SMALL, echo=printed.append)  # a rerun reuses model and adapter
    assert (adapter / "adapter_model.safetensors").stat().st_mtime_ns == stamp


def test_score_table_puts_measured_rows_above_the_papers():
    results = {"results": {"rolebench_general_zh": {"cus,none": 0.5, "raw,none": 0.25},
                           "rolebench_specific_zh": {"spe,none": 0.125}}}
    table = score_table({"m": results, "partial": {"results": {"rolebench_specific_zh": {"spe,none": 0.0}}}})
    lines = table.splitlines()
    assert lines[0].split() == ["model", "source", "general_zh", "CUS", "general_zh", "RAW", "specific_zh", "SPE"]
    assert lines[2].split() == ["m", "measured", "0.5000", "0.2500", "0.1250"]
    assert lines[3].split() == ["partial", "measured", "—", "—", "0.0000"]
    assert lines[4].split() == ["RoleGPT", "(paper)", "reported", "0.5368", "0.5748", "0.2478"]


def test_a_folder_without_the_chinese_train_files_is_refused_in_one_line(tmp_path, real_data_dir):
    with pytest.raises(InputError, match=r"rolebench-zh/general/train.jsonl: not found: the demo trains"):
        check_data(tmp_path)
    check_data(real_data_dir)
