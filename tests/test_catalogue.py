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
    assert set(_task_yamls()) == set(catalogue.tasks(custom=True))
    assert set(_group_yamls()) == set(catalogue.catalogue().groups)


@pytest.mark.parametrize("name", sorted(catalogue.tasks(custom=True)))
def test_task_yaml_agrees_with_the_catalogue(name):
    entry, data = catalogue.get_task(name), _task_yamls()[name]
    assert data["dataset_kwargs"]["split"] == entry.split.name
    metrics = [m["metric"] for m in data["metric_list"]]
    assert entry.metric in metrics and ({"cus", "spe"} - {entry.metric}).isdisjoint(metrics)
    assert str(float(data["metadata"]["version"])) == entry.version
    assert entry.metric == {"general": "cus", "specific": "spe"}[entry.kind]


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
