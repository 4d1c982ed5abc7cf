"""The task catalogue (rolebench_eval/splits.yaml) is the one task list: the YAMLs agree with it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rolebench_eval import catalogue
from rolebench_eval.data import read_items
from rolebench_eval.errors import InputError
from rolebench_eval.tasks import TASKS_DIR


class _Loader(yaml.SafeLoader):
    """Reads task YAMLs without resolving lm-eval's ``!function`` tags."""


_Loader.add_constructor("!function", lambda loader, node: f"!function {loader.construct_scalar(node)}")


def _yaml(path: Path) -> dict:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)


def _task_yamls() -> dict[str, dict]:
    return {data["task"]: data for p in sorted(Path(TASKS_DIR).glob("rolebench_*.yaml")) if "task" in (data := _yaml(p))}


def _group_yamls() -> dict[str, dict]:
    return {data["group"]: data for p in sorted(Path(TASKS_DIR).glob("_*.yaml")) if "group" in (data := _yaml(p))}


def test_every_task_yaml_is_in_the_catalogue_and_the_other_way_round():
    assert set(_task_yamls()) == set(catalogue.tasks(custom=True, family=None))
    assert set(_group_yamls()) == set(catalogue.catalogue().groups)


# What each family's YAML says besides its split: the class, process_results, the metrics
# (multi-turn ones per depth from these names: spe -> spe_d1, spe_d4, ...).
_TASKS = "rolebench_eval.tasks."
FAMILY_YAML = {
    "single": (None, f"!function {_TASKS}task.process_results", ["rougeL_f", "resp_tokens"]),
    "multiturn": (f"!function {_TASKS}multiturn.MultiTurnTask", f"!function {_TASKS}multiturn.process_results_mt",
                  ["rougeL_f", "resp_tokens", "break"]),
    "probe": (f"!function {_TASKS}multiturn.ProbeTask", f"!function {_TASKS}multiturn.process_results_probe", []),
    "fewshot": (f"!function {_TASKS}studies.FewShotTask", f"!function {_TASKS}task.process_results",
                ["rougeL_f", "resp_tokens", "prompt_tokens"]),
    "dialogue": (f"!function {_TASKS}studies.DialogueTask", f"!function {_TASKS}task.process_results",
                 ["rougeL_f", "resp_tokens", "prompt_tokens"]),
}


@pytest.mark.parametrize("name", sorted(catalogue.tasks(custom=True, family=None)))
def test_task_yaml_agrees_with_the_catalogue(name):
    entry, data = catalogue.get_task(name), _task_yamls()[name]
    template = _yaml(Path(TASKS_DIR) / data["include"])
    cls, process_results, others = FAMILY_YAML[entry.family]
    assert data["dataset_kwargs"]["split"] == entry.split.name
    assert data.get("class") == cls and {**template, **data}["process_results"] == process_results
    raw = ["raw"] if entry.split.raw else []  # RAW, on the general splits that have original answers
    assert [m["metric"] for m in data["metric_list"]] == [entry.metric, *raw, *others]
    assert all("aggregation" in m and "higher_is_better" in m for m in data["metric_list"])
    assert str(float(data["metadata"]["version"])) == entry.version
    paper_metric = "break" if entry.family == "probe" else {"general": "cus", "specific": "spe"}[entry.kind]
    assert entry.metric == paper_metric


def test_families_are_apart_from_the_paper_tasks():
    assert set(catalogue.tasks()) == {"rolebench_general_en", "rolebench_specific_en", "rolebench_rolegen_general_en",
                                      "rolebench_rolegen_specific_en", "rolebench_general_zh", "rolebench_specific_zh"}
    multiturn = set(catalogue.tasks(family="multiturn"))
    assert multiturn == {f"rolebench_mt_{k}_{lang}" for k in ("specific", "general") for lang in ("en", "zh")}
    assert set(catalogue.catalogue().groups["rolebench_mt"]) == multiturn
    assert not multiturn & set(catalogue.catalogue().groups["rolebench_en"] + catalogue.catalogue().groups["rolebench_zh"])
    assert set(catalogue.tasks(family="probe")) == {"rolebench_mt_probe_en", "rolebench_mt_probe_zh"}
    for family in ("fewshot", "dialogue"):
        assert {t.split.name for t in catalogue.tasks(family=family).values()} == {
            "specific_en", "general_en", "specific_zh", "general_zh"}
    assert catalogue.task_of_split("specific_zh").name == "rolebench_specific_zh"
    assert {"rolebench_mt", "rolebench_mt_probe_zh", "rolebench_general_zh_dialogue"} <= catalogue.names()


@pytest.mark.parametrize("group", sorted(catalogue.catalogue().groups))
def test_group_yaml_agrees_with_the_catalogue(group):
    assert tuple(_group_yamls()[group]["task"]) == catalogue.catalogue().groups[group]


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
