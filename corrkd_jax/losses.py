"""Correlation-distillation losses of KDSR (holistic correlations and dissected codes).

Pure, `jax.jit`-compatible functions; string and integer arguments (`kind`, `num_chunks`) are
static. The method is specified in `../shared/docs/method.md`:

- `pairwise_correlation`: `corr(x_i, x_j)` for every pair of a sequence's nodes.
- `holistic_correlation_loss`: smoothed per-sequence Frobenius norm of `(S - C) / tau`.
- `correlation_vectors`: per-chunk correlations of every pair (the "dissected" correlations).
- `assign_codes`: nearest codebook centroid of each correlation vector.
- `correlation_code_loss`: masked mean cross-entropy of code logits against teacher codes.

Correlation kinds: `cos` (cosine, `x.y / max(|x||y|, 1e-8)`, so all-zero padding rows give 0),
`dot` (inner product), `euc` (L2 distance) and `man` (L1 distance). Every kind has finite
gradients everywhere, including zero rows and zero distances.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import optax

__all__ = [
    "pairwise_correlation",
    "holistic_correlation_loss",
    "correlation_vectors",
    "assign_codes",
    "correlation_code_loss",
]

KINDS = ("cos", "dot", "euc", "man")

_COS_EPS = 1e-8  # floor of |x||y| in the cosine (method.md)
_SMOOTH_EPS = 1e-8  # smoothing inside the holistic loss (method.md)
# Gram matrices are small (L x L per sequence); full float32 precision keeps `euc` exact enough
# on accelerators whose default float32 matmul precision is reduced (e.g. TF32 on GPUs).
_PRECISION = jax.lax.Precision.HIGHEST


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown correlation kind {kind!r}; expected one of {KINDS}")


def _safe_sqrt(x: jax.Array) -> jax.Array:
    """sqrt with value 0 and gradient 0 at x <= 0 (the double-`where` trick).

    A plain `jnp.sqrt` has an infinite derivative at 0, which turns into NaN gradients for
    zero distances, zero rows and empty masks.
    """
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def pairwise_correlation(x: jax.Array, kind: str = "cos") -> jax.Array:
    """Correlation of every pair of rows of each sequence.

    Args:
      x: float `[B, L, d]` (any leading batch dims `[..., L, d]` work).
      kind: `cos | dot | euc | man` (static).

    Returns:
      float32 `[B, L, L]`, entry `[b, i, j] = corr(x[b, i], x[b, j])`.

    `euc` uses the Gram expansion `|a|^2 + |b|^2 - 2 a.b` on rows centred per sequence
    (distances are translation invariant; centring reduces cancellation), clipped at 0, so
    memory is O(B L^2); the diagonal is exactly 0 (repeated items elsewhere are 0 up to
    rounding, exactly 0 on CPU). `man` has no such expansion and
    broadcasts the differences: O(B L^2 d) memory (fused under jit in the forward pass).
    """
    _check_kind(kind)
    x = jnp.asarray(x, jnp.float32)
    if x.ndim < 2:
        raise ValueError(f"pairwise_correlation expects [..., L, d], got shape {x.shape}")
    if kind == "man":
        return jnp.abs(x[..., :, None, :] - x[..., None, :, :]).sum(-1)
    if kind == "euc":
        x = x - x.mean(axis=-2, keepdims=True)
    gram = jnp.einsum("...id,...jd->...ij", x, x, precision=_PRECISION)
    if kind == "dot":
        return gram
    sq_norms = jnp.diagonal(gram, axis1=-2, axis2=-1)
    if kind == "euc":
        sq_dist = sq_norms[..., :, None] + sq_norms[..., None, :] - 2.0 * gram
        return _safe_sqrt(jnp.maximum(sq_dist, 0.0))
    norms = _safe_sqrt(sq_norms)
    return gram / jnp.maximum(norms[..., :, None] * norms[..., None, :], _COS_EPS)


def paired_correlation(u: jax.Array, w: jax.Array, kind: str = "cos") -> jax.Array:
    """Correlation of aligned row pairs (used by the teacher's codebook fit).

    Args:
      u, w: float `[..., c]` with the same shape.
      kind: `cos | dot | euc | man` (static).

    Returns:
      float32 `[...]`, `corr(u[...], w[...])`; the same values as `pairwise_correlation`.
    """
    _check_kind(kind)
    u = jnp.asarray(u, jnp.float32)
    w = jnp.asarray(w, jnp.float32)
    if kind == "man":
        return jnp.abs(u - w).sum(-1)
    if kind == "euc":
        return _safe_sqrt(jnp.square(u - w).sum(-1))
    dot = (u * w).sum(-1)
    if kind == "dot":
        return dot
    norms = _safe_sqrt(jnp.square(u).sum(-1)) * _safe_sqrt(jnp.square(w).sum(-1))
    return dot / jnp.maximum(norms, _COS_EPS)


def holistic_correlation_loss(
    student_corr: jax.Array,
    teacher_corr: jax.Array,
    pair_mask: jax.Array,
    tau: float,
) -> jax.Array:
    """Smoothed per-sequence Frobenius norm of the correlation gap, averaged over sequences.

    `l_b = sqrt( sum_ij M[b,i,j] * ( sqrt( ((S - C)[b,i,j] / tau)^2 + 1e-8 ) )^2 )`
    (the inner `sqrt(.)^2` is evaluated as the identical `((S - C) / tau)^2 + 1e-8`).

    Sequences whose mask is all zero (padded batch rows) are excluded from the mean, and the
    outer sqrt is safe at 0, so they contribute neither to the value nor NaN/inf gradients.
    Returns 0 when no sequence has a masked-in pair.

    Args:
      student_corr: float `[B, L, L]`, S.
      teacher_corr: float `[B, L, L]`, C (treated as a constant: no gradient flows into it).
      pair_mask: 0/1 (or bool) `[B, L, L]`, M.
      tau: temperature (> 0).

    Returns:
      float32 scalar.
    """
    student_corr = jnp.asarray(student_corr, jnp.float32)
    teacher_corr = jax.lax.stop_gradient(jnp.asarray(teacher_corr, jnp.float32))
    mask = jnp.asarray(pair_mask, jnp.float32)
    # Zero the teacher outside the mask so a NaN/inf there cannot leak through 0 * x.
    teacher_corr = jnp.where(mask > 0, teacher_corr, 0.0)
    gap = (student_corr - teacher_corr) / tau
    per_pair = mask * (jnp.square(gap) + _SMOOTH_EPS)
    per_seq = _safe_sqrt(per_pair.sum(axis=(-2, -1)))  # [B]
    valid = (mask.sum(axis=(-2, -1)) > 0).astype(jnp.float32)  # [B]
    return (per_seq * valid).sum() / jnp.maximum(valid.sum(), 1.0)


def correlation_vectors(x: jax.Array, num_chunks: int, kind: str = "cos") -> jax.Array:
    """Dissected correlations: per-chunk correlation of every pair of rows.

    Each row is split into `num_chunks` (D) equal contiguous chunks; entry `[b, i, j, k]` is
    `corr(x[b, i, k-th chunk], x[b, j, k-th chunk])`.

    Args:
      x: float `[B, L, d]` (any leading batch dims `[..., L, d]` work), `d % D == 0`.
      num_chunks: D (static).
      kind: `cos | dot | euc | man` (static).

    Returns:
      float32 `[B, L, L, D]`.
    """
    _check_kind(kind)
    x = jnp.asarray(x, jnp.float32)
    if x.ndim < 2:
        raise ValueError(f"correlation_vectors expects [..., L, d], got shape {x.shape}")
    d = x.shape[-1]
    if num_chunks < 1 or d % num_chunks != 0:
        raise ValueError(
            f"feature width d={d} is not divisible into num_chunks={num_chunks} equal chunks"
        )
    chunks = x.reshape(*x.shape[:-1], num_chunks, d // num_chunks)  # [..., L, D, c]
    chunks = jnp.moveaxis(chunks, -2, -3)  # [..., D, L, c]
    corr = pairwise_correlation(chunks, kind)  # [..., D, L, L]
    return jnp.moveaxis(corr, -3, -1)


def nearest_centroid(
    coords: Sequence[jax.Array], codebook: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Nearest centroid of many vectors given coordinate by coordinate.

    Args:
      coords: D float32 arrays of one shape `[...]`, coordinate j of every vector.
      codebook: float32 `[K, D]`.

    Returns:
      `(codes int32 [...], |mu|^2 - 2 mu.a at the nearest centroid mu, float32 [...])`: the
      squared distance minus `|a|^2`, which is constant per vector. Ties go to the lowest index.

    A running (min, argmin) over the K centroids, unrolled over K and D, fuses into a single
    pass over the vectors with `[...]`-sized temporaries. XLA:CPU's argmin over a `[..., K]`
    distance matrix is several times slower (0.6 s vs 0.12 s for 2M vectors, K = 50, D = 8)
    and that matrix takes K / D times the memory of the vectors. The graph grows with K * D
    (fine for the method's K = 50, D = 8).
    """
    c_sq = jnp.square(codebook).sum(-1)
    best = jnp.full(coords[0].shape, jnp.inf, jnp.float32)
    codes = jnp.zeros(coords[0].shape, jnp.int32)
    for k in range(codebook.shape[0]):
        cross = sum(codebook[k, j] * coords[j] for j in range(len(coords)))
        dist = c_sq[k] - 2.0 * cross
        closer = dist < best  # strict: ties keep the lowest index
        best = jnp.where(closer, dist, best)
        codes = jnp.where(closer, k, codes)
    return codes, best


def assign_codes(corr_vectors: jax.Array, codebook: jax.Array) -> jax.Array:
    """Index of the nearest centroid (squared Euclidean distance) of each correlation vector.

    Uses `|a|^2 - 2 a.b + |b|^2` (dropping `|a|^2`, constant per vector) as a running minimum
    over the centroids, so no `[..., K, D]` (nor `[..., K]`) tensor is built. Ties go to the
    lowest index.

    Args:
      corr_vectors: float `[..., D]`.
      codebook: float `[K, D]`.

    Returns:
      int32 `[...]`, values in `0..K-1`.
    """
    corr_vectors = jnp.asarray(corr_vectors, jnp.float32)
    codebook = jnp.asarray(codebook, jnp.float32)
    if codebook.ndim != 2 or corr_vectors.shape[-1] != codebook.shape[-1]:
        raise ValueError(
            f"codebook must be [K, D] with D = corr_vectors.shape[-1] = {corr_vectors.shape[-1]}; "
            f"got codebook shape {codebook.shape}"
        )
    coords = [corr_vectors[..., j] for j in range(codebook.shape[1])]
    return nearest_centroid(coords, codebook)[0]


def correlation_code_loss(logits: jax.Array, codes: jax.Array, pair_mask: jax.Array) -> jax.Array:
    """Mean cross-entropy of the code logits against the teacher codes over masked-in pairs.

    Args:
      logits: float `[B, L, L, K]`.
      codes: int `[B, L, L]`, values in `0..K-1`.
      pair_mask: 0/1 (or bool) `[B, L, L]`.

    Returns:
      float32 scalar; exactly 0 (with zero gradients) when the mask is all zero.
    """
    logits = jnp.asarray(logits, jnp.float32)
    mask = jnp.asarray(pair_mask, jnp.float32)
    # Neutralise masked-out pairs before the softmax (double `where`), so non-finite logits
    # there (e.g. from padding) give neither NaN values nor NaN gradients.
    logits = jnp.where(mask[..., None] > 0, logits, 0.0)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.asarray(codes, jnp.int32))
    ce = jnp.where(mask > 0, ce, 0.0)
    return (ce * mask).sum() / jnp.maximum(mask.sum(), 1.0)
