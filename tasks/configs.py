"""The task YAMLs of ``tasks/rolebench/``, rendered from the catalogue (``rolebench_eval/splits.yaml``).

lm-eval's own ``_generate_configs.py`` pattern: the YAMLs stay plain files that lm-eval reads
(and that a reader can open), but nobody edits them by hand. :func:`render` is pure and
returns ``{file name: text}``; ``scripts/generate_task_yamls.py`` writes them, and a test
fails while the files on disk differ from it.
"""

from __future__ import annotations

import json

from rolebench_eval.catalogue import Catalogue, Group, Task, catalogue, depth_metric, reasoning_markers
from rolebench_eval.prompts import STOP_SEQUENCES

from .multiturn import DEFAULTS
from .reasoning import NAME as REASONING
from .studies import DEFAULT_K

COMMAND = "python scripts/generate_task_yamls.py"
_START, _END = reasoning_markers()
_TASKS = "rolebench_eval.tasks.task"
TEMPLATE = f"""\
# Shared settings of every RoleBench task. Anything here that can move a score is
# versioned: bump metadata.version in the task files and add a line to tasks/README.md.
class: !function {_TASKS}.RoleBenchTask
output_type: generate_until
test_split: test
num_fewshot: 0
doc_to_text: "{{{{question}}}}"
doc_to_target: references
generation_kwargs:
  until: {json.dumps(STOP_SEQUENCES)}
  max_gen_toks: 256
  do_sample: false
process_results: !function {_TASKS}.process_results
# The answer after the reasoning block (tasks/reasoning.py); the ensemble keeps lm-eval's
# default name, so results stay keyed "<metric>,none" as every reader and earlier run has them.
filter_list:
  - name: none
    filter:
      - {{function: {REASONING}, start: {json.dumps(_START)}, end: {json.dumps(_END)}}}
      - {{function: take_first}}
"""


def _comment(text: str | None, **fill) -> list[str]:
    """``text`` as YAML comment lines, its ``{placeholders}`` filled when ``fill`` names them."""
    return [f"# {line}" for line in (text.format(**fill) if fill else text).splitlines()] if text else []


def _bool(value: bool | None) -> str:
    return "null" if value is None else str(value).lower()


def _depths() -> str:
    return ", ".join(map(str, DEFAULTS["depths"]))


def task_yaml(task: Task, cat: Catalogue) -> str:
    """One task's YAML: the template, its class, split, metrics and version."""
    family = cat.families[task.family]
    lines = _comment(task.comment) or _comment(family.comment, split=task.split.name, metric=task.metric,
                                               depths=_depths(), k=DEFAULT_K)
    lines.append("include: _template_yaml")
    if family.task_class:
        lines.append(f"class: !function {family.task_class}")
    lines += [f"task: {task.name}", "dataset_kwargs:", f"  split: {task.split.name}"]
    if family.process_results:
        lines.append(f"process_results: !function {family.process_results}")
    lines.append("metric_list:")
    for m in (cat.metrics[name] for name in task.metrics):
        lines.append(f"  - {{metric: {m.name}, aggregation: {m.aggregation}, "
                     f"higher_is_better: {_bool(m.higher_is_better)}}}")
    return "\n".join([*lines, "metadata:", f"  version: {task.version}", ""])


def _members(group: Group, cat: Catalogue) -> list[Task]:
    out = []
    for name in group.tasks:
        out += _members(cat.groups[name], cat) if name in cat.groups else [cat.tasks[name]]
    return out


def group_metrics(group: Group, cat: Catalogue) -> list[str]:
    """What the group row averages: the metrics every member reports (per default depth for multi-turn
    members), so that lm-eval never averages a metric over part of the group (and warns)."""
    members = _members(group, cat)
    names = [m for m in cat.metrics if all(m in t.metrics for t in members)]
    if all(t.family in ("multiturn", "probe") for t in members):
        return [depth_metric(m, d) for m in names for d in DEFAULTS["depths"]]
    return names


def group_yaml(group: Group, cat: Catalogue) -> str:
    """One group's YAML: its members and the mean of each metric over them."""
    lines = [*_comment(group.comment, depths=_depths()), f"group: {group.name}", f"group_alias: {group.alias}",
             "task:", *(f"  - {name}" for name in group.tasks), "aggregate_metric_list:"]
    lines += [f"  - {{metric: {m}, aggregation: mean, weight_by_size: false}}" for m in group_metrics(group, cat)]
    return "\n".join([*lines, "metadata:", f"  version: {group.version}", ""])


def render(cat: Catalogue | None = None) -> dict[str, str]:
    """Every file of ``tasks/rolebench/``: ``{file name: text}``."""
    cat = cat or catalogue()
    files = {"_template_yaml": TEMPLATE}
    files |= {f"_{name}.yaml": group_yaml(group, cat) for name, group in cat.groups.items()}
    files |= {f"{name}.yaml": task_yaml(task, cat) for name, task in cat.tasks.items()}
    return files
