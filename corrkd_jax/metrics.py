"""Exact full-ranking metrics (HR, NDCG, MRR at k) and their weighted accumulation.

Definitions (method.md, "Evaluation"): every case ranks its target against all N items;
`rank = 1 + #{items whose score is strictly greater than the target's}`, so ties are resolved in
the target's favour and the metric never depends on the order of tied items.

    HR@k   = [rank <= k]
    NDCG@k = [rank <= k] / log2(rank + 1)
    MRR@k  = [rank <= k] / rank

With a single relevant item the ideal DCG is 1, so NDCG@k needs no normalisation. The released
KDSR code divides by the ideal DCG of *k* relevant items, `sum_{i=1..k} 1 / log2(i + 1)`, which
makes its NDCG too small by a constant factor (2.95 at k=5, 4.54 at k=10, 7.04 at k=20);
`released_ndcg_factor(k)` returns that factor so old numbers can be converted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

DEFAULT_KS: tuple[int, ...] = (5, 10, 20)
METRIC_NAMES: tuple[str, ...] = ("HR", "NDCG", "MRR")


def target_ranks(scores: jax.Array, targets: jax.Array) -> jax.Array:
    """1-based rank of each target among all columns.

    Args:
        scores: float [B, N], one score per candidate item (column j = item j + 1).
        targets: int [B], the target's column index in `scores`.

    Returns:
        int32 [B]: 1 + number of columns with a score strictly greater than the target's.
        A NaN target score gets the largest int32 rank (never a hit) instead of silently
        ranking first (NaN compares False with everything).
    """
    scores = jnp.asarray(scores)
    targets = jnp.asarray(targets, dtype=jnp.int32)
    target_scores = jnp.take_along_axis(scores, targets[:, None], axis=1)
    ranks = 1 + jnp.sum(scores > target_scores, axis=1, dtype=jnp.int32)
    return jnp.where(jnp.isnan(target_scores[:, 0]), jnp.iinfo(jnp.int32).max, ranks)


def unseen_ranks(
    ranks: jax.Array,
    history: jax.Array,
    history_scores: jax.Array,
    targets: jax.Array,
    target_scores: jax.Array,
) -> jax.Array:
    """Ranks with the case's history items removed from the candidates (the target kept).

    Many papers rank the target only among items the user has not interacted with; this
    turns `target_ranks` (all items) into that rank by not counting the distinct history
    items, other than the target itself, that score strictly above the target.

    Args:
        ranks: int32 [B] ranks among all items (`target_ranks`, `chunked_ranks`).
        history: int [B, L] item ids 1..N of each case's input history, 0 = padding.
        history_scores: float [B, L] the score of each history item (any value at padding).
        targets: int [B] target columns (item id - 1); target_scores: float [B] their scores.

    Returns:
        int32 [B]; a NaN-target rank (int32 max) stays as it is.
    """
    history = jnp.asarray(history)
    length = history.shape[1]
    earlier = jnp.tril(jnp.ones((length, length), bool), k=-1)  # [j, i]: i before j
    repeated = jnp.any((history[:, :, None] == history[:, None, :]) & earlier, axis=2)
    counted = (history > 0) & (history != targets[:, None] + 1) & ~repeated
    above = jnp.sum(counted & (history_scores > target_scores[:, None]), 1, dtype=jnp.int32)
    nan = ranks == jnp.iinfo(jnp.int32).max
    return jnp.where(nan, ranks, ranks - above)


def rank_metrics(
    scores: jax.Array,
    targets: jax.Array,
    ks: Sequence[int] = DEFAULT_KS,
) -> dict[str, jax.Array]:
    """Per-case HR@k, NDCG@k and MRR@k. Jittable; `ks` must be static (a Python sequence).

    Args:
        scores: float [B, N] scores over all N items.
        targets: int [B] target column indices in [0, N).
        ks: cut-offs.

    Returns:
        dict with keys `HR@k`, `NDCG@k`, `MRR@k` for every k in `ks`, each float32 [B].
    """
    return metrics_from_ranks(target_ranks(scores, targets), ks)


def metrics_from_ranks(ranks: jax.Array, ks: Sequence[int] = DEFAULT_KS) -> dict[str, jax.Array]:
    """Per-case HR@k, NDCG@k and MRR@k from 1-based target ranks int [B] (`rank_metrics`
    without the scores, e.g. for ranks counted chunk by chunk). Returns float32 [B] each."""
    ranks = jnp.asarray(ranks).astype(jnp.float32)
    out: dict[str, jax.Array] = {}
    for k in ks:
        hit = (ranks <= k).astype(jnp.float32)
        out[f"HR@{k}"] = hit
        out[f"NDCG@{k}"] = hit / jnp.log2(ranks + 1.0)
        out[f"MRR@{k}"] = hit / ranks
    return out


def weighted_sums(metrics: Mapping[str, jax.Array], weights: jax.Array) -> dict[str, jax.Array]:
    """Sums of per-case metrics weighted by `weights` float [B], plus the total weight.

    Returns a dict of float32 scalars: every metric key, and `"count"` = sum(weights). Padded
    rows carry weight 0, so a short last batch is exact after `finalize`.
    """
    weights = jnp.asarray(weights, dtype=jnp.float32)
    sums = {name: jnp.sum(value * weights) for name, value in metrics.items()}
    sums["count"] = jnp.sum(weights)
    return sums


def finalize(sums: Mapping[str, float | np.ndarray]) -> dict[str, float]:
    """Host-side mean: every sum divided by `sums["count"]` (float64 on the host).

    Raises:
        ValueError: when the count is zero (nothing was evaluated).
    """
    count = float(np.asarray(sums["count"], dtype=np.float64))
    if count <= 0:
        raise ValueError("cannot average metrics over zero evaluation cases (count == 0)")
    return {
        name: float(np.asarray(value, dtype=np.float64)) / count
        for name, value in sums.items()
        if name != "count"
    }


def metric_names(ks: Sequence[int] = DEFAULT_KS) -> list[str]:
    """The names `rank_metrics` returns, in report order: HR@k..., NDCG@k..., MRR@k...."""
    return [f"{name}@{int(k)}" for name in METRIC_NAMES for k in ks]


def released_ndcg_factor(k: int) -> float:
    """Ideal DCG of k relevant items: the released code's NDCG@k equals ours divided by this."""
    return float(np.sum(1.0 / np.log2(np.arange(2, k + 2))))
