"""The paper's reported numbers (``paper.yaml``), for comparisons and reference rows."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from rolebench_eval.fileio import load_yaml


@lru_cache(maxsize=1)
def paper_tables() -> dict:
    """The parsed ``paper.yaml``: citation and Tables 3-5 of the RoleLLM paper (v1)."""
    return load_yaml((Path(__file__).parent / "paper.yaml").read_text(encoding="utf-8"))


def reported(model: str) -> dict[tuple[str, str], tuple[float, str]]:
    """``{(task, metric): (value, table)}`` of one model's reported ROUGE-L numbers."""
    out = {}
    for table_id, table in paper_tables()["tables"].items():
        row = table["rouge"].get(model, {})
        for metric, task in table["metrics"].items():
            if metric in row:
                out[(task, metric)] = (row[metric], table_id)
    return out
