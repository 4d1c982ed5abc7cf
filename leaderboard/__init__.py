"""RoleBench leaderboards from lm-eval results (installed as ``rolebench_eval.leaderboard``).

``build_leaderboard(inputs, judges=..., out=...)`` returns a :class:`Leaderboard`; the CLI
verb is ``rolebench-eval leaderboard`` (see :mod:`rolebench_eval.leaderboard.cli`).
numpy, jinja2 and matplotlib are imported only when a board is built.
"""

__all__ = ["build_leaderboard"]


def build_leaderboard(*args, **kwargs):
    """Build a leaderboard; see :func:`rolebench_eval.leaderboard.build.build_leaderboard`."""
    from .build import build_leaderboard as _build

    return _build(*args, **kwargs)
