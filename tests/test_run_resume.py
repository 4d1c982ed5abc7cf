"""``rolebench-eval run`` keeps what it computed (issue 21, item 4).

Every answer is cached as it arrives beside the output (lm-eval's ``--use_cache``, on by
default), so a run stopped by Ctrl-C says how many answers it kept, and the same command sends
only the rest and writes what an uninterrupted run writes. The model is a local
OpenAI-compatible server (``local-chat-completions``) that logs every request it answers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rolebench_eval.fileio import read_jsonl
from rolebench_eval.tasks import resumable

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "llm"))
from server_fixture import llm_server  # noqa: E402,F401  (the fixture)

BIN = Path(sys.executable).parent
TASK = "rolebench_specific_en"
ITEMS = 18  # rolebench_mt's specific_en test split
# One answer per question (matched on its words), so an answer given to the wrong item shows in the scores.
SCRIPT = {"default_reply": "I keep my own counsel.", "rules": [
    {"id": f"q{i}", "match": [words], "reply": reply} for i, (words, reply) in enumerate([
        ("leave the nav", "The navy left me first."), ("who taught you", "My mother, with a lantern."),
        ("miss your ship", "Every tide."), ("into chemistry", "A burnt kettle."),
        ("favourite elem", "Bismuth, for its colours."), ("your mentor", "Old Hedda of the third floor."),
    ])]}


def _command(srv, out: Path, *extra: str) -> list[str]:
    return [str(BIN / "rolebench-eval"), "run", "--model", "local-chat-completions", "--model_args",
            f"model=resumer,base_url={srv.url}/chat/completions,max_retries=1,num_concurrent=1",
            "--apply_chat_template", "--tasks", TASK, "--output_path", str(out), "--log_samples", *extra]


def _env(data_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    return env | {"ROLEBENCH_DATA_DIR": str(data_dir)}


def _outputs(out: Path) -> tuple[dict, dict]:
    [results] = list(out.glob("*/results_*.json"))
    [samples] = list(out.glob(f"*/samples_{TASK}_*.jsonl"))
    rows = {row["doc_id"]: row for _, row in read_jsonl(samples, "samples")}
    return json.loads(results.read_text(encoding="utf-8"))["results"], rows


@pytest.mark.slow
def test_a_run_stopped_by_ctrl_c_resumes_sending_only_the_rest(llm_server, mt_data_dir, tmp_path):
    srv = llm_server(SCRIPT, latency=0.3)
    out = tmp_path / "stopped"
    proc = subprocess.Popen(_command(srv, out), env=_env(mt_data_dir), stderr=subprocess.PIPE, text=True)
    while srv.count() < 5 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    answered = srv.count()  # by the server; the last may still be on its way into the run's cache
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-3000:]
    [last] = [line for line in stderr.splitlines() if line.startswith("rolebench-eval run: ")]
    assert last.startswith("rolebench-eval run: interrupted: no results were written; "), last
    assert "Traceback" not in stderr
    kept = int(last.split("written; ")[1].split()[0])
    cache = out / resumable.CACHE_FOLDER
    # every answer that reached the run is kept; at most the one in flight at the signal is not (asked again)
    assert answered - 1 <= kept < ITEMS and f"kept in the cache {cache}" in last
    assert not list(out.rglob("results_*.json")) and not (out / resumable.PARTIAL_FOLDER).exists()

    sent_before = srv.count()
    again = subprocess.run(_command(srv, out), env=_env(mt_data_dir), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    assert srv.count() - sent_before == ITEMS - kept  # only the answers not kept
    assert f"Cached requests: {kept}, Requests remaining: {ITEMS - kept}" in again.stderr

    whole = llm_server(SCRIPT)
    plain = subprocess.run(_command(whole, tmp_path / "whole", "--no-cache"), env=_env(mt_data_dir),
                           capture_output=True, text=True)
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert whole.count() == ITEMS and not (tmp_path / "whole" / resumable.CACHE_FOLDER).exists()
    (res_a, rows_a), (res_b, rows_b) = _outputs(out), _outputs(tmp_path / "whole")
    assert res_a == res_b
    assert sorted(rows_a) == sorted(rows_b) == list(range(ITEMS))
    for doc_id, row in rows_a.items():
        assert (row["resps"], row["spe"], row["rougeL_f"]) == (rows_b[doc_id]["resps"], rows_b[doc_id]["spe"],
                                                               rows_b[doc_id]["rougeL_f"])
    assert len({row["resps"][0][0] for row in rows_a.values()}) == 7  # six scripted answers and the default


def test_the_cache_is_one_per_model_beside_the_output(tmp_path):
    one = resumable.default_cache(str(tmp_path / "out"), "hf", "pretrained=a")
    assert Path(one).parent == tmp_path / "out" / resumable.CACHE_FOLDER
    assert one == resumable.default_cache(str(tmp_path / "out"), "hf", "pretrained=a")
    assert one != resumable.default_cache(str(tmp_path / "out"), "hf", "pretrained=b")
    assert Path(resumable.default_cache(str(tmp_path / "r.json"), "hf", None)).parent == tmp_path / ".cache"


def test_the_run_help_says_how_to_turn_the_cache_off(capsys):
    from rolebench_eval.cli import main

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--no-cache (rolebench-eval run only): do not keep answers" in text and "--use_cache PATH" in text


def _staged(tmp_path: Path, samples_text: str) -> Path:
    """A partial folder as lm-eval leaves it: one results file (3 items) and its samples file."""
    stage = tmp_path / "out" / resumable.PARTIAL_FOLDER / "1" / "m"
    stage.mkdir(parents=True)
    results = {"results": {}, "n-samples": {TASK: {"original": 3, "effective": 3}}, "configs": {TASK: {}}}
    (stage / "results_2026-01-01T00-00-00.0.json").write_text(json.dumps(results), encoding="utf-8")
    (stage / f"samples_{TASK}_2026-01-01T00-00-00.0.jsonl").write_text(samples_text, encoding="utf-8")
    return stage.parent


@pytest.mark.parametrize("samples_text", ['{"doc_id": 0}\n{"doc_id": 1}\n', '{"doc_id": 0}\n{"doc_id": 1}\n{"doc'])
def test_a_short_samples_file_is_not_published(tmp_path, samples_text):
    from rolebench_eval.errors import CouldNotWrite

    stage = _staged(tmp_path, samples_text)
    with pytest.raises(CouldNotWrite) as err:
        resumable.publish(str(tmp_path / "out"), stage, True, "kept: nothing", [])
    assert f"samples_{TASK}_2026-01-01T00-00-00.0.jsonl is missing or incomplete; kept: nothing" in str(err.value)
    assert not list((tmp_path / "out").rglob("results_*.json"))  # nothing half: not even the results


def test_a_whole_output_is_moved_in_results_last(tmp_path):
    stage = _staged(tmp_path, "".join(f'{{"doc_id": {i}}}\n' for i in range(3)))
    [results] = resumable.publish(str(tmp_path / "out"), stage, True, "", [])
    assert results == tmp_path / "out" / "m" / "results_2026-01-01T00-00-00.0.json" and results.is_file()
    assert not (tmp_path / "out" / resumable.PARTIAL_FOLDER).exists()


def test_lm_evals_own_save_failure_is_not_published(tmp_path):
    from rolebench_eval.errors import CouldNotWrite

    stage = _staged(tmp_path, "".join(f'{{"doc_id": {i}}}\n' for i in range(3)))
    with pytest.raises(CouldNotWrite, match="Could not save sample results"):
        resumable.publish(str(tmp_path / "out"), stage, True, "", ["Could not save sample results"])


@pytest.mark.slow
def test_a_run_whose_results_lm_eval_cannot_save_is_exit_6(fixture_data_dir, tmp_path):
    """lm-eval only logs its save errors (and exits 0): a full disk under the results is the one line of exit 6."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=65536", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        with open(disk / "ballast", "wb", buffering=0) as handle:
            try:
                while True:
                    handle.write(b"\0" * 4096)
            except OSError:
                pass
        done = subprocess.run([str(BIN / "rolebench-eval"), "run", "--model", "rolegpt", "--tasks", TASK,
                               "--output_path", str(disk / "out"), "--log_samples", "--no-cache"],
                              env=_env(fixture_data_dir), capture_output=True, text=True)
        assert done.returncode == 6, done.stderr[-3000:]
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith(f"rolebench-eval run: error: could not write the run's results ({disk / 'out'}): "
                               "No space left on device"), last
        assert "no answer was kept (--no-cache)" in last
        assert not list((disk / "out").rglob("*.json*"))
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_readers_skip_the_cache_and_partial_folders(tmp_path):
    from rolebench_eval.outputs import find_runs

    results = {"results": {}, "config": {"model_args": "model=m"}}
    for folder in (tmp_path / "m", tmp_path / resumable.PARTIAL_FOLDER / "7" / "m"):
        folder.mkdir(parents=True)
        (folder / "results_2026-01-01T00-00-00.0.json").write_text(json.dumps(results), encoding="utf-8")
    runs, errors = find_runs([tmp_path])
    assert [run.results_path for run in runs] == [tmp_path / "m" / "results_2026-01-01T00-00-00.0.json"]
    assert errors == []


# Each verb's Ctrl-C line (a verb stopped by KeyboardInterrupt) names what is kept and what a rerun redoes.
CTRL_C = {
    "leaderboard": (["leaderboard", "runs", "--out", "site"], "rolebench_eval.leaderboard.cli.main",
                    "interrupted: site is as it was (a build is swapped in whole); the same command builds the site "
                    "again"),
    "merge": (["merge", "p0", "p1", "--output-path", "merged"], "rolebench_eval.cli._merge",
              "interrupted: nothing was written to merged (built beside, swapped in whole); the same command redoes "
              "the whole merge"),
    "board": (["board", "b.yaml", "--out", "B"], "rolebench_eval.cli._board",
              "interrupted: finished steps are recorded under B/.steps and kept; the same command runs only the "
              "unfinished steps"),
    "judge": (["judge", "runs", "--judge", "rank", "--cache", "c.sqlite", "--out", "J"],
              "rolebench_eval.judges.cli.main", "interrupted: every verdict received is kept in the cache c.sqlite "
              "and nothing was written to J; the same command sends only the requests not answered yet"),
    "generate": (["generate", "rolegpt", "--profile", "p.yaml", "--instructions", "i.jsonl", "--out", "D",
                  "--cache", "c.sqlite", "--model", "m"], "rolebench_eval.generate.cli.main",
                 "interrupted: every answer received is kept in the cache c.sqlite and D is as it was; the same "
                 "command sends only the requests not answered yet"),
    "finetune": (["finetune", "--config", "r.yaml", "--output_dir", "R"], "rolebench_eval.finetune.cli.run",
                 "interrupted: R keeps its complete checkpoints (checkpoint-N/); the same command with --resume "
                 "continues from the latest one"),
}


@pytest.mark.parametrize("verb", list(CTRL_C))
def test_every_verbs_ctrl_c_line_says_what_a_rerun_redoes(verb, monkeypatch, capsys):
    from rolebench_eval.cli import main

    argv, target, says = CTRL_C[verb]

    def stopped(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(target, stopped)
    assert main(argv) == 130
    [line] = [line for line in capsys.readouterr().err.splitlines() if line]
    assert line.startswith(f"rolebench-eval {verb}: {says}"), line
