"""The KDSR teacher: per-batch correlation signals and the correlation codebook.

The teacher is the reduced stage-1 features of each view, `[N + 1, d]` (row 0 = padding).
Per batch, `teacher_signals` gathers the rows of the batch's items and computes the holistic
correlations and the dissected-correlation codes on the fly: no N x N matrix exists anywhere
(the released code builds four of them, ~4.7 GB at 12k items).

The codebook (K centroids in R^D) is fitted once per view by `fit_codebook`: k-means in JAX
(`corrkd_jax.kmeans`) on the correlation vectors of a uniform random sample of item pairs, with memory linear in N
and in the sample size. The codebooks are plain arrays: the trainer saves them with its
checkpoint and rebuilds the teacher from them on resume (`build_teacher(..., codebooks=...)`).
"""

from __future__ import annotations

import functools
import time
import zlib
from collections.abc import Mapping
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from corrkd_jax import kmeans
from corrkd_jax.losses import (
    KINDS,
    assign_codes,
    correlation_vectors,
    paired_correlation,
    pairwise_correlation,
)

__all__ = [
    "TeacherSignals",
    "Teacher",
    "teacher_signals",
    "fit_codebook",
    "build_teacher",
]


class TeacherSignals(NamedTuple):
    """Teacher targets for one view and one batch."""

    corr: jax.Array  # float32 [B, Ln, Ln], holistic correlations C
    codes: jax.Array  # int32 [B, Ln, Ln], dissected-correlation codes z


@flax.struct.dataclass
class Teacher:
    """Teacher features and codebooks of every view (a pytree: pass it to jitted functions)."""

    features: dict[str, jax.Array]  # view -> float32 [N + 1, d] (row 0 zeros)
    codebooks: dict[str, jax.Array]  # view -> float32 [K, D]
    kind: str = flax.struct.field(pytree_node=False, default="cos")  # correlation kind
    num_chunks: int = flax.struct.field(pytree_node=False, default=8)  # D


def teacher_signals(teacher: Teacher, node_items: jax.Array) -> dict[str, TeacherSignals]:
    """Teacher correlations and codes for a batch, computed from gathered feature rows.

    Args:
      teacher: the `Teacher`.
      node_items: int `[B, Ln]` item ids, 0 = padding (padding rows are zero features, so
        their pairs carry arbitrary but finite values; the pair mask removes them).

    Returns:
      view -> `TeacherSignals(corr float32 [B, Ln, Ln], codes int32 [B, Ln, Ln])`.
    """
    node_items = jnp.asarray(node_items, jnp.int32)
    signals = {}
    with jax.named_scope("teacher_signals"):  # names the ops in profiles
        for view, table in teacher.features.items():
            if view not in teacher.codebooks:
                raise ValueError(f"teacher has features for view {view!r} but no codebook")
            rows = jax.lax.stop_gradient(jnp.asarray(table, jnp.float32)[node_items])
            corr = pairwise_correlation(rows, teacher.kind)  # [B, Ln, Ln]
            vectors = correlation_vectors(rows, teacher.num_chunks, teacher.kind)
            codes = assign_codes(vectors, teacher.codebooks[view])
            signals[view] = TeacherSignals(corr=corr, codes=codes)
    return signals


# ----------------------------------------------------------------------------- codebook fit


@functools.partial(jax.jit, static_argnames=("num_pairs", "num_chunks", "kind", "chunk_size"))
def _sample_pair_vectors(
    features: jax.Array,
    key: jax.Array,
    *,
    num_pairs: int,
    num_chunks: int,
    kind: str,
    chunk_size: int,
) -> jax.Array:
    """Correlation vectors of `num_pairs` uniform item pairs (a, c) in 1..N -> `[P, D]`.

    Rows are gathered `chunk_size` pairs at a time, so memory is O(N d + P D + chunk d).
    """
    n = features.shape[0] - 1
    key_a, key_c = jax.random.split(key)
    pairs = jnp.stack(
        [
            jax.random.randint(key_a, (num_pairs,), 1, n + 1),
            jax.random.randint(key_c, (num_pairs,), 1, n + 1),
        ],
        axis=-1,
    )  # [P, 2]

    def one(pair: jax.Array) -> jax.Array:
        rows = features[pair].reshape(2, num_chunks, -1)  # [2, D, c]
        return paired_correlation(rows[0], rows[1], kind)  # [D]

    return jax.lax.map(one, pairs, batch_size=chunk_size)


def _check_features(features: Any, num_chunks: int) -> np.ndarray:
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(
            f"features must be [N + 1, d] with N >= 1 (row 0 = padding); got shape {features.shape}"
        )
    if not np.issubdtype(features.dtype, np.floating):
        raise ValueError(f"features must be floating point, got dtype {features.dtype}")
    d = features.shape[1]
    if num_chunks < 1 or d % num_chunks != 0:
        raise ValueError(
            f"feature width d={d} is not divisible into num_chunks={num_chunks} equal chunks"
        )
    if not np.isfinite(features).all():
        bad = int(np.argwhere(~np.isfinite(features))[0, 0])
        raise ValueError(f"features contain NaN/inf (first at row {bad})")
    return features


def fit_codebook(
    features: Any,
    *,
    num_codes: int = 50,
    num_chunks: int = 8,
    kind: str = "cos",
    num_pairs: int = 2_000_000,
    num_iters: int = 100,
    tol: float = 1e-4,
    seed: int = 0,
    init: str = "kmeans++",
    init_sample: int = 100_000,
    chunk_size: int = 16_384,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Fits the correlation codebook of one view by k-means on sampled item pairs.

    Pairs `(a, c)` are drawn independently and uniformly from `1..N` (row 0, the padding, is
    never drawn); `a == c` is allowed, so the sample is uniform over the N x N pair matrix the
    released code clusters, which includes its diagonal, and identical items (the diagonal
    of every batch's L x L matrix) have a correlation vector the codebook has seen. Memory is
    O(N d + num_pairs D): pair vectors are gathered and computed `chunk_size` pairs at a
    time, and assignments run as one fused pass over the points (no `[num_pairs, K]` matrix).

    Args:
      features: float `[N + 1, d]`, row 0 = padding (excluded).
      num_codes: K.
      num_chunks: D (`d % D == 0`).
      kind: correlation kind, `cos | dot | euc | man`.
      num_pairs: number of sampled pairs (points of the k-means), >= K.
      num_iters: maximum number of Lloyd iterations.
      tol: stop when the relative change of the inertia falls below `tol` (0: only at a
        fixed point) in an iteration that re-seeded no code.
      seed: seeds the pair sample and the initialisation.
      init: `kmeans++` (on a random subsample of `init_sample` points) or `random`
        (K of the sampled points).
      init_sample: subsample size of the k-means++ seeding.
      chunk_size: pairs gathered per vectorised step (memory / speed trade-off).

    Returns:
      `(codebook float32 [K, D], stats)`; stats: `inertia` (sum of squared distances to the
      nearest centroid), `mean_squared_error` (inertia / num_pairs), `mean_quantisation_error`
      (mean Euclidean distance), `code_usage` (list of K counts), `dead_codes` (unused codes at
      the end), `reseeded_codes` (empty codes re-seeded during the fit), `iterations`,
      `num_pairs`, `seconds`.
    """
    start = time.perf_counter()
    features = _check_features(features, num_chunks)
    if kind not in KINDS:
        raise ValueError(f"unknown correlation kind {kind!r}; expected one of {KINDS}")
    if init not in kmeans.INITS:
        raise ValueError(f"unknown init {init!r}; expected one of {kmeans.INITS}")
    if num_codes < 1 or num_pairs < num_codes:
        raise ValueError(
            f"need 1 <= num_codes <= num_pairs, got num_codes={num_codes}, num_pairs={num_pairs}"
        )
    if num_iters < 1 or tol < 0:
        raise ValueError(f"need num_iters >= 1 and tol >= 0, got num_iters={num_iters}, tol={tol}")
    chunk_size = max(1, min(chunk_size, num_pairs))
    key_pairs, key_init = jax.random.split(jax.random.key(seed))

    points = _sample_pair_vectors(
        jnp.asarray(features, jnp.float32),
        key_pairs,
        num_pairs=num_pairs,
        num_chunks=num_chunks,
        kind=kind,
        chunk_size=chunk_size,
    )
    centroids, fit = kmeans.fit(
        points,
        num_codes,
        key_init,
        num_iters=num_iters,
        tol=tol,
        init=init,
        init_sample=init_sample,
    )
    counts = fit["code_usage"]
    stats = {
        "inertia": fit["inertia"],
        "mean_squared_error": fit["inertia"] / num_pairs,
        "mean_quantisation_error": fit["mean_quantisation_error"],
        "code_usage": counts.tolist(),
        "dead_codes": int((counts == 0).sum()),
        "reseeded_codes": fit["reseeded_codes"],
        "iterations": fit["iterations"],
        "num_pairs": int(num_pairs),
        "seconds": time.perf_counter() - start,
    }
    codebook = np.asarray(centroids, np.float32)
    return codebook, stats


def _view_seed(seed: int, view: str) -> int:
    """A per-view seed independent of the order of the views."""
    return int(np.random.SeedSequence([seed, zlib.crc32(view.encode())]).generate_state(1)[0])


def build_teacher(
    features: Mapping[str, Any],
    *,
    num_codes: int = 50,
    num_chunks: int = 8,
    kind: str = "cos",
    num_pairs: int = 2_000_000,
    seed: int = 0,
    codebooks: Mapping[str, Any] | None = None,
    **fit_kwargs: Any,
) -> tuple[Teacher, dict[str, dict[str, Any]]]:
    """Builds the `Teacher` from reduced features, fitting one codebook per view.

    Args:
      features: view -> float `[N + 1, d]` (row 0 zeros), the reduced stage-1 features.
      num_codes, num_chunks, kind, num_pairs: as in `fit_codebook` (config `kd.*`).
      seed: base seed; each view's fit uses a seed derived from (seed, view name).
      codebooks: view -> `[K, D]` restored from a checkpoint: used as given (validated),
        nothing is fitted.
      **fit_kwargs: passed on to `fit_codebook` (num_iters, tol, init, ...).

    Returns:
      `(Teacher, stats)`, stats: view -> `fit_codebook` stats (`{}` for restored codebooks).
    """
    if not features:
        raise ValueError("build_teacher needs at least one feature view")
    tables, books, stats = {}, {}, {}
    for view, table in features.items():
        try:
            table = _check_features(table, num_chunks)
        except ValueError as err:
            raise ValueError(f"features of view {view!r}: {err}") from err
        if codebooks is None:
            book, stats[view] = fit_codebook(
                table,
                num_codes=num_codes,
                num_chunks=num_chunks,
                kind=kind,
                num_pairs=num_pairs,
                seed=_view_seed(seed, view),
                **fit_kwargs,
            )
        else:
            if view not in codebooks:
                raise ValueError(
                    f"restored codebooks lack view {view!r} (have {sorted(codebooks)})"
                )
            book = np.asarray(codebooks[view], np.float32)
            if book.shape != (num_codes, num_chunks):
                raise ValueError(
                    f"restored codebook of view {view!r} has shape {book.shape}, "
                    f"expected (num_codes, num_chunks) = ({num_codes}, {num_chunks})"
                )
            stats[view] = {}
        tables[view] = jnp.asarray(table, jnp.float32)
        books[view] = jnp.asarray(book)
    teacher = Teacher(features=tables, codebooks=books, kind=kind, num_chunks=num_chunks)
    return teacher, stats
