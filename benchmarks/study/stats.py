"""Statistics of the studies: means over seeds, paired differences per seed, and a paired
bootstrap over the same test users from the per-user ranks (`test_ranks.npy`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from corrkd_jax.metrics import metrics_from_ranks

METRICS = ("HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR@5", "MRR@10", "MRR@20")
HR_METRICS = ("HR@5", "HR@10", "HR@20")
GAIN_METRICS = ("NDCG@10", "HR@10")  # absolute differences with a CI
NUM_RESAMPLES = 2000
LEVEL = 0.95


def mean_std(results: list[dict], metric: str) -> tuple[float, float]:
    """Mean and sample std (%) of a test metric over the seeds' results.json."""
    values = np.array([r["test"][metric] for r in results]) * 100
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def by_seed(results: list[dict]) -> dict[int, dict]:
    return {r["config"]["seed"]: r for r in results}


def per_seed_difference(variant: list[dict], baseline: list[dict], metric: str) -> list[float]:
    """variant - baseline test metric (points), per seed both ran (paired by seed: the same
    data order and initialisation)."""
    base = by_seed(baseline)
    return [
        100 * (r["test"][metric] - base[s]["test"][metric])
        for s, r in sorted(by_seed(variant).items())
        if s in base
    ]


def per_seed_hr_difference(variant: list[dict], baseline: list[dict]) -> list[float]:
    """Relative difference (%) of variant over baseline, mean over HR@5/10/20, per seed both
    ran with."""
    base = by_seed(baseline)
    return [
        float(
            np.mean(
                [100 * (r["test"][m] - base[s]["test"][m]) / base[s]["test"][m] for m in HR_METRICS]
            )
        )
        for s, r in sorted(by_seed(variant).items())
        if s in base
    ]


def _per_user(ranks: np.ndarray) -> dict[str, np.ndarray]:
    """Per-user metrics (the trainer's definitions), averaged over seeds: ranks [seeds, users]."""
    return {
        k: np.asarray(v, np.float64).reshape(ranks.shape).mean(axis=0)
        for k, v in metrics_from_ranks(ranks.reshape(-1)).items()
    }


def paired_bootstrap(
    ranks: np.ndarray,
    base_ranks: np.ndarray,
    *,
    seed: int = 0,
    num_resamples: int = NUM_RESAMPLES,
    level: float = LEVEL,
) -> dict:
    """Paired bootstrap over test users of the gain of one run over another.

    Args:
        ranks, base_ranks: int [seeds, users], the two runs' per-user test ranks, row i of both
            from the same seed (users in the same order). Each user's metric is averaged over
            the seeds, then users are resampled with replacement (the same users for both runs,
            so the CI reflects which users were tested, not seed noise: see the per-seed
            differences for that).
        seed: the resampling seed (the CI is reproducible).

    Returns:
        {metric: {"diff", "low", "high"}} for GAIN_METRICS (absolute, points), and "rel_HR":
        the relative gain (%) of the mean over HR@5/10/20, the paper's claim's measure.
    """
    ranks, base_ranks = np.atleast_2d(ranks), np.atleast_2d(base_ranks)
    if ranks.shape != base_ranks.shape:
        raise ValueError(f"unpaired ranks: {ranks.shape} vs {base_ranks.shape}")
    a, b = _per_user(ranks), _per_user(base_ranks)
    names = sorted(set(GAIN_METRICS) | set(HR_METRICS))
    columns = np.stack([a[m] for m in names] + [b[m] for m in names], axis=1)  # [users, 2q]
    rng = np.random.default_rng(seed)
    users = len(columns)
    means = []
    for start in range(0, num_resamples, 100):  # chunks keep the index array small
        idx = rng.integers(0, users, (min(100, num_resamples - start), users))
        means.append(columns[idx].mean(axis=1))
    means = np.concatenate([columns.mean(axis=0, keepdims=True), *means])  # row 0: the data
    ours, theirs = means[:, : len(names)], means[:, len(names) :]
    gains = {m: 100 * (ours[:, i] - theirs[:, i]) for i, m in enumerate(names) if m in GAIN_METRICS}
    hr = [names.index(m) for m in HR_METRICS]
    gains["rel_HR"] = 100 * np.mean((ours[:, hr] - theirs[:, hr]) / theirs[:, hr], axis=1)
    tail = 100 * (1 - level) / 2
    return {
        m: {
            "diff": float(g[0]),
            "low": float(np.percentile(g[1:], tail)),
            "high": float(np.percentile(g[1:], 100 - tail)),
        }
        for m, g in gains.items()
    }


def better_baseline(
    runs: dict[str, list[dict]], names: Sequence[str], metric: str = "HR@10"
) -> str:
    """The baseline (of `names` present in `runs`) with the higher mean test metric."""
    return max((n for n in names if runs.get(n)), key=lambda n: mean_std(runs[n], metric)[0])
