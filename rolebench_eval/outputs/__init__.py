"""The lm-eval output contract: what ``lm_eval --output_path OUT --log_samples`` leaves, read one way.

The judges and the leaderboard both read runs through this package:

- :func:`find_runs` takes output roots, model folders, results files or samples files and
  returns one :class:`Run` per results file, with its samples files (:mod:`.runs`);
- a run is named by one rule, :func:`run_identity`: the model lm-eval's ``model_name`` names
  (the base model: ``pretrained``, ``model``, ``path`` or ``engine`` of ``model_args``), plus the
  adapter when there is one (``peft``, ``lora_local_path`` or ``delta``): ``base+adapter``;
- :func:`read_records` yields the per-item records of a samples file (document, answer,
  per-item metrics; :mod:`.records`); :func:`read_scores` reads only ids, roles, item types
  and metric values, fast, for the leaderboard (:mod:`.scores`).

Judge summaries are written by the judges and read by the leaderboard through their schema,
:mod:`rolebench_eval.schemas.judge`.
"""

from .records import Record, check_doc, iter_records, read_records, read_records_at
from .runs import (
    ADAPTER_KEYS, BASE_KEYS, RESULTS, SAMPLES, Run, find_runs, latest_samples, model_args, read_run, run_identity,
    run_name, sanitize_model_name,
)
from .scores import TYPE_BITS, Scores, read_scores

__all__ = [
    "ADAPTER_KEYS", "BASE_KEYS", "RESULTS", "SAMPLES",
    "TYPE_BITS", "Record", "Run", "Scores", "check_doc", "find_runs", "iter_records", "latest_samples",
    "model_args", "read_records", "read_records_at", "read_run", "read_scores", "run_identity", "run_name",
    "sanitize_model_name",
]
