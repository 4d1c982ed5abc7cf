"""Leaderboard statistics: the vectorised bootstrap against a plain loop, intervals, paired tests."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from rolebench_eval.leaderboard.bootstrap import (
    Resampling,
    TaskItems,
    generator,
    paired_test,
    percentile_ci,
    resample_counts,
    role_groups,
    stratified_means_loop,
    task_bootstrap,
)

N_BOOT = 300


@pytest.fixture(scope="module")
def task():
    """4 runs x 61 items in 3 roles, with unscored items, item types and pairs."""
    rng = np.random.default_rng(7)
    n = 61
    spe = rng.random((4, n))
    spe[1, ::7] = np.nan  # run 1 skipped some items
    spe[3, :5] = np.nan
    values = {"spe": spe, "rougeL_f": rng.random((4, n))}
    roles = rng.integers(0, 3, n)
    types = rng.integers(0, 4, n).astype(np.uint8)  # 0 none, 1 based, 2 agnostic, 3 both
    pairs = [(0, 1), (1, 3), (0, 2)]
    boot = task_bootstrap("t", TaskItems(values, roles, ["b", "a", "c"], types), "spe", pairs, Resampling(N_BOOT, 5))
    groups = role_groups(roles, ["b", "a", "c"])
    return values, roles, types, pairs, boot, groups


def test_resample_counts_follow_the_documented_draws():
    counts = resample_counts(13, 50, generator(1, "x#r"))
    draws = generator(1, "x#r").integers(0, 13, size=(50, 13))
    expected = np.stack([np.bincount(row, minlength=13) for row in draws], axis=1)
    assert counts.shape == (13, 50)
    assert np.array_equal(counts, expected)
    assert (counts.sum(axis=0) == 13).all()


def test_generator_is_seeded_by_seed_and_key():
    a = generator(3, "t#role").integers(0, 1000, 5)
    assert np.array_equal(a, np.random.default_rng([3, zlib.crc32(b"t#role")]).integers(0, 1000, 5))
    assert not np.array_equal(a, generator(4, "t#role").integers(0, 1000, 5))


def test_run_means_match_the_loop_reference(task):
    values, _, _, _, boot, groups = task
    for metric, matrix in values.items():
        for run in range(matrix.shape[0]):
            reference = stratified_means_loop(matrix[run], groups, N_BOOT, 5, "t")
            np.testing.assert_allclose(boot.means[metric][run], reference, atol=1e-6)


def test_pair_differences_match_the_loop_reference(task):
    values, _, _, pairs, boot, groups = task
    for k, (a, b) in enumerate(pairs):
        reference = stratified_means_loop(values["spe"][a] - values["spe"][b], groups, N_BOOT, 5, "t")
        np.testing.assert_allclose(boot.pairs[k], reference, atol=1e-6)


def test_role_means_match_the_loop_reference(task):
    values, _, _, _, boot, groups = task
    assert list(boot.roles) == ["a", "b", "c"]
    for role, positions in groups.items():
        for run in range(4):
            reference = stratified_means_loop(values["spe"][run], {role: positions}, N_BOOT, 5, "t")
            np.testing.assert_allclose(boot.roles[role][run], reference, atol=1e-6, equal_nan=True)


def test_type_means_match_a_direct_loop(task):
    values, roles, types, _, boot, groups = task
    draws = {r: generator(5, f"t#{r}").integers(0, len(p), size=(N_BOOT, len(p))) for r, p in groups.items()}
    for name, bit in (("script_based", 1), ("script_agnostic", 2)):
        for run in range(4):
            expected = []
            for b in range(N_BOOT):
                idx = np.concatenate([p[draws[r][b]] for r, p in groups.items()])
                drawn = values["spe"][run][idx[(types[idx] & bit) != 0]]
                drawn = drawn[~np.isnan(drawn)]
                expected.append(drawn.mean())
            np.testing.assert_allclose(boot.types[name][run], expected, atol=1e-6)


def test_percentile_ci_is_numpy_percentile():
    boot = np.random.default_rng(0).normal(size=(3, 400))
    lo, hi = percentile_ci(boot)
    np.testing.assert_allclose(lo, np.percentile(boot, 2.5, axis=1), rtol=1e-14)
    np.testing.assert_allclose(hi, np.percentile(boot, 97.5, axis=1), rtol=1e-14)


def test_paired_test_marks_ties_and_computes_p():
    boot = np.linspace(-0.01, 0.03, 401)
    test = paired_test("other", 0.01, boot, 50)
    assert test.tie and test.lo < 0 < test.hi
    assert test.p == pytest.approx(2 * np.mean(boot <= 0))
    clear = paired_test("other", 0.2, np.full(100, 0.2), 50)
    assert not clear.tie and clear.p == 0.0


def test_kept_counts_give_the_same_bootstrap(task, tmp_path):
    values, roles, types, pairs, boot, _ = task
    items = TaskItems(values, roles, ["b", "a", "c"], types)
    kept = Resampling(N_BOOT, 5, cache=tmp_path)
    first = task_bootstrap("t", items, "spe", pairs, kept)
    assert list((tmp_path / "counts").rglob("*.npy"))  # drawn once, kept
    again = task_bootstrap("t", items, "spe", pairs, kept)
    for result in (first, again):
        for metric in boot.means:
            np.testing.assert_array_equal(result.means[metric], boot.means[metric])
        np.testing.assert_array_equal(result.pairs, boot.pairs)
        for role in boot.roles:
            np.testing.assert_array_equal(result.roles[role], boot.roles[role])
