"""The lm-eval output contract: what ``lm_eval --output_path OUT --log_samples`` leaves, read one way.

The judges and the leaderboard both read runs through this package:

- :func:`find_runs` takes output roots, model folders, results files or samples files and
  returns one :class:`Run` per results file, with its samples files (:mod:`.runs`);
- a run is named by one rule, :func:`run_identity`: the model lm-eval's ``model_name`` names
  (the base model: ``pretrained``, ``model``, ``path`` or ``engine`` of ``model_args``), plus the
  adapter when there is one (``peft``, ``lora_local_path`` or ``delta``): ``base+adapter``;
- :func:`read_records` yields the per-item records of a samples file (document, answer,
  per-item metrics, whether the reasoning never closed;
  :mod:`.records`); :func:`read_scores` reads only ids, roles, item types
  and metric values, fast, for the leaderboard (:mod:`.scores`).

The files one part of the package writes and another reads each have one msgspec schema here,
are written from it and decoded through it (:mod:`.codec`: a bad file is one ``InputError``
naming the file, line and field; a version this package cannot read is refused, saying what to do):

- ``<judge out>/<model>/<task>/<judge>/summary.json``: :class:`.judge.JudgeSummary`, and
  ``annotations.jsonl`` beside it: :class:`.judge.Annotation` (judges -> leaderboard);
- ``<adapter>/rolebench_provenance.json``: :class:`.adapter.Provenance` (finetune -> the tasks'
  train/eval prompt check, ``--resume``); ``<run folder>/rolebench_run.json``:
  :class:`.adapter.RunRecord` (finetune -> ``--resume``);
- ``<generated folder>/rolebench_custom.json``: :class:`.generated.FolderRecord` (generate -> the
  data source and the next generate run);
- ``<cache>.batches.json``: :class:`.batch.BatchJobs` (a ``--batch`` run -> the next one, which polls
  the same jobs), and batch output lines: :class:`.batch.BatchOutputLine` (OpenAI, ``vllm run-batch``);
- scenario files (JSONL): :class:`.scenario.Scenario` (``scenarios write`` / ``freeze`` -> ``converse``), and
  ``<out>/conversations.jsonl`` + ``summary.json``: :class:`.conversation.Conversation`,
  :class:`.conversation.ConversationSummary` (``converse`` -> ``scenarios freeze``, later the leaderboard).
"""

from .records import (
    UNFINISHED_REASONING, Record, check_doc, is_unfinished_metric, iter_records, read_records, read_records_at,
)
from .runs import (
    ADAPTER_KEYS, BASE_KEYS, RESULTS, SAMPLES, Run, find_runs, latest_samples, model_args, read_run, run_identity,
    run_name, sanitize_model_name,
)
from .scores import TYPE_BITS, Scores, read_scores

__all__ = [
    "ADAPTER_KEYS", "BASE_KEYS", "RESULTS", "SAMPLES",
    "TYPE_BITS", "UNFINISHED_REASONING", "Record", "Run", "Scores", "check_doc", "find_runs", "is_unfinished_metric",
    "iter_records", "latest_samples",
    "model_args", "read_records", "read_records_at", "read_run", "read_scores", "run_identity", "run_name",
    "sanitize_model_name",
]
