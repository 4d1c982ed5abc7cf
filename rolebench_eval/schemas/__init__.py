"""The typed hand-off files: one msgspec Struct per file that one part writes and another reads.

============================================  ==============================  =====================
file                                          schema                          written by -> read by
============================================  ==============================  =====================
``<judge out>/.../summary.json``              :class:`.judge.JudgeSummary`    judges -> leaderboard
``<judge out>/.../annotations.jsonl``         :class:`.judge.Annotation`      judges -> leaderboard
``<adapter>/rolebench_provenance.json``       :class:`.adapter.Provenance`    finetune -> tasks, finetune
``<run folder>/rolebench_run.json``           :class:`.adapter.RunRecord`     finetune -> finetune (resume)
``<generated folder>/rolebench_custom.json``  :class:`.generated.FolderRecord`  generate -> data source, generate
============================================  ==============================  =====================

Each is written from its Struct and decoded through it (:mod:`.codec`): a bad file is one
:class:`~rolebench_eval.errors.InputError` naming the file, line (JSONL) and field. Each file
carries its version; one this package cannot read is refused with what to do.
"""
