"""k-means in JAX (k-means++ seeding, Lloyd iterations, empty clusters re-seeded), used to fit
the teacher's correlation codebooks (`corrkd_jax.teacher.fit_codebook`).

Memory is linear in the number of points: assignments run as one fused pass over the points
(`losses.nearest_centroid`), no `[P, K]` distance matrix is kept.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from corrkd_jax.losses import nearest_centroid

INITS = ("kmeans++", "random")


def fit(
    points: jax.Array,
    num_codes: int,
    key: jax.Array,
    *,
    num_iters: int = 100,
    tol: float = 1e-4,
    init: str = "kmeans++",
    init_sample: int = 100_000,
) -> tuple[jax.Array, dict[str, Any]]:
    """K centroids of i.i.d. `points` float32 [P, D].

    init: `kmeans++` (on the first `init_sample` points, a uniform subsample of i.i.d. points)
    or `random` (the first K points). Stops after `num_iters` Lloyd iterations or when the
    relative inertia change falls below `tol` in an iteration that re-seeded no code.

    Returns: `(centroids [K, D], stats)` as `_lloyd`.
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; expected one of {INITS}")
    if init == "kmeans++":
        sample_size = max(num_codes, min(init_sample, points.shape[0]))
        centroids = _kmeans_pp_init(points, key, num_codes=num_codes, sample_size=sample_size)
    else:
        centroids = points[:num_codes]
    return _lloyd(points, centroids, num_iters, tol)


@functools.partial(jax.jit, static_argnames=("num_codes", "sample_size"))
def _kmeans_pp_init(
    points: jax.Array, key: jax.Array, *, num_codes: int, sample_size: int
) -> jax.Array:
    """k-means++ seeding on the first `sample_size` points -> `[K, D]`.

    The points are i.i.d. samples, so their first `sample_size` are a uniform subsample.
    """
    sub = points[:sample_size]
    key_first, key_loop = jax.random.split(key)
    first = sub[jax.random.randint(key_first, (), 0, sample_size)]
    centroids = jnp.zeros((num_codes, points.shape[1]), points.dtype).at[0].set(first)
    min_sq = jnp.square(sub - first).sum(-1)

    def body(k, carry):
        centroids, min_sq = carry
        # D^2 sampling; when every point coincides with a centroid, fall back to uniform.
        total = min_sq.sum()
        probs = jnp.where(total > 0, min_sq / jnp.where(total > 0, total, 1.0), 1.0 / sample_size)
        pick = sub[jax.random.choice(jax.random.fold_in(key_loop, k), sample_size, p=probs)]
        min_sq = jnp.minimum(min_sq, jnp.square(sub - pick).sum(-1))
        return centroids.at[k].set(pick), min_sq

    centroids, _ = jax.lax.fori_loop(1, num_codes, body, (centroids, min_sq))
    return centroids


@jax.jit
def _lloyd_step(
    points: jax.Array, points_t: jax.Array, p_sq: jax.Array, centroids: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """One Lloyd iteration.

    Args:
      points: float32 `[P, D]`; points_t: the same, `[D, P]`; p_sq: `|p|^2`, `[P]`;
      centroids: float32 `[K, D]`.

    Returns:
      `(updated centroids [K, D], inertia, mean Euclidean distance, code usage int32 [K])`,
      the last three for the given centroids. Empty clusters are re-seeded from the points
      farthest from their centroid: the r-th empty code takes the r-th farthest point.
    """
    num_codes = centroids.shape[0]
    codes, best = nearest_centroid(points_t, centroids)
    sq = jnp.maximum(best + p_sq, 0.0)
    sums = jax.ops.segment_sum(points, codes, num_segments=num_codes)
    counts = jax.ops.segment_sum(jnp.ones_like(sq), codes, num_segments=num_codes)
    means = sums / jnp.maximum(counts, 1.0)[:, None]
    dead = counts == 0
    _, farthest = jax.lax.top_k(sq, num_codes)
    rank = jnp.clip(jnp.cumsum(dead) - 1, 0, num_codes - 1)
    new = jnp.where(dead[:, None], points[farthest[rank]], means)
    return new, sq.sum(), jnp.sqrt(sq).mean(), counts.astype(jnp.int32)


def _lloyd(
    points: jax.Array, centroids: jax.Array, num_iters: int, tol: float
) -> tuple[jax.Array, dict[str, Any]]:
    """Lloyd iterations (a host loop over the jitted step) until `num_iters` or convergence.

    Converged: relative inertia change < `tol` in an iteration that re-seeded no code.

    Returns:
      `(centroids [K, D], stats)`, stats of the returned centroids: `inertia`,
      `mean_quantisation_error`, `code_usage` (np.ndarray [K]), plus `iterations`,
      `reseeded_codes`.
    """
    points_t = points.T
    p_sq = jnp.square(points).sum(-1)
    prev_inertia, reseeded, iterations = None, 0, 0
    for iterations in range(1, num_iters + 1):  # noqa: B007 (returned after the loop)
        new, inertia, _, counts = _lloyd_step(points, points_t, p_sq, centroids)
        inertia, dead = float(inertia), int((np.asarray(counts) == 0).sum())
        reseeded += dead
        centroids = new
        converged = prev_inertia is not None and (
            abs(prev_inertia - inertia) < tol * prev_inertia or inertia == prev_inertia
        )
        prev_inertia = inertia
        if converged and dead == 0:
            break
    # One more assignment gives the statistics of the centroids returned.
    _, inertia, mean_err, counts = _lloyd_step(points, points_t, p_sq, centroids)
    return centroids, {
        "inertia": float(inertia),
        "mean_quantisation_error": float(mean_err),
        "code_usage": np.asarray(counts),
        "iterations": iterations,
        "reseeded_codes": reseeded,
    }
