"""The ``leaderboard`` verb and hostile inputs: renames, what the console says, names that must
never break or poison anything (CSV formulas, mathtext, markup, lone surrogates)."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rolebench_eval.leaderboard import build_leaderboard
from rolebench_eval.leaderboard.build import Options
from rolebench_eval.leaderboard.plots import label, plot_labels

FIX = Path(__file__).resolve().parent / "fixtures" / "leaderboard"
RUNS, JUDGES = FIX / "runs", FIX / "judges"
HOSTILE = ["$\\frac{1}{$ tuned", '=HYPERLINK("http://x","y")', "+1+2", "-2+3", "@SUM(A1)", "\tTAB", "\rCR",
           "<script>alert(1)</script>", "{{ 7*7 }} {% if %}", "%s %d {0}", "_hidden", "a|b`c`*d* [x](y)",
           "nul\x00byte", "lone \ud800 surrogate", "w" * 300, "\u202eRTL", "line\nbreak", "Ω≈ç√∫ 老船长"]


def cli(*args: str) -> subprocess.CompletedProcess:
    code = "import sys; from rolebench_eval.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)


def _hostile_runs(root: Path) -> Path:
    """One run per hostile model name, all with hostile role names, from the fixture run ``a``."""
    for k, name in enumerate(HOSTILE):
        folder = root / f"run{k:02d}"
        folder.mkdir(parents=True)
        for src in (RUNS / "a").iterdir():
            if src.name.startswith("results_"):
                data = json.loads(src.read_text(encoding="utf-8"))
                data["config"]["model_args"] = {"pretrained": name}
                (folder / src.name).write_text(json.dumps(data), encoding="utf-8")
                continue
            rows = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines()]
            for row in rows:
                row["doc"]["role"] = HOSTILE[row["doc_id"] % len(HOSTILE)]
                row["filtered_resps"] = [name]
            (folder / src.name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    judge = root / "judged" / "x" / "rolebench_specific_en" / "=evil"
    judge.mkdir(parents=True)
    summary = json.loads((JUDGES / "org__model-a" / "rolebench_specific_en" / "pairwise" / "summary.json").read_text())
    (judge / "summary.json").write_text(json.dumps({**summary, "model": HOSTILE[0], "judge": "=evil<b>"}))
    return root


def test_no_string_in_any_input_breaks_or_poisons_the_outputs(tmp_path):
    root = _hostile_runs(tmp_path / "in")
    board = build_leaderboard([root], judges=[root / "judged"], out=tmp_path / "site", options=Options(n_boot=50))
    assert len(board.measured) == len(HOSTILE) and not board.errors
    names = {r.full_name for r in board.measured}
    assert "lone \ufffd surrogate" in names and HOSTILE[0] in names
    for kind in ("scores_png", "splits_png", "roles_png", "html", "items_html", "json", "csv", "breakdowns_csv"):
        assert board.outputs[kind].stat().st_size > 0, kind
    with board.outputs["csv"].open(encoding="utf-8", newline="") as handle:
        table = list(csv.reader(handle))
    header, body = table[0], table[1:]
    cells = [c for row in body for c in (row[header.index("model")], row[header.index("full_name")])]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert "'=HYPERLINK(\"http://x\",\"y\")" in cells and "'-2+3" in cells
    assert any(h.startswith("judge:win_rate:rolebench_specific_en:=evil") is False and "=evil" in h for h in header)
    assert not [h for h in header if h[:1] in ("=", "+", "-", "@")]
    float(body[0][header.index("score")])  # numbers stay numbers
    with board.outputs["breakdowns_csv"].open(encoding="utf-8", newline="") as handle:
        groups = [row[2] for row in csv.reader(handle)][1:]
    assert "'+1+2" in groups and not [g for g in groups if g[:1] in ("=", "+", "-", "@", "\t", "\r")]
    html = board.outputs["html"].read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "49" not in html.split("{{ 7*7 }}")[0][-5:]  # template syntax in a name is text, not evaluated
    data = board.outputs["items_data"].read_text(encoding="utf-8")
    items = json.loads(data[data.index("= ") + 2:data.rindex(";")])
    assert {HOSTILE[1], "<script>alert(1)</script>"} <= {m["name"] for m in items["models"]} | set(items["roles"])


def test_plot_labels_are_never_markup_or_hidden():
    assert label("_hidden") == " _hidden" and label("$x$") == "$x$"
    assert label("w" * 300) == "w" * 23 + "…" + "w" * 16


def test_long_names_are_shortened_apart_in_the_figures_and_spelled_out_in_the_page(tmp_path):
    recipe = "org/a-model-fine-tuned-with-the-rolebench-recipe-lr={}-epochs=3"
    names = {"org/model-a": recipe.format("1e-4"), "org/model-c": recipe.format("2e-4")}
    board = build_leaderboard([RUNS], out=tmp_path, options=Options(n_boot=20, browse_items=0, names=names))
    labels = plot_labels(board)
    assert labels[names["org/model-a"]] == "org/a-model-fine-tuned-…lr=1e-4-epochs=3"
    assert labels[names["org/model-c"]] == "org/a-model-fine-tuned-…lr=2e-4-epochs=3"  # the tails tell them apart
    assert len(set(labels.values())) == len(labels) and labels["model-i"] == "model-i"
    twins = plot_labels(build_leaderboard([RUNS], options=Options(n_boot=20, browse_items=0, names={
        "org/model-a": "x" * 50, "org/model-c": "x" * 51})))
    assert twins["x" * 50] != twins["x" * 51]  # read the same when cut: numbered
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert (f"<dt>org/a-model-fine-tuned-…lr=1e-4-epochs=3</dt><dd>{names['org/model-a']}</dd>") in page


def test_name_takes_the_equals_sign_that_names_a_run_and_an_unmatched_one_is_exit_2(tmp_path):
    out = tmp_path / "site"
    done = cli("leaderboard", str(RUNS / "a"), str(RUNS / "b"), "--out", str(out),
               "--name", f"{RUNS / 'a'}=RoleLLaMA lr=2e-4", "--cache-dir", str(tmp_path / "cache"), "--n-boot", "50")
    assert done.returncode == 0, done.stderr
    assert str((out / "index.html").resolve()) in done.stdout and "item browser: items.html" in done.stdout
    rows = {r["name"]: r for r in json.loads((out / "leaderboard.json").read_text(encoding="utf-8"))["rows"]}
    assert {"RoleLLaMA lr=2e-4", "base-7b+model-b"} <= set(rows)
    assert rows["RoleLLaMA lr=2e-4"]["full_name"] == "org/model-a"
    assert list((tmp_path / "cache").rglob("*.npz"))  # the samples cache was filled
    bad = cli("leaderboard", str(RUNS / "a"), "--out", str(tmp_path / "s2"), "--name", "org/nobody=X", "--no-cache")
    assert bad.returncode == 2
    lines = [line for line in bad.stderr.splitlines() if line.strip()]
    assert lines == ["rolebench-eval leaderboard: error: field '--name': 'org/nobody=X': no input, results file, "
                     "folder or model name matches the text before any '='"]
    paper = cli("leaderboard", str(RUNS / "a"), "--out", str(tmp_path / "s3"), "--name", f"{RUNS / 'a'}=RoleGPT",
                "--no-cache")
    assert paper.returncode == 2 and not (tmp_path / "s3" / "index.html").exists()
    assert [line for line in paper.stderr.splitlines() if line.strip()] == [
        "rolebench-eval leaderboard: error: field '--name': label 'RoleGPT' is the name of a row of the RoleLLM "
        "paper on the board; choose another label"]


def test_the_console_lists_what_was_left_out_and_why(tmp_path):
    done = cli("leaderboard", str(RUNS), "--judges", str(JUDGES), "--out", str(tmp_path / "site"), "--no-cache",
               "--n-boot", "50", "--browse-items", "0")
    assert done.returncode == 0, done.stderr
    err = done.stderr
    assert "warning: left out: " in err and "corrupt_results/results_" in err and "corrupt_samples/samples_" in err
    assert "warning: not comparable, left out: model-d: results_2026-01-01T00-00-00.000000.json: run with " \
           "--limit 4" in err
    assert "warning: not comparable, left out: model-e: rolebench_specific_en: task version 0.9" in err
    assert "warning: " in err and "judge summary for 'not-on-the-board', which is not on the board" in err
    assert not (tmp_path / "site" / "items.html").exists()
    strict = cli("leaderboard", str(RUNS), "--out", str(tmp_path / "s2"), "--strict", "--no-cache")
    assert strict.returncode == 2 and "corrupt_results" in strict.stderr


def test_tasks_the_board_has_no_column_for_are_named_on_the_console_and_the_page(tmp_path):
    """The prompting-study variants (catalogue families fewshot, dialogue) are never dropped silently."""
    run = tmp_path / "in" / "a"
    shutil.copytree(RUNS / "a", run)
    results = next(run.glob("results_*.json"))
    data = json.loads(results.read_text(encoding="utf-8"))
    data["results"]["rolebench_specific_en_fewshot"] = {"alias": "x", "spe,none": 0.5, "prompt_tokens,none": 900.0}
    data["results"]["rolebench_general_zh_dialogue"] = {"alias": "y", "cus,none": 0.4}
    results.write_text(json.dumps(data), encoding="utf-8")
    done = cli("leaderboard", str(run), "--out", str(tmp_path / "site"), "--no-cache", "--n-boot", "20",
               "--browse-items", "0")
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if line.startswith("note: rolebench_")]
    assert notes == [
        "note: rolebench_general_zh_dialogue left out of 1 run(s) (org/model-a): a prompting-study variant "
        "(dialogue), which has no column on the board",
        "note: rolebench_specific_en_fewshot left out of 1 run(s) (org/model-a): a prompting-study variant "
        "(fewshot), which has no column on the board"]
    page = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert "rolebench_specific_en_fewshot left out of 1 run(s)" in page


def test_nothing_usable_is_exit_5(tmp_path):
    done = cli("leaderboard", str(RUNS / "corrupt_results"), "--out", str(tmp_path / "site"), "--no-cache")
    assert done.returncode == 5
    assert "warning: left out: " in done.stderr and "no run could be ranked" in done.stderr


def test_chinese_names_without_a_cjk_font_warn_once(tmp_path, monkeypatch, caplog):
    from rolebench_eval.leaderboard import figures, plots

    monkeypatch.setattr(plots, "CJK_FONTS", ("No Such CJK Font",))
    caplog.set_level("WARNING", logger=plots.__name__)
    board = build_leaderboard([RUNS / "a"], options=Options(n_boot=20, browse_items=0))
    figures.write_plots(board, tmp_path)
    warnings = [r.getMessage() for r in caplog.records if r.name == plots.__name__]
    assert len(warnings) == 1 and "no CJK font installed" in warnings[0] and "fonts-wqy-microhei" in warnings[0]
    assert (tmp_path / "roles.png").stat().st_size > 0  # drawn all the same
    caplog.clear()
    monkeypatch.setattr(plots, "CJK_FONTS", ("WenQuanYi Micro Hei", "Noto Sans CJK SC"))
    figures.write_plots(board, tmp_path)
    fonts = {f.name for f in __import__("matplotlib").font_manager.fontManager.ttflist}
    if fonts & {"WenQuanYi Micro Hei", "Noto Sans CJK SC"}:  # installed here (CI installs fonts-wqy-microhei)
        assert not [r for r in caplog.records if r.name == plots.__name__]


def test_figures_drawn_in_another_process_are_the_same_and_kept(tmp_path, monkeypatch):
    import dataclasses

    from rolebench_eval.leaderboard import build as build_module

    monkeypatch.setattr(build_module, "BACKGROUND_ITEMS", 0)  # draw in a worker process even for the fixture
    opts = Options(n_boot=50, browse_items=0, cache_dir=tmp_path / "cache")
    board = build_leaderboard([RUNS / "a", RUNS / "c"], out=tmp_path / "site",
                              options=dataclasses.replace(opts, processes=True, workers=2))
    figures = {k: board.outputs[k].read_bytes() for k in ("scores_png", "splits_png", "roles_png")}
    assert all(data[:8] == b"\x89PNG\r\n\x1a\n" for data in figures.values())
    kept = list((tmp_path / "cache" / "plots").glob("*/made.json"))
    assert len(kept) == 1  # kept once the workers drew them
    monkeypatch.setattr(build_module, "BACKGROUND_ITEMS", 10**9)
    again = build_leaderboard([RUNS / "a", RUNS / "c"], out=tmp_path / "again", options=opts)
    assert {k: again.outputs[k].read_bytes() for k in figures} == figures  # copied, not drawn again
    changed = build_leaderboard([RUNS / "a", RUNS / "b"], out=tmp_path / "other", options=opts)
    assert changed.outputs["scores_png"].read_bytes() != figures["scores_png"]  # other data: drawn
    assert len(list((tmp_path / "cache" / "plots").glob("*/made.json"))) == 2


def test_the_browser_data_is_kept_for_the_same_files_and_read_again_when_one_changes(tmp_path):
    shutil.copytree(RUNS / "a", tmp_path / "a")
    opts = Options(n_boot=20, cache_dir=tmp_path / "cache")
    first = build_leaderboard([tmp_path / "a"], options=opts).items
    assert len(list((tmp_path / "cache" / "items").rglob("*.json"))) == 1
    assert build_leaderboard([tmp_path / "a"], options=opts).items == first  # read back
    path = next((tmp_path / "a").glob("samples_rolebench_general_zh_*.jsonl"))
    path.write_text(path.read_text(encoding="utf-8").replace("model-a sees the waves (0).", "Changed (0)."),
                    encoding="utf-8")
    again = build_leaderboard([tmp_path / "a"], options=opts).items
    texts = [a["text"] for i in again["items"] if i["task"] == "rolebench_general_zh" for a in i["answers"]]
    assert "Changed (0)." in texts and again != first


def test_the_console_has_only_our_lines_even_when_matplotlib_builds_its_font_cache(tmp_path):
    code = "import sys; from rolebench_eval.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "MPLCONFIGDIR": str(tmp_path / "fresh-matplotlib"), "PYTHONWARNINGS": "default"}
    done = subprocess.run([sys.executable, "-c", code, "leaderboard", str(RUNS), "--judges", str(JUDGES), "--out",
                           str(tmp_path / "site"), "--no-cache", "--n-boot", "20"], capture_output=True, text=True,
                          env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "fresh-matplotlib").is_dir() and (tmp_path / "site" / "scores.png").is_file()
    assert [line for line in done.stderr.splitlines() if not line.startswith(("warning: ", "note: "))] == []


def test_a_first_build_starts_its_workers_first_and_builds_the_same_board(tmp_path, monkeypatch, capsys):
    """The CLI starts its worker processes before its own imports when a build surely reads samples files in
    them: a first build (no cache, or nothing kept in it) of enough samples; the board is the same."""
    from rolebench_eval.cli import main
    from rolebench_eval.leaderboard import workers
    from rolebench_eval.leaderboard.cache import holds_extracts

    cache = tmp_path / "cache"
    assert not workers.start_early([RUNS / "a"], None)  # a few kB of samples: read in this process
    monkeypatch.setattr(workers, "PARALLEL_BYTES", 1)
    assert workers.start_early([RUNS / "a"], None) and workers.start_early([RUNS / "a"], cache)
    assert not workers.start_early([RUNS / "a" / "does-not-matter.json"], None)  # no folder to weigh
    started, start = [], workers.Workers.start
    monkeypatch.setattr(workers.Workers, "start", lambda self: started.append(self) or start(self))
    args = ["leaderboard", str(RUNS / "a"), str(RUNS / "c"), "--n-boot", "50", "--browse-items", "0"]
    assert main([*args, "--out", str(tmp_path / "first"), "--cache-dir", str(cache)]) == 0
    assert len(started) == 1 and holds_extracts(cache)
    assert not workers.start_early([RUNS / "a"], cache)  # kept now: started only when a build must read
    assert main([*args, "--out", str(tmp_path / "again"), "--cache-dir", str(cache)]) == 0
    assert len(started) == 1
    first, again = (json.loads((tmp_path / d / "leaderboard.json").read_text()) for d in ("first", "again"))
    for board in (first, again):
        board["settings"].pop("created_at")
    assert first == again
    capsys.readouterr()


WITH_WORKERS = """
import sys
from rolebench_eval.leaderboard import build, workers
workers.PARALLEL_BYTES = 1  # the fixture's runs read by worker processes, started first thing
build.BACKGROUND_ITEMS = 0  # and the figures drawn by them
if __name__ == "__main__":
    from rolebench_eval.__main__ import main  # the console script's

    print("ready", flush=True)  # the sweep's clock starts here: a Ctrl-C before is this script's, not ours
    sys.exit(main())
"""


def _group_ends(group: int) -> bool:
    """Whether every process of ``group`` ends (a worker, multiprocessing's resource tracker), however long
    they take to see that the build ended; False only for one still there after a minute: a hang."""
    for _ in range(600):
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_ctrl_c_while_workers_start_read_or_draw_is_one_line(tmp_path):
    """A Ctrl-C reaches every process of the group; the build's workers leave it to the build (which stops
    with its one line), also while they start: none prints a traceback, none is left running."""
    script = tmp_path / "lb.py"
    script.write_text(WITH_WORKERS, encoding="utf-8")
    args = [str(RUNS / "a"), str(RUNS / "c"), "--n-boot", "50", "--no-cache"]
    stopped = set()
    for k, delay in enumerate([0.1 * i for i in range(24)]):
        out = tmp_path / f"site{k}"
        proc = subprocess.Popen([sys.executable, str(script), "leaderboard", *args, "--out", str(out)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        assert proc.stdout.readline() == "ready\n"
        time.sleep(delay)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert _group_ends(proc.pid), f"a process of the build was left running after a Ctrl-C at {delay:.1f} s"
        assert not list(tmp_path.glob(f".{out.name}.new-*")), delay  # no worker wrote into a removed stage
        assert proc.returncode in (0, 130), (delay, proc.returncode, err[-3000:])
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, (delay, err[-3000:])
        if proc.returncode == 130:
            assert err.strip().count("\n") == 0 and "interrupted" in err, err
            stopped.add(delay)
    assert stopped
