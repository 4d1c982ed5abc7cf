"""Where the board's figures (:mod:`.plots`) are drawn, and how they are kept.

Drawn here, or by the build's worker processes, one task per figure, the costliest first,
while this process writes the item browser and the pages: a board's figures took one worker
longer than all of that. This process writes them (a worker never writes into the site,
which a build that stops removes) and keeps them in the cache under :func:`.plots.plot_key`,
a digest of what they show, so a board whose figures would not change copies them instead.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from rolebench_eval.fileio import write_atomic

from .model import Leaderboard
from .plots import FIGURES, draw, plot_key, warn_no_cjk

log = logging.getLogger(__name__)
FIRST = ("splits_png", "roles_png")  # the costliest figures, sent to the workers before the others


def _kept(board: Leaderboard, out: Path, cache_dir: Path | None) -> dict[str, Path] | None:
    """The figures of an earlier build that showed the same, copied into ``out``; None when there are none."""
    if cache_dir is None:
        return None
    kept = cache_dir / "plots" / plot_key(board)
    try:
        made = json.loads((kept / "made.json").read_text(encoding="utf-8"))
        return {k: write_atomic(out / FIGURES[k][0], (kept / FIGURES[k][0]).read_bytes()) for k in made}
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a missing or broken entry: draw them


def _keep(board: Leaderboard, out: Path, cache_dir: Path | None, drawn: dict[str, tuple[bytes | None, bool]]
          ) -> dict[str, Path]:
    """Write the figures drawn (``drawn``: :func:`.plots.draw`'s answers by kind) into ``out`` and keep them in
    the cache; an earlier build's figure that this board has no data for is removed from ``out``."""
    if any(lacks_cjk for _, lacks_cjk in drawn.values()):
        warn_no_cjk()
    pngs = {k: drawn[k][0] for k in FIGURES if k in drawn and drawn[k][0] is not None}
    made = {k: write_atomic(out / FIGURES[k][0], png) for k, png in pngs.items()}
    if cache_dir is not None:
        kept = cache_dir / "plots" / plot_key(board)
        try:
            for k, png in pngs.items():
                write_atomic(kept / FIGURES[k][0], png)
            write_atomic(kept / "made.json", json.dumps(sorted(made)))  # last: the entry is complete
        except OSError as exc:
            log.warning("cannot keep the figures under %s: %s", kept, exc)
    for k, (name, _) in FIGURES.items():
        if k not in made:
            (out / name).unlink(missing_ok=True)  # a figure of an earlier build would contradict this board
    return made


def write_plots(board: Leaderboard, out: Path, cache_dir: Path | None = None) -> dict[str, Path]:
    """Write every figure that has data, drawn here; returns them by kind.

    With ``cache_dir``, figures of a board whose plotted data did not change are copied from
    the last build instead of drawn again: drawing and importing matplotlib are most of a
    rebuild from cached scores.
    """
    return Drawing(board, out, cache_dir).result()


class Drawing:
    """Figures being drawn, here or by ``workers`` (:class:`.workers.Workers`); :meth:`result` waits, then writes."""

    def __init__(self, board: Leaderboard, out: Path, cache_dir: Path | None, workers=None):
        self.board, self.out, self.cache_dir = board, out, cache_dir
        self.done, self.futures = _kept(board, out, cache_dir), {}
        if self.done is None and workers is not None:
            lean = dataclasses.replace(board, items=None)  # what the figures need, sent once per figure
            pool = workers.pool(len(FIGURES))
            self.futures = {k: pool.submit(draw, k, lean) for k in [*FIRST, *(k for k in FIGURES if k not in FIRST)]}

    def result(self) -> dict[str, Path]:
        if self.done is None:
            drawn = ({k: f.result() for k, f in self.futures.items()} if self.futures else
                     {k: draw(k, self.board) for k in FIGURES})
            self.done = _keep(self.board, self.out, self.cache_dir, drawn)
        return self.done
