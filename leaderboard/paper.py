"""The paper's reported rows (RoleLLM v1, Tables 3-5), read from ``rolebench_eval/paper.yaml``."""

from __future__ import annotations

from .model import REPORTED, Cell, Row
from .schema import Schema
from rolebench_eval.paper import paper_tables


def load_paper() -> dict:
    """The reported tables as stored in ``rolebench_eval/paper.yaml``."""
    return paper_tables()


def paper_fields(paper: dict) -> dict[str, dict[str, float]]:
    """Model -> {"<table>.<field>": value}; win rates converted from percent to fractions."""
    fields: dict[str, dict[str, float]] = {}
    for table_key, table in paper["tables"].items():
        for model, values in table.get("rouge", {}).items():
            for name, value in values.items():
                fields.setdefault(model, {})[f"{table_key}.{name}"] = float(value)
        for model, value in (table.get("win_rate") or {}).get("values", {}).items():
            fields.setdefault(model, {})[f"{table_key}.win_rate"] = float(value) / 100
    return fields


def paper_task_values(paper: dict) -> dict[str, dict[tuple[str, str], float]]:
    """Model -> {(task, metric): value}, using each table's metric-to-task map."""
    values: dict[str, dict[tuple[str, str], float]] = {}
    for table in paper["tables"].values():
        for model, metrics in table.get("rouge", {}).items():
            for metric, task in table["metrics"].items():
                if metric in metrics:
                    values.setdefault(model, {})[(task, metric)] = float(metrics[metric])
    return values


def _judge_note(paper: dict, column_paper: str) -> str | None:
    table = paper["tables"][column_paper.split(".")[0]]
    judge = (table.get("win_rate") or {}).get("judge")
    return f"{table['title']}; judged by {judge}" if judge else table.get("title")


def reported_rows(schema: Schema, paper: dict) -> list[Row]:
    """One ``reported`` row per model of the paper, with the cells the schema maps to it."""
    fields = paper_fields(paper)
    citation = " ".join(paper["citation"].split())
    rows = []
    for model in sorted(fields, key=str.lower):
        row = Row(name=model, source=REPORTED, citation=citation)
        for col in schema.columns:
            if col.paper and col.paper in fields[model]:
                row.cells[col.key] = Cell(fields[model][col.paper], note=_judge_note(paper, col.paper))
        rows.append(row)
    return rows
