"""What the machine refuses (issue 21): full disks, read-only places, a file where a folder goes,
two writers of one folder, training that diverges, typos in --metadata, byte-order marks.

Each fault ends in one line naming the path and an exit status of the policy (6: could not
write), and never in half an output. A small tmpfs stands for a full disk where this process may
mount one (root); else those tests are skipped, and the file-size limit (``ulimit -f``, any user)
stands for a full disk instead.
"""

from __future__ import annotations

import errno
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rolebench_eval.cli import main
from rolebench_eval.errors import EXIT_WRITE, CouldNotWrite, InputError
from rolebench_eval.fileio import ensure_writable, folder_lock, read_json, whole_folder

HERE = Path(__file__).parent
RUNS = HERE / "fixtures" / "leaderboard" / "runs"
BRINE = HERE / "fixtures" / "generate" / "brine.yaml"


@pytest.fixture
def small_fs(tmp_path):
    """Mount a tmpfs of ``size`` bytes (``ro=True``: read-only) and return its folder; skip where not allowed."""
    mounted = []

    def mount(size: int, ro: bool = False) -> Path:
        where = tmp_path / f"fs{len(mounted)}"
        where.mkdir()
        options = f"size={size}" + (",ro" if ro else "")
        if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                          capture_output=True).returncode != 0:
            pytest.skip("cannot mount a tmpfs here (needs root)")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _board(*args: str) -> tuple[int, list[str]]:
    code = "import sys; from rolebench_eval.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", code, "leaderboard", str(RUNS / "a"), "--no-cache", *args],
                          capture_output=True, text=True)
    return done.returncode, done.stderr.strip().splitlines()


# --------------------------------------------------------------------------- one line, exit 6


def test_leaderboard_out_that_is_a_file_is_one_line_exit_6(tmp_path, capsys):
    target = tmp_path / "site"
    target.write_text("not a folder", encoding="utf-8")
    assert main(["leaderboard", str(RUNS / "a"), "--no-cache", "--out", str(target)]) == EXIT_WRITE
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"rolebench-eval leaderboard: error: could not write the leaderboard site ({target}): it exists "
                   "and is not a folder; pass a folder (new or existing)"]
    assert target.read_text(encoding="utf-8") == "not a folder"


def test_leaderboard_out_a_folder_of_other_files_is_bad_input_and_left_alone(tmp_path, capsys):
    """Like merge's --output_path not empty: the user's choice of folder (2), not the machine's refusal (6)."""
    target = tmp_path / "home"
    target.mkdir()
    (target / "thesis.tex").write_text("years of work", encoding="utf-8")
    assert main(["leaderboard", str(RUNS / "a"), "--no-cache", "--out", str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"rolebench-eval leaderboard: error: {target}: holds other files and no leaderboard.json of an "
                   "earlier build; the leaderboard site needs a new or empty folder"]
    assert [p.name for p in target.iterdir()] == ["thesis.tex"]


def test_leaderboard_out_under_proc_is_one_line_exit_6(capsys):
    assert main(["leaderboard", str(RUNS / "a"), "--no-cache", "--out", "/proc/rolebench-site"]) == EXIT_WRITE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not write the leaderboard site (/proc/rolebench-site): " in err[0]
    assert "No such file or directory" in err[0]


def test_leaderboard_out_on_a_read_only_file_system(small_fs, capsys):
    ro = small_fs(1 << 20, ro=True)
    assert main(["leaderboard", str(RUNS / "a"), "--no-cache", "--out", str(ro / "site")]) == EXIT_WRITE
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"rolebench-eval leaderboard: error: could not write the leaderboard site ({ro / 'site'}): "
                   "Read-only file system"]


@pytest.mark.parametrize("value", ["0", "-5"])
def test_leaderboard_n_boot_below_one_is_bad_input(tmp_path, value):
    code, err = _board("--out", str(tmp_path / "site"), "--n-boot", value)
    assert code == 2 and f"--n-boot: expected a whole number >= 1, got '{value}'" in err[-1]
    assert not (tmp_path / "site").exists()


def test_a_refused_write_anywhere_is_exit_6_naming_the_path(monkeypatch, capsys):
    """Whatever verb meets an OSError of the file system, the exit policy prints it as one line."""
    import rolebench_eval.cli as cli

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/out/x.json")

    monkeypatch.setattr(cli, "_tasks_dir", full)
    assert main(["tasks-dir"]) == EXIT_WRITE
    assert capsys.readouterr().err.strip() == ("rolebench-eval tasks-dir: error: could not write output "
                                               "(/data/out/x.json): No space left on device; files written before "
                                               "are whole (each written atomically)")

    def refused(args):
        raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")

    monkeypatch.setattr(cli, "_tasks_dir", refused)
    with pytest.raises(ConnectionRefusedError):  # not a write fault: a bug's traceback, not exit 6
        main(["tasks-dir"])


# --------------------------------------------------------------------------- whole outputs or none


@pytest.mark.slow
def test_a_full_disk_leaves_the_previous_site_whole(small_fs, tmp_path):
    first = tmp_path / "first"
    assert _board("--out", str(first), "--n-boot", "20")[0] == 0
    size = sum(p.stat().st_size for p in first.rglob("*") if p.is_file())
    disk = small_fs(size + size // 2)  # room for the old site, not for a second one beside it
    site = disk / "site"
    shutil.copytree(first, site)
    before = {p.name: p.read_bytes() for p in site.iterdir()}
    code, err = _board("--out", str(site), "--n-boot", "20")
    assert code == EXIT_WRITE and len(err) == 1 and "No space left on device" in err[0]
    assert {p.name: p.read_bytes() for p in site.iterdir()} == before  # the old build, whole
    assert sorted(p.name for p in disk.iterdir()) == [".site.lock", "site"]  # no staging folder left


def test_whole_folder_swaps_in_a_build_or_keeps_the_old_one(tmp_path):
    dest = tmp_path / "site"
    with whole_folder(dest, "the site", marker="index.json") as stage:
        (stage / "index.json").write_text("1", encoding="utf-8")
        (stage / "old-only.txt").write_text("x", encoding="utf-8")
    with pytest.raises(RuntimeError):
        with whole_folder(dest, "the site", marker="index.json") as stage:
            (stage / "index.json").write_text("2", encoding="utf-8")
            raise RuntimeError("disk full halfway")
    assert sorted(p.name for p in dest.iterdir()) == ["index.json", "old-only.txt"]
    assert (dest / "index.json").read_text(encoding="utf-8") == "1"
    with whole_folder(dest, "the site", marker="index.json") as stage:
        (stage / "index.json").write_text("3", encoding="utf-8")
    assert [p.name for p in dest.iterdir()] == ["index.json"]  # nothing of the older build mixed in
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


def test_whole_folder_never_swaps_away_a_folder_of_other_files(tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "thesis.tex").write_text("years of work", encoding="utf-8")
    with pytest.raises(InputError, match="holds other files and no index.json of an earlier build; the site needs a new or empty folder"):
        with whole_folder(tmp_path / "home", "the site", marker="index.json"):
            pass
    assert (tmp_path / "home" / "thesis.tex").read_text(encoding="utf-8") == "years of work"


def test_ensure_writable_creates_and_checks(tmp_path):
    assert ensure_writable(tmp_path / "a" / "b", "x") == tmp_path / "a" / "b"
    assert (tmp_path / "a" / "b").is_dir() and list((tmp_path / "a" / "b").iterdir()) == []
    (tmp_path / "f").write_text("", encoding="utf-8")
    with pytest.raises(CouldNotWrite) as err:
        ensure_writable(tmp_path / "f" / "sub", "x")
    assert err.value.path == str(tmp_path / "f" / "sub") and err.value.reason == "Not a directory"
    assert ensure_writable(tmp_path / "new" / "data", "x", create=False) == tmp_path / "new" / "data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "f"]  # checked, nothing left behind
    with pytest.raises(CouldNotWrite, match=r"could not write x \(/proc/rolebench/data\): No such file or directory"):
        ensure_writable("/proc/rolebench/data", "x", create=False)


# --------------------------------------------------------------------------- two writers of one folder


WRITER = """
import sys
from pathlib import Path
from rolebench_eval.generate.folder import write_role
from rolebench_eval.generate.profile import load_profile
profile = load_profile(sys.argv[2])
row = {"role": profile.name, "question": "Second?", "generated": ["Aye."]}
write_role(Path(sys.argv[1]), profile, "rolegpt", "general", {"train": [row], "test": [row]}, {})
print("written", flush=True)
"""


def test_a_second_generate_writer_waits_and_loses_no_rows(tmp_path):
    from rolebench_eval.generate.folder import _write_role
    from rolebench_eval.generate.profile import load_profile

    other = tmp_path / "profile"
    shutil.copytree(BRINE.parent, other)
    (other / "brine.yaml").write_text(BRINE.read_text(encoding="utf-8").replace(
        "name: Captain Ottoline Brine", "name: First Mate Pip"), encoding="utf-8")
    out = tmp_path / "data"
    with folder_lock(out, "the generated data folder"):  # the first writer, mid-write
        second = subprocess.Popen([sys.executable, "-c", WRITER, str(out), str(other / "brine.yaml")],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert "waiting for another command writing the generated data folder" in second.stderr.readline()
        assert second.poll() is None
        first = load_profile(BRINE)
        row = {"role": first.name, "question": "First?", "generated": ["Ahoy."]}
        _write_role(out, first, "rolegpt", "general", {"train": [row], "test": [row]}, {})
    assert second.wait() == 0 and second.stdout.read() == "written\n"
    for name in ("train", "test"):
        lines = (out / "general" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
        assert sorted(json.loads(line)["role"] for line in lines) == ["Captain Ottoline Brine", "First Mate Pip"]
    assert sorted(read_json(out / "profiles" / "desc.json")) == ["Captain Ottoline Brine", "First Mate Pip"]


# --------------------------------------------------------------------------- the judge's cache and outputs


CACHE_WRITER = """
import resource, sys
from rolebench_eval.llm.cache import ResponseCache
cache = ResponseCache(sys.argv[1])
cache.put("small", {"q": 1}, {"text": "ok"})
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 16, 1 << 16))  # ulimit -f: 64 KiB
try:
    cache.put("big", {"q": 2}, {"text": "x" * (1 << 20)})
except BaseException as err:
    print(type(err).__name__, err)
"""


def test_the_judge_cache_under_a_file_size_limit_is_one_line(tmp_path):
    path = tmp_path / "judge.sqlite"
    done = subprocess.run([sys.executable, "-c", CACHE_WRITER, str(path)], capture_output=True, text=True)
    assert done.stdout.startswith(f"CouldNotWrite could not write the response cache ({path}): disk I/O error; "
                                  "answers stored before are kept")
    from rolebench_eval.llm.cache import ResponseCache

    with ResponseCache(path) as cache:  # the cache itself stays consistent
        assert cache.get("small")["text"] == "ok" and cache.get("big") is None


def test_the_judge_cache_on_a_full_disk_is_one_line(small_fs):
    from rolebench_eval.llm.cache import ResponseCache

    disk = small_fs(256 << 10)
    with ResponseCache(disk / "judge.sqlite") as cache:
        cache.put("small", {"q": 1}, {"text": "ok"})
        with pytest.raises(CouldNotWrite) as err:
            cache.put("big", {"q": 2}, {"text": "x" * (1 << 20)})
    assert str(err.value).startswith(f"could not write the response cache ({disk / 'judge.sqlite'}): database or "
                                     "disk is full; answers stored before are kept")
    assert err.value.exit_code == EXIT_WRITE


def _judge_cmd(srv, root: Path, out: Path) -> list[str]:
    fix = HERE / "fixtures" / "judges"
    return ["judge", str(fix / "lmeval_out"), "--judge", "pairwise", "--model", "judge-m", "--base-url", srv.url,
            "--out", str(out), "--cache", str(root / "cache" / "judge.sqlite"), "--no-progress"]


def _judge_script() -> dict:
    return json.loads((HERE / "fixtures" / "judges" / "pairwise_script.json").read_text(encoding="utf-8"))


def test_judge_out_read_only_costs_nothing(llm_server, small_fs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    srv = llm_server(_judge_script(), expected_key="sk-test")
    ro = small_fs(1 << 20, ro=True)
    assert main(_judge_cmd(srv, tmp_path, ro / "judgments")) == EXIT_WRITE
    assert capsys.readouterr().err.strip().endswith(f"could not write the judge outputs ({ro / 'judgments'}): "
                                                    "Read-only file system")
    assert srv.requests() == []


@pytest.mark.slow
def test_judge_out_refused_after_paying_says_where_the_answers_are(llm_server, tmp_path, monkeypatch, capsys):
    from rolebench_eval.judges import report

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    srv = llm_server(_judge_script(), expected_key="sk-test")

    def read_only(folder, records, summary):
        raise OSError(errno.EROFS, "Read-only file system", str(folder / "annotations.jsonl"))

    monkeypatch.setattr(report, "write_outputs", read_only)
    assert main(_judge_cmd(srv, tmp_path, tmp_path / "judgments")) == EXIT_WRITE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not write the judge outputs (" in err[0] and "Read-only file system" in err[0]
    assert f"every answer received is cached in {tmp_path / 'cache' / 'judge.sqlite'}: rerun with another --out, " \
           "at no cost" in err[0]
    paid = len(srv.requests())
    assert paid >= 18  # 18 judgments (and the script's retries)
    monkeypatch.undo()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert main(_judge_cmd(srv, tmp_path, tmp_path / "judgments2")) == 0
    assert len(srv.requests()) == paid  # the rerun with another --out sends nothing
    assert (tmp_path / "judgments2" / "fake__cand-7b" / "rolebench_specific_en" / "pairwise" / "summary.json").is_file()


# --------------------------------------------------------------------------- --metadata typos


@pytest.mark.parametrize("key, near", [("depth", "depths"), ("K", "k"), ("item_per_role", "items_per_role"),
                                       ("data-dir", "data_dir")])
def test_a_metadata_key_one_or_two_edits_from_a_known_one_is_bad_input(key, near):
    from rolebench_eval.tasks.runner import check_metadata_keys

    with pytest.raises(InputError) as err:
        check_metadata_keys({key: 1})
    assert str(err.value) == f"--metadata: field '{key}': no RoleBench task reads this key; did you mean '{near}'?"


def test_an_unknown_metadata_key_is_a_warning_naming_the_keys_read(caplog):
    from rolebench_eval.tasks.runner import check_metadata_keys

    check_metadata_keys({"depths": [2], "k": 5, "data_dir": "x"})
    assert caplog.records == []
    check_metadata_keys({"temperature": 0.3})
    [record] = caplog.records
    assert record.levelname == "WARNING" and "'temperature' is read by no RoleBench task" in record.getMessage()
    assert "depths, items_per_role, history_seed, k" in record.getMessage()


def test_run_refuses_a_metadata_typo_before_loading_anything(capsys):
    assert main(["run", "--model", "rolegpt", "--tasks", "rolebench_mt_specific_zh",
                 "--metadata", '{"depth": [2]}']) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "rolebench-eval run: error: --metadata: field 'depth': no RoleBench task reads this key; "
        "did you mean 'depths'?")


# --------------------------------------------------------------------------- byte-order marks


def test_a_bom_in_desc_json_and_in_typed_records_is_accepted(tmp_path):
    from rolebench_eval.data import read_descriptions
    from rolebench_eval.outputs.generated import read_folder_record

    desc = tmp_path / "desc.json"
    desc.write_bytes(b"\xef\xbb\xbf" + json.dumps({"Brine": "A captain."}).encode("utf-8"))
    assert read_descriptions(desc) == {"Brine": "A captain."}
    record = tmp_path / "rolebench_custom.json"
    record.write_bytes(b"\xef\xbb\xbf" + json.dumps({"format_version": 1, "lang": "en", "roles": {}}).encode())
    assert read_folder_record(record).lang == "en"


# --------------------------------------------------------------------------- training never succeeds with garbage


@pytest.mark.parametrize("body, key, problem", [
    ("learning_rate: .inf\n", "learning_rate", "must be a finite number, got inf"),
    ("learning_rate: .nan\n", "learning_rate", "must be a finite number, got nan"),
    ("max_steps: -3\n", "max_steps", "got -3: a number of optimizer steps (> 0), or -1 (the default)"),
    ("adam_beta1: 1.5\n", "adam_beta1", "must be in [0, 1], got 1.5"),
    ("weight_decay: -.inf\n", "weight_decay", "must be a finite number, got -inf"),
])
def test_numeric_recipe_values_are_checked_naming_file_and_key(tmp_path, body, key, problem):
    from rolebench_eval.finetune.args import RecipeError
    from rolebench_eval.finetune.recipe import parse

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("splits: [general_zh]\nbf16: false\n" + body, encoding="utf-8")
    with pytest.raises(RecipeError) as err:
        parse(["--config", str(recipe), "--model_name_or_path", "m", "--output_dir", str(tmp_path / "o")])
    assert str(err.value).startswith(f"{recipe}:3: field '{key}': {problem}")


def test_a_nan_learning_rate_flag_is_refused(tmp_path):
    from rolebench_eval.finetune.args import RecipeError
    from rolebench_eval.finetune.recipe import parse

    with pytest.raises(RecipeError, match="field 'learning_rate': must be a finite number, got nan"):
        parse(["--splits", "general_zh", "--model_name_or_path", "m", "--output_dir", str(tmp_path / "o"),
               "--bf16", "false", "--learning_rate", "nan"])


def test_an_output_dir_inside_the_data_folder_is_refused(tmp_path, fixture_data_dir):
    from rolebench_eval.finetune.args import RecipeError
    from rolebench_eval.finetune.recipe import parse

    with pytest.raises(RecipeError) as err:
        parse(["--splits", "general_zh", "--data_dir", str(fixture_data_dir), "--model_name_or_path", "m",
               "--bf16", "false", "--output_dir", str(fixture_data_dir / "runs" / "x")])
    assert err.value.field == "output_dir" and f"inside the data folder {fixture_data_dir}" in err.value.problem
    assert not (fixture_data_dir / "runs").exists()


def test_divergence_stops_at_that_step(tmp_path):
    from types import SimpleNamespace

    import torch

    from rolebench_eval.finetune.trainer import Diverged, StopOnDivergence

    callback, args = StopOnDivergence(), SimpleNamespace(learning_rate=math.inf)
    model = torch.nn.Linear(2, 2)
    callback.on_step_end(args, SimpleNamespace(global_step=3), None, model=model)  # finite: goes on
    callback.on_log(args, SimpleNamespace(global_step=3), None, logs={"loss": 1.5, "grad_norm": 0.2})
    with torch.no_grad():
        model.weight[0, 0] = math.nan
    with pytest.raises(Diverged, match="training diverged at step 4: trainable weight weight is not finite"):
        callback.on_step_end(args, SimpleNamespace(global_step=4), None, model=model)
    with pytest.raises(Diverged, match="at step 5: grad_norm is nan") as err:
        callback.on_log(args, SimpleNamespace(global_step=5), None, logs={"loss": 0.0, "grad_norm": math.nan})
    assert err.value.exit_code == 5


@pytest.mark.slow
def test_a_diverging_run_exits_5_and_writes_no_adapter(tiny_llama, fixture_data_dir, tmp_path):
    """A finite but absurd learning rate passes the checks; the first non-finite step stops the run."""
    from rolebench_eval.finetune import train
    from rolebench_eval.finetune.trainer import Diverged

    tiny = HERE.parent / "finetune" / "recipes" / "tiny_cpu.yaml"
    with pytest.raises(Diverged, match="training diverged at step [1-4]: .*no adapter written") as err:
        train(tiny, model_name_or_path=str(tiny_llama), output_dir=str(tmp_path / "run"),
              data_dir=str(fixture_data_dir), splits=["general_zh"], learning_rate=1e30, max_steps=4)
    assert err.value.exit_code == 5
    assert not (tmp_path / "run" / "adapter").exists() and not (tmp_path / "run" / "adapter.partial").exists()
