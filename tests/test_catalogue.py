"""The catalogue (rolebench_eval/splits.yaml) is the one vocabulary: the task YAMLs are generated from it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rolebench_eval import catalogue
from rolebench_eval.data import read_items
from rolebench_eval.errors import InputError
from rolebench_eval.tasks import TASKS_DIR
from rolebench_eval.tasks.configs import COMMAND, render


class _Loader(yaml.SafeLoader):
    """Reads task YAMLs without resolving lm-eval's ``!function`` tags."""


_Loader.add_constructor("!function", lambda loader, node: f"!function {loader.construct_scalar(node)}")


def _yaml(text: str) -> dict:
    return yaml.load(text, Loader=_Loader)


def test_task_yamls_are_the_ones_the_catalogue_generates():
    folder, files = Path(TASKS_DIR), render()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir() if p.is_file()}
    stale = sorted(n for n in set(files) | set(on_disk) if files.get(n) != on_disk.get(n))
    assert not stale, f"stale task YAMLs {stale}: run `{COMMAND}`"


def test_the_generated_files_are_every_task_and_group():
    files = render()
    assert {d["task"] for t in files.values() if "task" in (d := _yaml(t)) and "group" not in d} == set(
        catalogue.tasks(custom=True, family=None))
    assert {_yaml(t)["group"] for t in files.values() if "group" in _yaml(t)} == set(catalogue.catalogue().groups)


# A task's metrics follow from its family and split: the paper metric of its kind (`break` for
# probes), RAW where the split has original answers, what the family adds, and every task's count of
# unfinished reasoning.
METRICS = {
    "rolebench_general_en": ("cus", "raw", "rougeL_f", "resp_tokens", "unfinished_reasoning"),
    "rolebench_specific_zh": ("spe", "rougeL_f", "resp_tokens", "unfinished_reasoning"),
    # a generated folder has no RAW answers
    "rolebench_custom_general": ("cus", "rougeL_f", "resp_tokens", "unfinished_reasoning"),
    "rolebench_mt_general_zh": ("cus", "raw", "rougeL_f", "resp_tokens", "break", "unfinished_reasoning"),
    "rolebench_mt_specific_en": ("spe", "rougeL_f", "resp_tokens", "break", "unfinished_reasoning"),
    "rolebench_mt_probe_en": ("break", "unfinished_reasoning"),
    "rolebench_general_zh_fewshot": ("cus", "raw", "rougeL_f", "resp_tokens", "prompt_tokens",
                                     "unfinished_reasoning"),
    "rolebench_specific_en_dialogue": ("spe", "rougeL_f", "resp_tokens", "prompt_tokens", "unfinished_reasoning"),
}


@pytest.mark.parametrize("name", sorted(METRICS))
def test_task_metrics_follow_from_family_and_split(name):
    task = catalogue.get_task(name)
    assert task.metrics == METRICS[name]
    assert task.metric == ("break" if task.family == "probe" else {"general": "cus", "specific": "spe"}[task.kind])
    assert task.paper_metrics == tuple(m for m in ("cus", "spe", "raw") if m in task.metrics)


_TASKS = "rolebench_eval.tasks."
FAMILY_YAML = {  # what each family's YAML names besides the template's class and process_results
    "single": (None, None),
    "multiturn": (f"!function {_TASKS}multiturn.MultiTurnTask", f"!function {_TASKS}multiturn.process_results_mt"),
    "probe": (f"!function {_TASKS}multiturn.ProbeTask", f"!function {_TASKS}multiturn.process_results_probe"),
    "fewshot": (f"!function {_TASKS}studies.FewShotTask", None),
    "dialogue": (f"!function {_TASKS}studies.DialogueTask", None),
}


@pytest.mark.parametrize("name", sorted(catalogue.tasks(custom=True, family=None)))
def test_generated_task_yaml_says_what_the_catalogue_says(name):
    entry, data = catalogue.get_task(name), _yaml(render()[f"{name}.yaml"])
    assert data["include"] == "_template_yaml" and data["dataset_kwargs"] == {"split": entry.split.name}
    assert (data.get("class"), data.get("process_results")) == FAMILY_YAML[entry.family]
    assert [m["metric"] for m in data["metric_list"]] == list(entry.metrics)
    hib = {"cus": True, "spe": True, "raw": True, "rougeL_f": True, "resp_tokens": None, "break": False,
           "prompt_tokens": None, "unfinished_reasoning": False}
    assert all(m["higher_is_better"] is hib[m["metric"]] and m["aggregation"] == "mean" for m in data["metric_list"])
    assert str(float(data["metadata"]["version"])) == entry.version


def test_template_stops_where_the_plain_layout_starts_a_turn():
    template = _yaml(render()["_template_yaml"])
    assert template["generation_kwargs"]["until"] == ["\n### Instruction:", "\n### Input:", "\n### Response:"]
    assert template["class"] == f"!function {_TASKS}task.RoleBenchTask"


def test_groups_average_what_all_their_members_report():
    files = render()
    averaged = {g: [m["metric"] for m in _yaml(files[f"_{g}.yaml"])["aggregate_metric_list"]]
                for g in catalogue.catalogue().groups}
    # only what every member reports: a general and a role-specific split share no paper metric
    shared = ["rougeL_f", "resp_tokens", "unfinished_reasoning"]
    assert averaged["rolebench_en"] == averaged["rolebench_zh"] == averaged["rolebench"] == shared
    per_depth = ("rougeL_f", "resp_tokens", "break", "unfinished_reasoning")
    assert averaged["rolebench_mt"] == [f"{m}_d{d}" for m in per_depth for d in (1, 4, 8)]


def test_languages_decide_tokens_and_prompt_texts():
    assert {lang: catalogue.token_unit(lang) for lang in catalogue.languages()} == {"en": "words", "zh": "characters"}
    assert catalogue.language("zh").role_clause == ("你是{role}，你的特征描述是：{desc}。", "你是{role}。")
    assert catalogue.language("en").fewshot_turn[1] == "Question: {question}\nAnswer: {answer}"
    with pytest.raises(InputError, match="field 'lang': unsupported language 'fr'; expected one of en, zh"):
        catalogue.language("fr")


@pytest.mark.parametrize("damage,field,problem", [
    (("  cus: {kinds: [general]", "  cus: {kinds: general"), "metrics.cus", "Expected `array`, got `str` - at `$.kinds`"),
    (("    tokens: characters", "    tokenz: characters"), "languages.zh.tokenz", "unknown field"),
    (("  rougeL_f: {families: [single,", "  rougeL_f: {families: [singel,"), "metrics.rougeL_f.families",
     "unknown family 'singel'"),
])
def test_a_broken_catalogue_names_the_entry(tmp_path, monkeypatch, damage, field, problem):
    broken = tmp_path / "splits.yaml"
    text = catalogue.CATALOGUE.read_text(encoding="utf-8")
    assert damage[0] in text
    broken.write_text(text.replace(damage[0], damage[1], 1), encoding="utf-8")
    monkeypatch.setattr(catalogue, "CATALOGUE", broken)
    catalogue.catalogue.cache_clear()
    try:
        with pytest.raises(InputError) as err:
            catalogue.catalogue()
        assert (err.value.path, err.value.field, err.value.problem) == (str(broken), field, problem)
    finally:
        monkeypatch.undo()
        catalogue.catalogue.cache_clear()


def test_paper_metric_and_depth_names():
    assert (catalogue.paper_metric("general"), catalogue.paper_metric("specific")) == ("cus", "spe")
    assert catalogue.depth_metric("rougeL_f", 4) == "rougeL_f_d4"
    assert catalogue.split_depth_metric("rougeL_f_d4") == ("rougeL_f", 4)
    assert catalogue.split_depth_metric("break_d12") == ("break", 12)
    assert catalogue.split_depth_metric("spe") is None and catalogue.split_depth_metric("nope_d1") is None


def test_families_are_apart_from_the_paper_tasks():
    assert set(catalogue.tasks()) == {"rolebench_general_en", "rolebench_specific_en", "rolebench_rolegen_general_en",
                                      "rolebench_rolegen_specific_en", "rolebench_general_zh", "rolebench_specific_zh"}
    multiturn = set(catalogue.tasks(family="multiturn"))
    assert multiturn == {f"rolebench_mt_{k}_{lang}" for k in ("specific", "general") for lang in ("en", "zh")}
    groups = catalogue.catalogue().groups
    assert set(groups["rolebench_mt"].tasks) == multiturn
    assert not multiturn & set(groups["rolebench_en"].tasks + groups["rolebench_zh"].tasks)
    assert set(catalogue.tasks(family="probe")) == {"rolebench_mt_probe_en", "rolebench_mt_probe_zh"}
    for family in ("fewshot", "dialogue"):
        assert {t.split.name for t in catalogue.tasks(family=family).values()} == {
            "specific_en", "general_en", "specific_zh", "general_zh"}
    assert catalogue.task_of_split("specific_zh").name == "rolebench_specific_zh"
    assert {"rolebench_mt", "rolebench_mt_probe_zh", "rolebench_general_zh_dialogue"} <= catalogue.names()


def test_lookups_name_what_is_known():
    assert catalogue.get_task("rolebench_specific_zh").split.dir == "rolebench-zh/role_specific"
    assert set(catalogue.splits()) == {"general_en", "specific_en", "rolegen_general_en", "rolegen_specific_en",
                                       "general_zh", "specific_zh"}
    assert set(catalogue.custom_splits()) == {"custom_general", "custom_specific"}
    with pytest.raises(InputError, match="unknown RoleBench task 'rolebench_nope'; known: rolebench_general_en"):
        catalogue.get_task("rolebench_nope")
    assert "rolebench" in catalogue.names() and "rolebench_custom_general" in catalogue.names()


def test_held_out_roles_are_the_role_generalization_roles_of_the_real_data(real_data_dir):
    split = catalogue.get_split("rolegen_specific_en")
    roles = {item.role for item in read_items(real_data_dir / split.dir / "test.jsonl")}
    assert roles == set(catalogue.held_out_roles_en())
    seen = {item.role for item in read_items(real_data_dir / catalogue.get_split("specific_en").dir / "test.jsonl")}
    assert len(seen) == 95 and seen >= roles


def test_conversation_task_names_are_apart_from_lm_eval_tasks():
    from rolebench_eval.outputs.conversation import MODES
    from rolebench_eval.tasks.runner import only_rolebench

    live = catalogue.live_tasks()
    assert {(t.mode, t.lang) for t in live.values()} == {(m, lang) for m in MODES for lang in catalogue.languages()}
    assert catalogue.live_task("replay", "en").name == "rolebench_live_replay_en"
    assert catalogue.live_task("live", "en").name == "rolebench_live_live_en"
    assert live["rolebench_live_live_zh"].metrics == ("spe", "break", "unfinished_reasoning")
    # never built by lm-eval: no YAML, not a task or group `run`, `--tasks` or a board spec knows
    assert not set(live) & catalogue.names()
    assert not any(name in text for text in render().values() for name in live)
    assert not any(only_rolebench(name) for name in live)
    with pytest.raises(InputError, match="no task for live conversations in language 'fr'"):
        catalogue.live_task("live", "fr")
