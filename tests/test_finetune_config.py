"""RoCIT recipes through TRL's parser: keys, types, bad values and the CLI verb, all before any model is loaded."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from rolebench_eval.catalogue import held_out_roles_en
from rolebench_eval.data import RoleBenchDataError
from rolebench_eval.errors import InputError
from rolebench_eval.finetune.args import RecipeError
from rolebench_eval.finetune.recipe import parse
from rolebench_eval.finetune.cli import register, run

RECIPES = Path(__file__).resolve().parent.parent / "finetune" / "recipes"
TINY = RECIPES / "tiny_cpu.yaml"
REQUIRED = {"model_name_or_path": "m", "output_dir": "runs/x"}


def test_every_recipe_parses_with_trl_config_classes():
    from trl import ModelConfig, SFTConfig

    names = sorted(p.name for p in RECIPES.glob("*.yaml"))
    assert names == ["roleglm_style_7b_lora.yaml", "rolellama_7b_lora.yaml", "rolellama_rolegen_7b_lora.yaml",
                     "tiny_cpu.yaml"]
    parsed = {}
    for name in names:
        script, training, model = parse(config=RECIPES / name, overrides=REQUIRED | {"bf16": False})
        assert isinstance(training, SFTConfig) and isinstance(model, ModelConfig) and model.use_peft
        parsed[name] = (script, training, model)
    script, training, model = parsed["rolellama_7b_lora.yaml"]
    assert script.splits == ["general_en", "specific_en"] and script.prompt_format == "plain"
    assert script.context_instruct and not script.exclude_held_out_roles
    assert (model.lora_r, training.learning_rate, training.packing) == (16, 2e-4, False)
    script, training, model = parsed["roleglm_style_7b_lora.yaml"]
    assert script.splits == ["general_zh", "specific_zh"] and script.prompt_format == "chat"
    assert model.model_name_or_path == "m"  # the override wins over the recipe's base
    script, _, _ = parsed["rolellama_rolegen_7b_lora.yaml"]
    assert script.splits == ["rolegen_general_en", "rolegen_specific_en"] and script.exclude_held_out_roles


def test_recipes_name_their_base_models_and_say_what_is_the_papers():
    bases = {}
    for path in RECIPES.glob("*_7b_lora.yaml"):
        text = path.read_text(encoding="utf-8")
        assert "paper" in text and "ours" in text, path.name
        bases[path.name] = next(line.split(":", 1)[1].split("#")[0].strip() for line in text.splitlines()
                                if line.startswith("model_name_or_path:"))
    assert bases == {"rolellama_7b_lora.yaml": "huggyllama/llama-7b",
                     "rolellama_rolegen_7b_lora.yaml": "huggyllama/llama-7b",
                     "roleglm_style_7b_lora.yaml": "Qwen/Qwen2.5-7B-Instruct"}


def test_precedence_recipe_then_overrides_then_flags():
    _, training, model = parse(config=TINY, overrides=REQUIRED | {"lora_r": 4})
    assert (model.lora_r, training.max_steps, training.learning_rate) == (4, 8, 1e-3)
    _, training, model = parse(["--lora_r", "2", "--max_steps", "3"], config=TINY, overrides=REQUIRED | {"lora_r": 4})
    assert (model.lora_r, training.max_steps) == (2, 3)
    script, _, _ = parse(config={"splits": ["general_zh"], "extra_data": [], "bf16": False} | REQUIRED,
                         overrides={"context_instruct": False})
    assert script.splits == ["general_zh"] and script.context_instruct is False


def test_the_tiny_recipe_names_no_base_model():
    with pytest.raises(RecipeError, match=r"field 'model_name_or_path': required: pass --model_name_or_path"):
        parse(config=TINY, overrides={"output_dir": "o"})


BASE = "model_name_or_path: m\noutput_dir: o\nsplits: [general_zh]\nbf16: false\n"


@pytest.mark.parametrize("body, message", [
    ("lora_rank: 8\n", r"bad.yaml:{line}: field 'lora_rank': unknown key; did you mean 'lora_r'\?"),
    ("learning_rat: 0.1\n", r"bad.yaml:{line}: field 'learning_rat': unknown key; did you mean 'learning_rate'\?"),
    ("lora_r: eight\n", r"bad.yaml:{line}: field 'lora_r': expected int, got 'eight'"),
    ("lora_r: 8.5\n", r"bad.yaml:{line}: field 'lora_r': expected an integer, got 8.5"),
    ("splits: general_zh\n", r"bad.yaml:{line}: field 'splits': expected a list, got 'general_zh'"),
    ("dtype: bf16\n", r"bad.yaml:{line}: field 'dtype': expected one of auto, bfloat16, float16, float32"),
    ("prompt_format: jinja\n", r"bad.yaml:{line}: field 'prompt_format': expected one of auto, chat, plain"),
    ("packing: maybe\n", r"bad.yaml:{line}: field 'packing': expected true or false, got 'maybe'"),
    ("learning_rate: -1.0e-4\n", r"bad.yaml:{line}: field 'learning_rate': must be > 0, got -0.0001"),
    ("learning_rate: 0\n", r"field 'learning_rate': must be > 0"),
    ("lora_target_modules: []\n", r"bad.yaml:{line}: field 'lora_target_modules': is empty"),
    ("lora_dropout: 1.5\n", r"field 'lora_dropout': must be in \[0, 1\)"),
    ("use_peft: false\n", r"field 'use_peft': RoCIT trains a LoRA adapter"),
    ("eval_strategy: steps\n", r"field 'eval_strategy': is steps but eval_holdout is 0"),
    ("eval_holdout: 3\n", r"bad.yaml:{line}: field 'eval_holdout': holds 3 items out of training for an eval loss that "
                          r"eval_strategy: 'no' never computes"),
    ("lora_r: yes\n", r"field 'lora_r': expected int, got true \(YAML reads unquoted yes/no as booleans"),
    ("references_per_item: 0\n", r"field 'references_per_item': must be at least 1"),
    ("splits: [general_xx]\n", r"field 'splits': unknown RoleBench split 'general_xx'"),
    ("extra_data: [{path: nowhere.jsonl, lang: zh, kind: general}]\n", r"extra_data\[0\]'.*path file not found"),
    ("extra_data: [{path: x, lang: fr, kind: general}]\n", r"extra_data\[0\]': 'lang' must be one of"),
    ("bf16: true\n", r"bad.yaml: Your setup doesn't support bf16"),  # SFTConfig's own check, as one line
])
def test_bad_recipes_name_the_file_line_and_key(tmp_path, body, message):
    key = body.split(":")[0]
    lines = [line for line in BASE.splitlines() if not line.startswith(key + ":")] + [body.rstrip("\n")]
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(RecipeError, match=message.replace("{line}", str(len(lines)))) as err:
        parse(config=recipe)
    assert isinstance(err.value, InputError) and "\n" not in str(err.value)


def test_an_unquoted_no_is_the_word_no(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(BASE + "eval_strategy: no\nsave_strategy: no\n", encoding="utf-8")
    _, training, _ = parse(config=recipe)
    assert (training.eval_strategy, training.save_strategy) == ("no", "no")


def test_a_recipe_that_is_not_a_mapping(tmp_path):
    recipe = tmp_path / "list.yaml"
    recipe.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(RecipeError, match="list.yaml: a recipe is a mapping"):
        parse(config=recipe)
    with pytest.raises(RecipeError, match="recipe file not found"):
        parse(config=tmp_path / "missing.yaml")


@pytest.mark.parametrize("flags, message", [
    (["--lora_rank", "4"], r"field '--lora_rank': unknown flag; did you mean '--lora_r'\?"),
    (["--learning_rat", "0.1"], r"unknown flag; did you mean '--learning_rate'\?"),  # no argparse abbreviations
    (["--lora_r", "x"], r"argument --lora_r/--lora-r: invalid int value: 'x'"),
    (["--learning_rate", "-1"], r"field 'learning_rate': must be > 0, got -1.0"),
])
def test_bad_flags(flags, message):
    with pytest.raises(RecipeError, match=message):
        parse(["--config", str(TINY), "--model_name_or_path", "m", "--output_dir", "o", *flags])


def test_overrides_are_checked_like_the_recipe():
    with pytest.raises(RecipeError, match=r"overrides: field 'learning_rat': unknown key; did you mean 'learning_rate'"):
        parse(config=TINY, overrides=REQUIRED | {"learning_rat": 1.0})


@pytest.fixture
def stub_model(tmp_path) -> Path:
    """A folder that passes the base-model check (config.json present) but that no library could load."""
    path = tmp_path / "stub-model"
    path.mkdir()
    (path / "config.json").write_text("{}", encoding="utf-8")
    return path


def _train_error(**overrides) -> str:
    from rolebench_eval.finetune import train

    with pytest.raises((RecipeError, RoleBenchDataError)) as err:
        train(TINY, **overrides)
    return str(err.value)


def test_bad_inputs_fail_before_any_model_is_loaded(tmp_path, stub_model, fixture_data_dir, real_data_dir):
    """The stub model cannot be loaded: every message here comes before anything tries."""
    base = {"model_name_or_path": str(stub_model), "output_dir": str(tmp_path / "run")}
    msg = _train_error(**base | {"model_name_or_path": str(tmp_path / "no-such-model")})
    assert "base model folder not found" in msg and "no-such-model" in msg
    msg = _train_error(**base, data_dir=str(real_data_dir), splits=["general_en"])
    assert "instruction-generalization/general/train.jsonl: file not found" in msg
    msg = _train_error(**base, data_dir=str(fixture_data_dir), max_items_per_split=0)
    assert "empty training set" in msg and "general_zh (0 items, 0 samples)" in msg
    msg = _train_error(**base, data_dir=str(fixture_data_dir), eval_holdout=10, eval_strategy="steps")
    assert "empty training set" in msg
    msg = _train_error(**base, data_dir=str(fixture_data_dir), splits=["specific_zh"], context_instruct=False)
    assert "empty training set" in msg and "context_instruct: false leaves out role-specific sources" in msg
    msg = _train_error(**base, data_dir=str(fixture_data_dir), general_to_specific_ratio=1.0, context_instruct=False)
    assert "needs both" in msg


def _parser():
    parser = argparse.ArgumentParser(prog="rolebench-eval")
    register(parser.add_subparsers(dest="verb"))
    return parser


def test_the_verb_hands_every_argument_to_trl():
    args = _parser().parse_args(["finetune", "--config", "r.yaml", "--lora_r", "4", "--packing", "--splits", "a", "b"])
    assert args.func is run and args.finetune_argv == ["--config", "r.yaml", "--lora_r", "4", "--packing",
                                                       "--splits", "a", "b"]


def test_cli_reports_bad_input_in_one_line_with_exit_code_2(tmp_path, capsys):
    from rolebench_eval.cli import main

    assert main(["finetune", "--config", str(TINY), "--output_dir", str(tmp_path / "o"),
                 "--model_name_or_path", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"rolebench-eval finetune: error: field 'model_name_or_path': base model folder not found: " \
                      f"{tmp_path / 'missing'}"
    assert main(["finetune", "--config", str(TINY), "--lora_rank", "4"]) == 2
    assert "did you mean '--lora_r'?" in capsys.readouterr().err


def test_finetune_help_lists_trl_and_our_flags(capsys):
    from rolebench_eval.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["finetune", "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    for flag in ("--splits", "--context_instruct", "--exclude_held_out_roles", "--resume", "--lora_r",
                 "--lora_target_modules", "--learning_rate", "--max_steps", "--packing", "--save_steps"):
        assert flag in out, flag


def test_help_does_not_import_torch():
    code = ("import sys\nfrom rolebench_eval.cli import build_parser\nbuild_parser().format_help()\n"
            "print(sorted(m for m in ('torch', 'transformers', 'trl', 'lm_eval') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("name, local", [("/abs/model", True), ("./m", True), ("runs/x/model", True),
                                         ("~/m", True), ("huggyllama/llama-7b", False), ("gpt2", False)])
def test_local_paths_and_hub_ids(name, local):
    from rolebench_eval.finetune.sft_lora import looks_like_local_path

    assert looks_like_local_path(name) is local


def test_offline_hub_id_must_be_cached():
    from rolebench_eval.finetune.sft_lora import check_base_model

    with pytest.raises(RecipeError, match="HF_HUB_OFFLINE is set but it is not in the Hugging Face cache"):
        check_base_model("huggyllama/llama-7b")  # conftest sets HF_HUB_OFFLINE=1 and an empty HF_HOME


def test_held_out_roles_are_the_catalogues():
    assert len(held_out_roles_en()) == 10 and "Jack Sparrow" in held_out_roles_en()
