"""RoCIT recipes, overrides, the CLI verb, and the bad-input errors that come before any heavy import."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
from rolebench_eval.finetune.cli import register, run
from rolebench_eval.finetune.config import RecipeError, load_config
from rolebench_eval.finetune.sft_lora import complete_checkpoints, resume_checkpoint

from rolebench_eval.data import RoleBenchDataError

RECIPES = Path(__file__).resolve().parent.parent / "finetune" / "recipes"
TINY = RECIPES / "tiny_cpu.yaml"
REAL = RECIPES / "rolellama_7b_lora.yaml"


def test_shipped_recipes_load_and_only_the_real_one_names_a_base():
    script, model, train = load_config(REAL, {"output_dir": "runs/x"})
    assert model.model_name_or_path == "huggyllama/llama-7b"
    assert script.splits == ["general_en", "specific_en"] and script.prompt_format == "plain"
    assert (model.lora_r, train.learning_rate, train.packing, train.bf16) == (16, 2e-4, False, True)
    with pytest.raises(RecipeError, match=r"tiny_cpu.yaml: key 'model_name_or_path': required .*--model_name_or_path"):
        load_config(TINY, {"output_dir": "runs/x"})
    script, model, train = load_config(TINY, {"model_name_or_path": "m", "output_dir": "o", "lora_r": 4})
    assert (model.lora_r, train.max_steps, script.splits) == (4, 8, ["general_zh", "specific_zh"])


@pytest.mark.parametrize("body, message", [
    ("lora_rank: 8\n", r"unknown recipe key 'lora_rank'; did you mean 'lora_r'\?"),
    ("lora_r: eight\n", r"key 'lora_r': expected <class 'int'>, got 'eight'"),
    ("splits: general_zh\n", r"key 'splits': expected list\[str\]"),
    ("splits: [general_xx]\n", r"unknown RoleBench split 'general_xx'; known: general_en"),
    ("prompt_format: jinja\n", r"prompt_format.*expected one of auto, chat, plain"),
    ("references_per_item: 0\n", r"references_per_item.*at least 1"),
    ("extra_data: [{path: nowhere.jsonl, lang: zh, kind: general}]\n", r"extra_data\[0\]'?: path file not found: nowhere"),
    ("extra_data: [{path: x, lang: fr, kind: general}]\n", r"extra_data\[0\]'?: field 'lang' must be one of"),
    ("- just\n- a list\n", r"a recipe is a mapping"),
])
def test_bad_recipes_name_the_file_and_key(tmp_path, body, message):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("model_name_or_path: m\noutput_dir: o\nsplits: [general_zh]\n" * ("- " not in body) + body,
                      encoding="utf-8")
    with pytest.raises(RecipeError, match=message) as err:
        load_config(recipe)
    assert "bad.yaml" in str(err.value)


def test_overrides_are_checked_like_the_recipe():
    with pytest.raises(RecipeError, match=r"\(overrides\): unknown recipe key 'learning_rat'; did you mean 'learning_rate'"):
        load_config(TINY, {"learning_rat": 1.0})


def _train_error(*args, **overrides):
    from rolebench_eval.finetune import train

    with pytest.raises((RecipeError, RoleBenchDataError)) as err:
        train(*args, **overrides)
    return str(err.value)


def test_bad_inputs_fail_before_training(tmp_path, tiny_llama_dir_stub, fixture_data_dir, real_data_dir):
    base = {"model_name_or_path": str(tiny_llama_dir_stub), "output_dir": str(tmp_path / "run")}
    msg = _train_error(TINY, **base | {"model_name_or_path": str(tmp_path / "no-such-model")})
    assert "base model folder not found" in msg and "no-such-model" in msg
    msg = _train_error(TINY, **base, data_dir=str(real_data_dir), splits=["general_en"])
    assert "instruction-generalization/general/train.jsonl: file not found" in msg
    msg = _train_error(TINY, **base, data_dir=str(fixture_data_dir), max_items_per_split=0)
    assert "empty training set" in msg and "general_zh (0 items, 0 samples)" in msg
    msg = _train_error(TINY, **base, data_dir=str(fixture_data_dir), eval_holdout=10)
    assert "empty training set" in msg


@pytest.fixture
def tiny_llama_dir_stub(tmp_path) -> Path:
    """A folder that passes the base-model check (config.json present); training is never reached."""
    path = tmp_path / "stub-model"
    path.mkdir()
    (path / "config.json").write_text("{}", encoding="utf-8")
    return path


def test_errors_come_before_torch_is_imported(tmp_path, fixture_data_dir):
    code = f"""
import sys
from rolebench_eval.finetune import train
from rolebench_eval.finetune.config import RecipeError
from rolebench_eval.data import RoleBenchDataError
cases = [
    dict(model_name_or_path={str(tmp_path / 'missing')!r}),
    dict(model_name_or_path={str(tmp_path)!r}, lora_rnk=3),
    dict(model_name_or_path={str(tmp_path)!r}, data_dir={str(tmp_path)!r}),
    dict(model_name_or_path={str(tmp_path)!r}, max_items_per_split=0),
]
(__import__("pathlib").Path({str(tmp_path)!r}) / "config.json").write_text("{{}}")
for case in cases:
    try:
        train({str(TINY)!r}, output_dir={str(tmp_path / 'out')!r}, **({{"data_dir": {str(fixture_data_dir)!r}}} | case))
    except (RecipeError, RoleBenchDataError) as err:
        print("ERR", type(err).__name__, str(err)[:60])
heavy = sorted(m for m in ("torch", "transformers", "trl", "peft", "datasets", "lm_eval") if m in sys.modules)
print("HEAVY", heavy)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.count("ERR ") == 4, out
    assert "HEAVY []" in out, out


def test_checkpoints_resume_and_refuse_to_mix_runs(tmp_path):
    base = {"model_name_or_path": "m", "output_dir": str(tmp_path)}
    _, _, train = load_config(TINY, base | {"resume": True})
    with pytest.raises(RecipeError, match="--resume: no complete checkpoint"):
        resume_checkpoint(train)
    for step, state in ((2, {"global_step": 2}), (4, {"global_step": 4}), (6, None)):  # 6: killed mid-save
        (tmp_path / f"checkpoint-{step}").mkdir()
        if state:
            (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text(json.dumps(state))
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["checkpoint-2", "checkpoint-4"]
    assert resume_checkpoint(train).name == "checkpoint-4"
    _, _, fresh = load_config(TINY, base)
    with pytest.raises(RecipeError, match="already holds a run.*pass --resume"):
        resume_checkpoint(fresh)


def _parser():
    parser = argparse.ArgumentParser(prog="rolebench-eval")
    register(parser.add_subparsers(dest="verb"))
    return parser


def test_cli_verb_parses_overrides_with_recipe_types():
    from rolebench_eval.finetune.sft_lora import overrides_from

    args = _parser().parse_args(["finetune", "--config", str(TINY), "--lora_r", "4", "--packing", "--splits",
                                 "general_zh", "specific_zh", "--learning_rate", "3e-4", "--eval_steps", "null",
                                 "--model_name_or_path", "123", "--resume", "false"])
    assert args.func is run
    assert overrides_from(args) == {"lora_r": 4, "packing": True, "splits": ["general_zh", "specific_zh"],
                                    "learning_rate": 3e-4, "eval_steps": None, "model_name_or_path": "123",
                                    "resume": False}
    with pytest.raises(SystemExit):
        _parser().parse_args(["finetune", "--lora_rank", "4"])


def test_cli_reports_bad_input_with_exit_code_2(tmp_path, capsys):
    from rolebench_eval.cli import main

    assert main(["finetune", "--config", str(TINY), "--output_dir", str(tmp_path / "o"),
                 "--model_name_or_path", str(tmp_path / "missing")]) == 2
    assert "rolebench-eval finetune: error: base model folder not found" in capsys.readouterr().err


def test_help_does_not_import_torch():
    code = ("import sys, argparse\nfrom rolebench_eval.finetune.cli import register\n"
            "p = argparse.ArgumentParser(); register(p.add_subparsers()); p.format_help()\n"
            "print(sorted(m for m in ('torch', 'transformers', 'trl', 'lm_eval') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("name, local", [("/abs/model", True), ("./m", True), ("runs/x/model", True),
                                         ("~/m", True), ("huggyllama/llama-7b", False), ("gpt2", False)])
def test_local_paths_and_hub_ids(name, local):
    from rolebench_eval.finetune.config import looks_like_local_path

    assert looks_like_local_path(name) is local


def test_offline_hub_id_must_be_cached(tmp_path):
    from rolebench_eval.finetune.config import check_base_model

    with pytest.raises(RecipeError, match="HF_HUB_OFFLINE is set but it is not in the Hugging Face cache"):
        check_base_model("huggyllama/llama-7b")  # conftest sets HF_HUB_OFFLINE=1 and an empty HF_HOME
