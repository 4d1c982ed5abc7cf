"""Training throughput and peak memory of the tiny RoCIT recipe, with and without packing.

    ROLEBENCH_DATA_DIR=../shared/rolebench python benchmarks/bench_finetune.py [--items 64] [--repeats 3]

Builds the tiny random Llama (``rolebench_eval.tiny``), then trains the tiny recipe on the first
``--items`` items of each Chinese train split, once per run, alternating the reference (no packing)
and packing, each run in a fresh child process so its peak RSS is its own. Tokens/s counts
non-padding tokens (TRL's ``num_tokens``) over the trainer's train_runtime. Prints the median of
each and the packing/reference ratios. CPU only; one torch thread per run unless --threads.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RECIPE = REPO / "finetune" / "recipes" / "tiny_cpu.yaml"


def child(args: argparse.Namespace) -> None:
    """One training run; prints a JSON line with tokens/s and memory."""
    import torch
    import transformers  # noqa: F401  (imported before the baseline RSS is read)
    import trl  # noqa: F401
    from rolebench_eval.finetune import train

    torch.set_num_threads(args.threads)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = Path(args.out)
    train(RECIPE, model_name_or_path=args.model, output_dir=str(out), data_dir=args.data_dir,
          max_items_per_split=args.items, eval_holdout=0, max_steps=-1, num_train_epochs=1,
          per_device_train_batch_size=4, max_length=args.max_length, packing=args.packing,
          save_steps=100000, logging_steps=1)
    history = json.loads((out / "trainer_state.json").read_text(encoding="utf-8"))["log_history"]
    tokens = max(h["num_tokens"] for h in history if "num_tokens" in h)
    runtime = next(h["train_runtime"] for h in history if "train_runtime" in h)
    steps = max(h["step"] for h in history)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"tokens": tokens, "runtime": runtime, "steps": steps, "tokens_per_s": tokens / runtime,
                      "peak_rss_mb": peak / 1024, "train_rss_mb": (peak - before) / 1024}))


def build_model(path: Path) -> Path:
    """The tiny random Llama the tests use (tokenizer trained on our fixtures and sources)."""
    from rolebench_eval.tiny import build_tiny_llama

    corpus = [p.read_text(encoding="utf-8") for p in sorted((REPO / "tests" / "fixtures").rglob("*.jsonl"))]
    corpus += [p.read_text(encoding="utf-8") for p in sorted((REPO / "rolebench_eval").glob("*.py"))]
    return build_tiny_llama(path, corpus)


def run_one(args: argparse.Namespace, model: Path, packing: bool, out: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", "--model", str(model), "--out", str(out), "--items", str(args.items),
           "--max_length", str(args.max_length), "--threads", str(args.threads), "--data_dir", args.data_dir]
    env = os.environ | {"OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(cmd + (["--packing"] if packing else []), capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=64, help="items per Chinese train split")
    parser.add_argument("--max_length", type=int, default=1024, help="tokens per (packed) row")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data_dir", default=os.environ.get("ROLEBENCH_DATA_DIR") or str(REPO.parent / "shared" / "rolebench"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--packing", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    with tempfile.TemporaryDirectory(prefix="bench-finetune-") as tmp:
        model = build_model(Path(tmp) / "tiny-llama")
        runs = {False: [], True: []}
        for i in range(args.repeats):
            for packing in (False, True):
                runs[packing].append(run_one(args, model, packing, Path(tmp) / f"run-{i}-{packing}"))
    med = {p: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for p, rs in runs.items()}
    print(f"tiny recipe, {args.items} items x 2 Chinese train splits, 1 epoch, max_length {args.max_length}, "
          f"batch 4, {args.threads} thread(s), median of {args.repeats}")
    print(f"{'':14}{'tokens':>9}{'steps':>7}{'runtime s':>11}{'tokens/s':>10}{'peak RSS MB':>13}{'train RSS MB':>14}")
    for packing, name in ((False, "reference"), (True, "packing")):
        m = med[packing]
        print(f"{name:14}{m['tokens']:>9.0f}{m['steps']:>7.0f}{m['runtime']:>11.2f}{m['tokens_per_s']:>10.0f}"
              f"{m['peak_rss_mb']:>13.0f}{m['train_rss_mb']:>14.0f}")
    ref, pack = med[False], med[True]
    print(f"packing / reference: tokens/s x{pack['tokens_per_s'] / ref['tokens_per_s']:.2f}, "
          f"steps x{pack['steps'] / ref['steps']:.2f}, peak RSS x{pack['peak_rss_mb'] / ref['peak_rss_mb']:.2f}, "
          f"train RSS x{pack['train_rss_mb'] / max(ref['train_rss_mb'], 1e-9):.2f}")


if __name__ == "__main__":
    main()
