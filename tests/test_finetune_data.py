"""The RoCIT mixing policy: sources, references -> samples, held-out items, general:specific ratio."""

from __future__ import annotations

import json
import shutil

import pytest
from rolebench_eval.finetune.args import RecipeError, RoleBenchArguments
from pathlib import Path

from rolebench_eval.finetune.data import (
    Sample,
    apply_ratio,
    build_mix,
    chosen_references,
    hold_out,
)

from rolebench_eval.catalogue import held_out_roles_en
from rolebench_eval.fileio import sha256_file, write_jsonl

ALL_FIXTURE_SPLITS = ["general_en", "specific_en", "general_zh", "specific_zh"]


def _script_args(data_dir, **kw):
    args = RoleBenchArguments(**{"data_dir": str(data_dir), "splits": ALL_FIXTURE_SPLITS, "eval_holdout": 0} | kw)
    args.check()
    return args


@pytest.mark.parametrize("refs, n, skip, expected", [
    (["a", "b", "c"], 1, True, (["a"], 0)),
    (["a", "b", "c", "d", "e"], 5, True, (["a", "b", "c", "d", "e"], 0)),
    (["a", "a", "b"], 5, True, (["a", "b"], 0)),
    (["(No response provided)", " ", "a"], 5, True, (["a"], 2)),
    (["(No response provided)", "a"], 5, False, (["(No response provided)", "a"], 0)),
    (["(no dialogue)."], 3, True, ([], 1)),
])
def test_chosen_references(refs, n, skip, expected):
    assert chosen_references(refs, n, skip) == expected


def test_fixture_mix_counts_descriptions_and_provenance(fixture_data_dir):
    mix = build_mix(_script_args(fixture_data_dir, references_per_item=3), seed=0)
    by_source = {s["name"]: s for s in mix.summary["sources"]}
    # general_en: one item with 3 references and one with 1; every other split has one 1-reference item
    assert {k: v["samples"] for k, v in by_source.items()} == {
        "general_en": 4, "specific_en": 1, "general_zh": 1, "specific_zh": 1}
    assert (mix.summary["train_general"], mix.summary["train_specific"]) == (5, 2)
    train_file = fixture_data_dir / "rolebench-zh/general/train.jsonl"
    assert by_source["general_zh"]["sha256"] == sha256_file(train_file)
    assert by_source["general_zh"]["file"] == "rolebench-zh/general/train.jsonl"
    marlow = [s for s in mix.train if s.role == "Marlow Finch"]
    assert {s.description for s in marlow} == {"a gruff retired sea captain who speaks in nautical terms"}
    assert {s.description for s in mix.train if s.lang == "zh"} == {None}  # the fixture has no profiles-zh
    assert [s.answer for s in mix.train if s.source == "general_en" and s.item == 0] == [
        "Grey, violet and a copper gold, lad.", "Copper, violet, grey. Every dusk I've sailed.",
        "Violet and grey, with copper where the sun sinks."]
    assert len(build_mix(_script_args(fixture_data_dir, references_per_item=1), seed=0).train) == 5


def test_held_out_items_keep_all_their_references(fixture_data_dir):
    for seed in range(6):
        mix = build_mix(_script_args(fixture_data_dir, references_per_item=3, eval_holdout=2), seed=seed)
        train_items = {(s.source, s.item) for s in mix.train}
        eval_items = {(s.source, s.item) for s in mix.eval}
        assert len(eval_items) == 2 and not train_items & eval_items
        assert len(mix.train) + len(mix.eval) == 7
        if ("general_en", 0) in eval_items:
            assert sum(s.source == "general_en" and s.item == 0 for s in mix.eval) == 3


def _samples(n_general, n_specific):
    return [Sample("r", "en", kind, f"q{i}", "a", None, kind, i)
            for kind, n in (("general", n_general), ("specific", n_specific)) for i in range(n)]


@pytest.mark.parametrize("ratio, expected", [(None, (10, 2)), (2.0, (4, 2)), (1.0, (2, 2)), (10.0, (10, 1)),
                                             (0.5, (1, 2))])
def test_ratio_subsamples_the_larger_side(ratio, expected):
    kept = apply_ratio(_samples(10, 2), ratio, seed=1)
    assert (sum(s.kind == "general" for s in kept), sum(s.kind == "specific" for s in kept)) == expected
    assert kept == [s for s in _samples(10, 2) if s in kept]  # order kept, nothing duplicated


def test_ratio_needs_both_kinds():
    with pytest.raises(RecipeError, match="needs both"):
        apply_ratio(_samples(3, 0), 1.0, seed=0)


def test_hold_out_is_deterministic_per_seed():
    samples = _samples(20, 5)
    assert hold_out(samples, 5, seed=3) == hold_out(samples, 5, seed=3)
    assert hold_out(samples, 5, seed=3) != hold_out(samples, 5, seed=4)


def test_extra_files_with_their_language_kind_and_descriptions(tmp_path, fixture_data_dir):
    extra = tmp_path / "extra.jsonl"
    rows = [{"role": "Marlow Finch", "question": "Favourite knot?", "generated": ["(No response provided)", "Bowline."]},
            {"role": "Ilse Varga", "question": "Coffee?", "generated": ["Black.", "Black."]}]
    extra.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    args = _script_args(fixture_data_dir, splits=["general_en"], references_per_item=5,
                        extra_data=[{"path": str(extra), "lang": "en", "kind": "specific"}])
    mix = build_mix(args, seed=0)
    extra_samples = [s for s in mix.train if s.source == str(extra)]
    assert [(s.answer, s.kind, s.lang) for s in extra_samples] == [("Bowline.", "specific", "en"), ("Black.", "specific", "en")]
    assert extra_samples[1].description == "a meticulous scientist with a dry wit"  # from the en splits' desc.json
    summary = {s["name"]: s for s in mix.summary["sources"]}[str(extra)]
    assert (summary["degenerate_skipped"], summary["sha256"], summary["origin"]) == (1, sha256_file(extra), "extra")
    desc = tmp_path / "desc.json"
    desc.write_text(json.dumps({"Ilse Varga": "someone else"}), encoding="utf-8")
    args = _script_args(fixture_data_dir, splits=[], extra_data=[
        {"path": str(extra), "lang": "en", "kind": "general", "descriptions": str(desc)}])
    assert [s.description for s in build_mix(args, seed=0).train] == [None, "someone else"]


def test_real_chinese_train_mix(real_data_dir):
    """All five references of the general items, against a direct count over the raw files."""
    args = _script_args(real_data_dir, splits=["general_zh", "specific_zh"], references_per_item=5)
    mix = build_mix(args, seed=0)
    expected = {}
    for kind, rel in (("general", "rolebench-zh/general/train.jsonl"), ("specific", "rolebench-zh/role_specific/train.jsonl")):
        rows = [json.loads(line) for line in (real_data_dir / rel).read_text(encoding="utf-8").splitlines() if line.strip()]
        expected[kind] = sum(len(dict.fromkeys(r for r in row["generated"] if r.strip())) for row in rows)
    assert (mix.summary["train_general"], mix.summary["train_specific"]) == (expected["general"], expected["specific"])
    assert mix.summary["train_specific"] >= 1535 and mix.summary["train_general"] > 5 * 5933 * 0.9


def test_context_instruct_false_keeps_only_general_items(fixture_data_dir):
    """The paper's Table 6 ablation: no role-specific (Context-Instruct) source, split or extra file."""
    mix = build_mix(_script_args(fixture_data_dir, references_per_item=3, context_instruct=False), seed=0)
    assert {s["name"] for s in mix.summary["sources"]} == {"general_en", "general_zh"}
    assert {s.kind for s in mix.train} == {"general"} and mix.summary["train_specific"] == 0
    assert mix.summary["train_general"] == 5 and mix.summary["policy"]["context_instruct"] is False


@pytest.fixture
def rolegen_data_dir(tmp_path, fixture_data_dir):
    """Our fixture copy plus invented role-generalization train files (the real ones are absent from the
    partial copy), which hold, against the split's rule, items of two held-out roles."""
    root = tmp_path / "rolebench"
    shutil.copytree(fixture_data_dir, root)
    held = list(held_out_roles_en())
    rows = {"general": [{"role": "Marlow Finch", "question": "Name a colour.", "generated": ["Grey.", "Copper."]},
                        {"role": held[2], "question": "Name a colour.", "generated": ["Black, like my sails."]},
                        {"role": "Ilse Varga", "question": "Tea or coffee?", "generated": ["Coffee, black."]}],
            "role_specific": [{"role": held[9], "question": "Your car?", "generated": ["A Gran Torino."]},
                              {"role": "Ilse Varga", "question": "Your field?", "generated": ["Spectroscopy."]}]}
    for kind, items in rows.items():
        folder = root / "rolebench-eng" / "role-generalization" / kind
        write_jsonl(folder / "train.jsonl", items)
    return root


def test_no_training_item_of_the_role_generalization_recipe_has_a_held_out_role(rolegen_data_dir):
    from rolebench_eval.finetune.recipe import parse

    recipe = Path(__file__).resolve().parent.parent / "finetune" / "recipes" / "rolellama_rolegen_7b_lora.yaml"
    script = parse(config=recipe, overrides={"model_name_or_path": "m", "output_dir": "o", "bf16": False,
                                             "data_dir": str(rolegen_data_dir), "eval_holdout": 1})[0]
    mix = build_mix(script, seed=0)
    held = set(held_out_roles_en())
    assert mix.train and not {s.role for s in mix.train + mix.eval} & held
    excluded = {s["name"]: s["held_out_role_items_excluded"] for s in mix.summary["sources"]}
    assert excluded == {"rolegen_general_en": 1, "rolegen_specific_en": 1}
    assert len(mix.train) + len(mix.eval) == 3  # one reference each of Marlow's and Ilse's two items
    unfiltered = build_mix(_script_args(rolegen_data_dir, splits=script.splits), seed=0)
    assert {s.role for s in unfiltered.train} & held  # what the filter removed was really there


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["rolellama_7b_lora.yaml", "roleglm_style_7b_lora.yaml",
                                    "rolellama_rolegen_7b_lora.yaml"])
def test_every_paper_recipe_trains_as_shipped_on_the_tiny_model(recipe, tiny_llama, rolegen_data_dir, tmp_path):
    """Each recipe as shipped, only its base model, precision and length swapped for a CPU run of 2 steps."""
    from rolebench_eval.finetune import train
    from rolebench_eval.provenance import PROVENANCE_FILE

    path = Path(__file__).resolve().parent.parent / "finetune" / "recipes" / recipe
    adapter = train(path, model_name_or_path=str(tiny_llama), output_dir=str(tmp_path / "run"),
                    data_dir=str(rolegen_data_dir), bf16=False, dtype="float32", max_steps=2, eval_holdout=1,
                    eval_steps=2, save_steps=2, per_device_train_batch_size=2, per_device_eval_batch_size=2)
    record = json.loads((adapter / PROVENANCE_FILE).read_text(encoding="utf-8"))
    assert record["result"]["global_step"] == 2 and record["result"]["last_eval_loss"] > 0
    assert record["prompt"]["format"] == ("chat" if "roleglm" in recipe else "plain")
    assert record["hyperparameters"]["lora_r"] == 16 and record["hyperparameters"]["lr_scheduler_type"] == "cosine"
