"""``rolebench-eval demo``: the whole pipeline offline on a CPU, ending in a score table and a leaderboard page.

1. the ``rolegpt`` replay on every RoleBench split present in the data folder (:func:`reproduce`);
2. a tiny random Llama (its tokenizer trained on the Chinese train data) and its RoCIT LoRA
   adapter, trained on the Chinese train splits with the tiny CPU recipe;
3. both evaluated on the full Chinese test splits (``rolebench_zh``), with the chat template;
4. the leaderboard of all runs beside the paper's reported rows, and the same rows as a table.

Nothing is downloaded. The tiny models are smoke-test models, not real role-players: their
rows show the pipeline at work (the adapter learns the data's common characters and phrasing),
not what a 7B model reaches. A rerun reuses the built model and the finished adapter.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rolebench_eval.errors import InputError
from rolebench_eval.outputs.models import REPLAY_LABEL

log = logging.getLogger(__name__)
ZH_SPLITS = ("general_zh", "specific_zh")
PAPER_ROWS = ("RoleGPT", "ChatGLM2", "RoleGLM")  # the paper's Table 4 (Chinese)
BASE_NAME, ROCIT_NAME = "tiny-llama (demo)", "tiny-llama + RoCIT (demo)"  # the replay's: REPLAY_LABEL


@dataclass
class DemoSettings:
    """What the demo builds, trains and generates (small enough for a 2-core CPU in about a minute)."""

    tokenizer_items: int = 2000  # train items per Chinese split the tiny tokenizer learns from
    vocab_size: int = 4000  # covers the common Chinese characters
    output_scale: float = 8.0  # lets the random model's logits move (see rolebench_eval.tiny)
    train_items: int = 200  # train items per Chinese split rendered for training (steps x batch 4 = 200 used)
    train_steps: int = 50  # the loss flattens after about 30 (measured)
    learning_rate: float = 1e-2
    lora_r: int = 32
    max_length: int = 256  # tokens per training sample (the answer is cut, the role prompt kept)
    max_gen_toks: int = 16
    batch_size: int = 256


def check_data(data_dir: Path) -> None:
    """The demo trains on the Chinese train files: say so in one line when they are not there."""
    from rolebench_eval.catalogue import get_split

    for name in ZH_SPLITS:
        for file in ("train.jsonl", "test.jsonl"):
            path = data_dir / get_split(name).dir / file
            if not path.is_file():
                raise InputError(path, None, None, "not found: the demo trains and evaluates a tiny model on the "
                                 "Chinese splits of a local RoleBench copy (the Hub dataset's layout)")


def data_root(data_dir: str | Path | None) -> Path:
    """``data_dir``, else ``$ROLEBENCH_DATA_DIR``, else the Chinese files of the Hub dataset (downloaded once).

    Files of one Hub revision share one snapshot folder in the Hugging Face cache, in the
    dataset's layout, so that folder serves as the demo's data folder.
    """
    from rolebench_eval.catalogue import get_split
    from rolebench_eval.source import DataSource

    source = DataSource.resolve(data_dir)
    if source.local_root is not None:
        return source.local_root
    root = None
    for name in ZH_SPLITS:
        split = get_split(name)
        optional = [f"{split.dir}/rolegpt_baseline.jsonl", f"{split.profiles}/desc.json", *filter(None, [split.raw])]
        for relpath in [f"{split.dir}/train.jsonl", f"{split.dir}/test.jsonl", *optional]:
            path = source.fetch(relpath)
            if path is None and relpath not in optional:
                raise InputError(source.where(relpath), None, None, "not in the Hub dataset; the demo needs the "
                                 "Chinese train and test splits (pass --data-dir to use a local copy)")
            if path is not None:
                root = path.parents[len(Path(relpath).parts) - 1]
    return root


def tokenizer_corpus(data_dir: Path, limit: int) -> list[str]:
    """Questions and references of the first ``limit`` items of each Chinese train split."""
    from rolebench_eval.catalogue import get_split
    from rolebench_eval.data import read_items

    texts = []
    for name in ZH_SPLITS:
        for item in read_items(data_dir / get_split(name).dir / "train.jsonl")[:limit]:
            texts.append(item.question + "\n" + "\n".join(item.references))
    return texts


def _recipe_path() -> Path:
    from importlib.resources import files

    return Path(str(files("rolebench_eval.finetune") / "recipes" / "tiny_cpu.yaml"))


def train_tiny_models(data_dir: Path, out: Path, settings: DemoSettings) -> tuple[Path, Path]:
    """Build the tiny base model and train its RoCIT adapter (both kept for a rerun); returns (base, adapter)."""
    from rolebench_eval.finetune import train
    from rolebench_eval.tiny import build_tiny_llama

    base = out / "models" / "tiny-llama"
    if not (base / "config.json").is_file():
        build_tiny_llama(base, tokenizer_corpus(data_dir, settings.tokenizer_items),
                         vocab_size=settings.vocab_size, output_scale=settings.output_scale)
    adapter = train(_recipe_path(), model_name_or_path=str(base), output_dir=str(out / "models" / "tiny-llama-rocit"),
                    data_dir=str(data_dir), max_items_per_split=settings.train_items, max_steps=settings.train_steps,
                    learning_rate=settings.learning_rate, lora_r=settings.lora_r, lora_alpha=2 * settings.lora_r,
                    max_length=settings.max_length, save_strategy="no", logging_steps=5, disable_tqdm=False,
                    resume=True)  # no checkpoints kept; a finished adapter is reused, a killed run starts again
    return base, adapter


def run_demo(data_dir: str | Path | None, out: str | Path, settings: DemoSettings | None = None,
             echo: Callable[[str], None] = print) -> Path:
    """Run the four steps, print the score table, and return the path of the leaderboard page."""
    from rolebench_eval.outputs import run_name
    from rolebench_eval.reproduce import reproduce
    from rolebench_eval.tasks.runner import evaluate

    settings = settings or DemoSettings()
    data_dir, out = data_root(data_dir), Path(out).resolve()
    check_data(data_dir)
    runs, measured = out / "runs", {}
    with quiet():
        echo("1/4 RoleGPT replay on every RoleBench split in the data folder")
        measured[REPLAY_LABEL] = reproduce(data_dir, runs)[0]
        echo("2/4 a tiny random Llama and its RoCIT LoRA adapter, trained on the Chinese train splits")
        base, adapter = train_tiny_models(data_dir, out, settings)
        for name, model_args in ((BASE_NAME, f"pretrained={base}"), (ROCIT_NAME, f"pretrained={base},peft={adapter}")):
            echo(f"3/4 evaluating {name} on the Chinese test splits (rolebench_zh)")
            measured[name] = evaluate(model="hf", model_args=model_args, tasks=["rolebench_zh"], data_dir=data_dir,
                                      device="cpu", batch_size=settings.batch_size, apply_chat_template=True,
                                      output_path=runs, log_samples=True,
                                      gen_kwargs=f"max_gen_toks={settings.max_gen_toks}")
        echo("4/4 the leaderboard")
        board = out / "leaderboard"
        build_leaderboard(runs, board, {run_name(str(base), str(adapter)): ROCIT_NAME, str(base): BASE_NAME})
    echo("\n" + score_table(measured))
    echo("\nThe tiny models show the pipeline at work, not what a 7B model reaches (finetune/recipes/).")
    return board / "index.html"


def build_leaderboard(runs: Path, board: Path, names: dict[str, str]) -> None:
    from rolebench_eval.leaderboard import build_leaderboard as build
    from rolebench_eval.leaderboard.build import Options

    build([runs], out=board, options=Options(names=names))


def score_table(measured: dict[str, dict]) -> str:
    """The measured Chinese rows (lm-eval results) above the paper's Table 4 rows, ROUGE-L recall."""
    from tabulate import tabulate

    from rolebench_eval.catalogue import task_of_split
    from rolebench_eval.paper import reported

    columns = [(task.name, metric) for task in map(task_of_split, ZH_SPLITS) for metric in task.paper_metrics]
    rows = []
    for name, results in measured.items():
        values = [results["results"].get(task, {}).get(f"{metric},none") for task, metric in columns]
        rows.append([name, "measured", *values])
    for name in PAPER_ROWS:
        paper = reported(name)
        rows.append([f"{name} (paper)", "reported", *(paper.get(c, (None,))[0] for c in columns)])
    headers = ["model", "source", *(f"{task.removeprefix('rolebench_')} {metric.upper()}" for task, metric in columns)]
    return tabulate(rows, headers=headers, floatfmt=".4f", missingval="—")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """One torch thread, progress bars for the long steps only, each warning once, no INFO chatter."""
    import datasets
    import torch
    import transformers

    loggers = {name: logging.getLogger(name) for name in ("lm_eval", "rolebench_eval", "datasets", "transformers")}
    levels = {name: logger.level for name, logger in loggers.items()}
    once = _Once()
    handlers = logging.getLogger().handlers
    for logger in loggers.values():
        logger.setLevel(logging.WARNING)
    for handler in handlers:
        handler.addFilter(once)
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    # The tiny model's operations are too small to split: a second thread only spin-waits
    # (measured: 129 s of CPU time for the whole demo with two threads, 72-75 s with one).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("once")
            warnings.simplefilter("ignore", FutureWarning)  # library deprecations a demo user cannot act on
            yield
    finally:
        torch.set_num_threads(threads)
        for name, logger in loggers.items():
            logger.setLevel(levels[name])
        for handler in handlers:
            handler.removeFilter(once)
        datasets.enable_progress_bars()
        transformers.utils.logging.enable_progress_bar()


class _Once(logging.Filter):
    """Passes each distinct log message once."""

    def __init__(self):
        super().__init__()
        self.seen: set[tuple[str, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.getMessage())
        if key in self.seen:
            return False
        self.seen.add(key)
        return True
