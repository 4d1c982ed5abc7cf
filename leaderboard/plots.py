"""PNG figures for papers and READMEs (matplotlib, Agg backend, imported only here)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from .model import MEASURED, Leaderboard, Row
from rolebench_eval.fileio import write_atomic

MAX_ROWS = 40
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "SimHei")
PAPER_KEYS = ("en_cus", "en_spe", "rolegen_cus", "rolegen_spe", "zh_cus", "zh_spe")
MEASURED_COLOR, REPORTED_COLOR = "#3b528b", "#c08a00"


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("the leaderboard's PNG plots need matplotlib: "
                          "pip install 'rolebench-eval[leaderboard]'") from exc

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    available = {f.name for f in font_manager.fontManager.ttflist}
    plt.rcParams["font.family"] = ["DejaVu Sans", *(f for f in CJK_FONTS if f in available)]
    return plt


def _save(fig, path: Path) -> Path:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing")
        fig.savefig(buffer, format="png", dpi=150, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return write_atomic(path, buffer.getvalue())


def _score_rows(board: Leaderboard) -> list[Row]:
    measured = [r for r in board.rows if r.source == MEASURED and r.value("score") is not None][:MAX_ROWS]
    reported = [r for r in board.rows if r.source != MEASURED and r.value("score") is not None]
    return sorted(measured + reported, key=lambda r: r.value("score"))


def plot_scores(board: Leaderboard, path: Path) -> Path | None:
    """Forest plot of the Score: measured rows with 95% intervals, reported rows as diamonds."""
    rows = _score_rows(board)
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.32 * len(rows)))
    for y, row in enumerate(rows):
        cell = row.cells["score"]
        if row.source == MEASURED:
            if cell.lo is not None:
                ax.plot([cell.lo, cell.hi], [y, y], color=MEASURED_COLOR, lw=2.2, alpha=0.55)
            ax.plot(cell.value, y, "o", color=MEASURED_COLOR, ms=6)
        else:
            ax.plot(cell.value, y, "D", mfc="white", mec=REPORTED_COLOR, mew=1.8, ms=6)
    labels = [r.name if r.source == MEASURED else f"{r.name} (paper)" for r in rows]
    ax.set_yticks(range(len(rows)), labels, fontsize=9)
    tasks = ", ".join(t.replace("rolebench_", "") for t in board.score_tasks)
    ax.set_xlabel(f"Score: mean ROUGE-L recall over {tasks}", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title("RoleBench: measured (95% bootstrap CI) vs reported", fontsize=11, loc="left")
    return _save(fig, path)


def plot_splits(board: Leaderboard, path: Path) -> Path | None:
    """CUS and SPE per split, measured (with intervals) next to the paper's rows."""
    keys = [k for k in PAPER_KEYS if any(r.value(k) is not None for r in board.rows if r.source == MEASURED)]
    rows = [r for r in board.rows if any(r.value(k) is not None for k in keys)]
    rows = [r for r in rows if r.source == MEASURED][:8] + [r for r in rows if r.source != MEASURED][:8]
    if not keys or not rows:
        return None
    plt = _pyplot()
    cols = {c.key: c for c in board.columns}
    fig, ax = plt.subplots(figsize=(max(7, 1.4 * len(keys) + 0.25 * len(rows)), 4.2))
    width = 0.8 / len(rows)
    palette = plt.get_cmap("tab10").colors
    warm = ["#c08a00", "#b35900", "#8c564b", "#d62728", "#7f7f7f", "#bcbd22", "#e377c2", "#17becf"]
    hatches = ["///", "\\\\\\", "xxx", "...", "+++", "ooo", "---", "|||"]
    n_measured = 0
    for i, row in enumerate(rows):
        xs = [j + (i - (len(rows) - 1) / 2) * width for j in range(len(keys))]
        vals = [row.value(k) or 0 for k in keys]
        if row.source == MEASURED:
            style, label = {"color": palette[n_measured % len(palette)]}, row.name
            n_measured += 1
        else:
            k = i - n_measured
            style = {"hatch": hatches[k % len(hatches)], "edgecolor": warm[k % len(warm)], "facecolor": "white"}
            label = f"{row.name} (paper)"
        ax.bar(xs, vals, width * 0.95, label=label, **style)
        for x, k in zip(xs, keys):
            cell = row.cells.get(k)
            if cell is not None and cell.lo is not None:
                below, above = max(0.0, cell.value - cell.lo), max(0.0, cell.hi - cell.value)  # float32 ends
                ax.errorbar(x, cell.value, yerr=[[below], [above]], color="black", lw=1, capsize=2)
    ax.set_xticks(range(len(keys)), [f"{cols[k].group.split(' (')[0]}\n{cols[k].display_name}" for k in keys],
                  fontsize=8)
    ax.set_ylabel("ROUGE-L recall")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=7, ncol=2, frameon=False, bbox_to_anchor=(1.0, 1.0), loc="upper left")
    return _save(fig, path)


def plot_roles(board: Leaderboard, path: Path) -> Path | None:
    """Heatmap of the per-role score (models x roles)."""
    data = board.breakdowns.get("role", {})
    models = [r.name for r in board.rows if r.source == MEASURED and r.name in data][:20]
    roles = sorted(board.roles_by_task)
    if not models or not roles:
        return None
    import numpy as np

    plt = _pyplot()
    grid = np.array([[np.nan if data[m].get(r) is None else data[m][r].value for r in roles] for m in models])
    fig, ax = plt.subplots(figsize=(max(6, 0.16 * len(roles) + 2), 1.2 + 0.3 * len(models)))
    image = ax.imshow(grid, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_yticks(range(len(models)), models, fontsize=8)
    ax.set_xticks(range(len(roles)), roles, fontsize=6, rotation=90)
    fig.colorbar(image, ax=ax, fraction=0.025, pad=0.01, label="score")
    ax.set_title("Score per role", fontsize=11, loc="left")
    return _save(fig, path)


def write_plots(board: Leaderboard, out: Path) -> dict[str, Path]:
    """Write every figure that has data; returns them by name."""
    made = {"scores_png": plot_scores(board, out / "scores.png"),
            "splits_png": plot_splits(board, out / "splits.png"),
            "roles_png": plot_roles(board, out / "roles.png")}
    return {k: v for k, v in made.items() if v is not None}
