"""PNG figures for papers and READMEs (matplotlib, Agg backend, imported only here); :mod:`.figures` says
where they are drawn and keeps them.

Text from the inputs is never markup: mathtext is off (a ``$`` in a model name is a
dollar sign), a label starting with ``_`` is not hidden from the legend, and long labels
are cut. Role names in Chinese need a CJK font: the first installed one of
:data:`CJK_FONTS` is used, and a build that has CJK text but no such font warns once.
"""

from __future__ import annotations

import io
import logging
import re
import warnings
from pathlib import Path

from rolebench_eval.catalogue import live_tasks
from rolebench_eval.catalogue import metrics as catalogue_metrics

from .model import MEASURED, Leaderboard, Row

log = logging.getLogger(__name__)
MAX_ROWS = 40
MAX_ROLE_LABELS = 80
MAX_LABEL = 40
DPI = 110
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "SimHei",
             "Source Han Sans SC", "AR PL UMing CN")
PAPER_KEYS = ("en_cus", "en_spe", "rolegen_cus", "rolegen_spe", "zh_cus", "zh_spe")
MEASURED_COLOR, REPORTED_COLOR = "#3b528b", "#c08a00"
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uff00-\uffef]")


def label(text: str) -> str:
    """An input string as a plot label: at most MAX_LABEL characters (its head and its tail around an
    ellipsis, where names of one family differ), never hidden from a legend."""
    text = " ".join(str(text).split())
    if len(text) > MAX_LABEL:
        head = (MAX_LABEL - 1) * 3 // 5
        text = text[:head].rstrip() + "…" + text[head - MAX_LABEL + 1:].lstrip()
    return " " + text if text.startswith("_") else text


def plot_labels(board: Leaderboard) -> dict[str, str]:
    """Row name -> its label in the figures (:func:`label`, numbered where two would read the same).
    The page lists every shortened one with its full name."""
    out: dict[str, str] = {}
    for name in [r.name for r in board.rows]:
        short, k = label(name), 1
        while short in out.values():
            k += 1
            short = f"{label(name)[:MAX_LABEL - 4]}… {k}"
        out[name] = short
    return out


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text


def _pyplot(texts: list[str]):
    """pyplot, set up for ``texts``; and whether they need a CJK font that is not installed."""
    quiet = logging.getLogger("matplotlib")
    if quiet.level == logging.NOTSET:  # its font-cache notes are not ours to print; a level set by the user stays
        quiet.setLevel(logging.ERROR)
    try:
        import matplotlib
    except ImportError as exc:
        from rolebench_eval.install import install_command

        raise ImportError(f"the leaderboard's PNG plots need matplotlib: {install_command('leaderboard')}") from exc

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    manager = font_manager.fontManager
    cjk = [f for f in CJK_FONTS if f in {f.name for f in manager.ttflist}]
    needed = any(_CJK.search(t) for t in texts)
    if not cjk and needed:  # matplotlib's font list may predate the font's installation: add what it lacks
        known = {f.fname for f in manager.ttflist}
        for path in font_manager.findSystemFonts():
            if path not in known:
                try:
                    manager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
        cjk = [f for f in CJK_FONTS if f in {f.name for f in manager.ttflist}]
    plt.rcParams.update({"font.family": ["DejaVu Sans", *cjk], "text.parse_math": False, "text.usetex": False,
                         "axes.titlelocation": "left"})
    return plt, not cjk and needed


def warn_no_cjk() -> None:
    """Said once per build whose figures needed a CJK font that is not installed."""
    log.warning("no CJK font installed (e.g. apt-get install fonts-wqy-microhei): Chinese role and model "
                "names show as boxes in the PNG plots; the HTML page is not affected")


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing")
        fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    return buffer.getvalue()


def _score_rows(board: Leaderboard) -> list[Row]:
    measured = [r for r in board.measured if r.value("score") is not None][:MAX_ROWS]
    reported = [r for r in board.rows if r.source != MEASURED and r.value("score") is not None]
    return sorted(measured + reported, key=lambda r: r.value("score"))


def plot_scores(plt, board: Leaderboard) -> bytes | None:
    """Forest plot of the Score: measured rows with 95% intervals, reported rows as diamonds."""
    rows = _score_rows(board)
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.3 * len(rows)), layout="constrained")
    for y, row in enumerate(rows):
        cell = row.cells["score"]
        if row.source == MEASURED:
            if cell.lo is not None:
                ax.plot([cell.lo, cell.hi], [y, y], color=MEASURED_COLOR, lw=2.2, alpha=0.55)
            ax.plot(cell.value, y, "o", color=MEASURED_COLOR, ms=6)
        else:
            ax.plot(cell.value, y, "D", mfc="white", mec=REPORTED_COLOR, mew=1.8, ms=6)
    labels = plot_labels(board)
    ax.set_yticks(range(len(rows)), [labels[r.name] + ("" if r.source == MEASURED else " (paper)") for r in rows],
                  fontsize=9)
    tasks = ", ".join(t.replace("rolebench_", "") for t in board.score_tasks)
    ax.set_xlabel(_wrap(f"Score: mean ROUGE-L recall over {tasks}", 80), fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title("RoleBench: measured (95% bootstrap CI) vs reported", fontsize=11)
    return _png(fig)


def plot_splits(plt, board: Leaderboard) -> bytes | None:
    """CUS and SPE per split, measured (with intervals) next to the paper's rows."""
    keys = [k for k in PAPER_KEYS if any(r.value(k) is not None for r in board.measured)]
    rows = [r for r in board.rows if any(r.value(k) is not None for k in keys)]
    rows = [r for r in rows if r.source == MEASURED][:8] + [r for r in rows if r.source != MEASURED][:8]
    if not keys or not rows:
        return None
    cols = {c.key: c for c in board.columns}
    fig, ax = plt.subplots(figsize=(max(7, 1.4 * len(keys) + 0.25 * len(rows)), 4.2), layout="constrained")
    width = 0.8 / len(rows)
    palette = plt.get_cmap("tab10").colors
    warm = ["#c08a00", "#b35900", "#8c564b", "#d62728", "#7f7f7f", "#bcbd22", "#e377c2", "#17becf"]
    hatches = ["///", "\\\\\\", "xxx", "...", "+++", "ooo", "---", "|||"]
    n_measured, labels = 0, plot_labels(board)
    for i, row in enumerate(rows):
        xs = [j + (i - (len(rows) - 1) / 2) * width for j in range(len(keys))]
        if row.source == MEASURED:
            style, name = {"color": palette[n_measured % len(palette)]}, labels[row.name]
            n_measured += 1
        else:
            k = i - n_measured
            style = {"hatch": hatches[k % len(hatches)], "edgecolor": warm[k % len(warm)], "facecolor": "white"}
            name = f"{labels[row.name]} (paper)"
        ax.bar(xs, [row.value(k) or 0 for k in keys], width * 0.95, label=name, **style)
        bars = [(x, row.cells[k]) for x, k in zip(xs, keys) if row.cells.get(k) is not None
                and row.cells[k].lo is not None]
        if bars:  # one errorbar call per row (a call per bar costs more than the rest of the figure)
            ax.errorbar([x for x, _ in bars], [c.value for _, c in bars], fmt="none", color="black", lw=1, capsize=2,
                        yerr=[[max(0.0, c.value - c.lo) for _, c in bars],  # float32 ends
                              [max(0.0, c.hi - c.value) for _, c in bars]])
    ax.set_xticks(range(len(keys)), [f"{_wrap(cols[k].group.split(' (')[0], 14)}\n{cols[k].display_name}"
                                     for k in keys], fontsize=8)
    ax.set_ylabel("ROUGE-L recall")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=7, ncol=2, frameon=False, bbox_to_anchor=(1.0, 1.0), loc="upper left")
    return _png(fig)


def plot_roles(plt, board: Leaderboard) -> bytes | None:
    """Heatmap of the per-role score (models x roles); role labels when there are few enough."""
    import numpy as np

    data = board.breakdowns.get("role", {})
    models = [r.name for r in board.measured if r.name in data][:20]
    roles = sorted(board.roles_by_task)
    if not models or not roles:
        return None
    grid = np.array([[np.nan if data[m].get(r) is None else data[m][r].value for r in roles] for m in models])
    fig, ax = plt.subplots(figsize=(min(16, max(6, 0.16 * len(roles) + 2)), 1.4 + 0.3 * len(models)),
                           layout="constrained")
    image = ax.imshow(grid, aspect="auto", cmap="viridis", interpolation="nearest")
    labels = plot_labels(board)
    ax.set_yticks(range(len(models)), [labels[m] for m in models], fontsize=8)
    if len(roles) <= MAX_ROLE_LABELS:
        ax.set_xticks(range(len(roles)), [label(r) for r in roles], fontsize=6, rotation=90)
    else:
        ax.set_xticks([])
        ax.set_xlabel(f"{len(roles)} roles (names in the page's heatmap and in breakdowns.csv)", fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.025, pad=0.01, label="score")
    ax.set_title("Score per role", fontsize=11)
    return _png(fig)


def plot_depth(plt, board: Leaderboard) -> bytes | None:
    """Multi-turn tasks: the paper metric against the conversation depth, with 95% intervals."""
    tasks = sorted({t for curves in board.depth_curves.values() for t in curves})
    models = [r.name for r in board.measured if r.name in board.depth_curves][:10]
    if not tasks or not models:
        return None
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks) + 1.5, 3.4), squeeze=False,
                             layout="constrained")
    labels = plot_labels(board)
    for ax, task in zip(axes[0], tasks):
        for model in models:
            curve = board.depth_curves[model].get(task)
            if not curve:
                continue
            depths = [d for d, _ in curve]
            line, = ax.plot(depths, [c.value for _, c in curve], "o-", ms=4, label=labels[model])
            if all(c.lo is not None for _, c in curve):
                ax.fill_between(depths, [c.lo for _, c in curve], [c.hi for _, c in curve], alpha=0.15,
                                color=line.get_color())
        ax.set_title(task.replace("rolebench_", ""), fontsize=10)
        ax.set_xticks(sorted({d for m in models for d, _ in board.depth_curves[m].get(task, [])}))
        ax.set_xlabel("depth (turns, the scored one included)", fontsize=8)
        ax.grid(alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0][0].set_ylabel("ROUGE-L recall")
    axes[0][-1].legend(fontsize=7, frameon=False, bbox_to_anchor=(1.0, 1.0), loc="upper left")
    return _png(fig)


def plot_drift(plt, board: Leaderboard) -> bytes | None:
    """Conversations (``live_tasks``): each main metric (a row of panels) by turn for each task (a column: replay
    and live never share one), one line per model with its 95% interval."""
    order = list(live_tasks())
    tasks = sorted({t for curves in board.drift_curves.values() for t in curves}, key=order.index)
    metrics = sorted({m for curves in board.drift_curves.values() for by in curves.values() for m in by},
                     key=list(catalogue_metrics()).index)
    models = [r.name for r in board.measured if r.name in board.drift_curves][:10]
    if not tasks or not models:
        return None
    fig, axes = plt.subplots(len(metrics), len(tasks), figsize=(4.2 * len(tasks) + 1.5, 3.0 * len(metrics)),
                             squeeze=False, layout="constrained")
    labels = plot_labels(board)
    for i, metric in enumerate(metrics):
        lower = catalogue_metrics()[metric].higher_is_better is False
        for ax, task in zip(axes[i], tasks):
            for model in models:
                curve = board.drift_curves[model].get(task, {}).get(metric)
                if curve:
                    turns = [t for t, _ in curve]
                    line, = ax.plot(turns, [c.value for _, c in curve], "o-", ms=4, label=labels[model])
                    if all(c.lo is not None for _, c in curve):
                        ax.fill_between(turns, [c.lo for _, c in curve], [c.hi for _, c in curve], alpha=0.15,
                                        color=line.get_color())
            ax.set_title(f"{live_tasks()[task].label}: {metric}{' (lower is better)' if lower else ''}", fontsize=9)
            ax.set_xticks(sorted({t for m in models for t, _ in board.drift_curves[m].get(task, {}).get(metric, [])}))
            ax.set_xlabel("turn of the conversation", fontsize=8)
            ax.grid(alpha=0.3)
            ax.spines[["top", "right"]].set_visible(False)
    handles = {h.get_label(): h for ax in axes.flat for h in ax.get_legend_handles_labels()[0]}  # every model once
    axes[0][-1].legend(handles.values(), handles.keys(), fontsize=7, frameon=False, bbox_to_anchor=(1.0, 1.0),
                       loc="upper left")
    return _png(fig)


def plot_key(board: Leaderboard) -> str:
    """A digest of everything the figures show (and of this module and matplotlib's version)."""
    import hashlib
    from importlib.metadata import version

    import msgspec

    keys = ("score", *PAPER_KEYS)
    data = {
        "rows": [[r.name, r.source, [[k, *(vars(r.cells[k]).values())] for k in keys if k in r.cells]]
                 for r in board.rows],
        "columns": [[c.key, c.group, c.display_name] for c in board.columns if c.key in keys],
        "score_tasks": board.score_tasks, "roles": sorted(board.roles_by_task),
        "role_cells": {m: {g: c.value for g, c in cells.items()} for m, cells in board.breakdowns.get("role", {}).items()},
        "depth": {m: {t: [[d, c.value, c.lo, c.hi] for d, c in curve] for t, curve in curves.items()}
                  for m, curves in board.depth_curves.items()},
        "drift": {m: {t: {k: [[d, c.value, c.lo, c.hi] for d, c in curve] for k, curve in by.items()}
                      for t, by in curves.items()} for m, curves in board.drift_curves.items()},
        "code": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(), "matplotlib": version("matplotlib"),
    }
    return hashlib.sha256(msgspec.json.encode(data)).hexdigest()


FIGURES = {"scores_png": ("scores.png", plot_scores), "splits_png": ("splits.png", plot_splits),
           "roles_png": ("roles.png", plot_roles), "depth_png": ("depth.png", plot_depth),
           "drift_png": ("drift.png", plot_drift)}  # output kind -> (file, drawing function)


def draw(kind: str, board: Leaderboard) -> tuple[bytes | None, bool]:
    """The PNG of the figure ``kind`` of :data:`FIGURES` (None when the board has nothing for it), written by
    whoever collects them (never by a worker: a build that stops removes its site, a worker could not know);
    and whether its text lacked a CJK font (:func:`warn_no_cjk`, said once by the collector)."""
    plt, lacks_cjk = _pyplot([r.name for r in board.rows] + list(board.roles_by_task))
    png = FIGURES[kind][1](plt, board)
    return png, lacks_cjk and png is not None


def import_pyplot() -> None:
    """Import pyplot (Agg) ahead of drawing: the build's workers do it while the board is computed, when a
    CPU is free, not after (it is a third of a board's drawing); without matplotlib, nothing (drawing says so)."""
    try:
        _pyplot([])
    except ImportError:
        pass
