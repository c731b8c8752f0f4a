"""corrkd_jax.losses against straightforward NumPy loop implementations."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from corrkd_jax import losses
from corrkd_jax.losses import (
    assign_codes,
    correlation_code_loss,
    correlation_vectors,
    holistic_correlation_loss,
    pairwise_correlation,
)
from support.references import np_corr

KINDS = ("cos", "dot", "euc", "man")


# ----------------------------------------------------------------------- NumPy references


def np_pairwise(x: np.ndarray, kind: str) -> np.ndarray:
    b, n, _ = x.shape
    out = np.zeros((b, n, n))
    for i in range(b):
        for j in range(n):
            for k in range(n):
                out[i, j, k] = np_corr(x[i, j], x[i, k], kind)
    return out


def np_corr_vectors(x: np.ndarray, num_chunks: int, kind: str) -> np.ndarray:
    b, n, d = x.shape
    c = d // num_chunks
    out = np.zeros((b, n, n, num_chunks))
    for i in range(b):
        for j in range(n):
            for k in range(n):
                for q in range(num_chunks):
                    out[i, j, k, q] = np_corr(
                        x[i, j, q * c : (q + 1) * c], x[i, k, q * c : (q + 1) * c], kind
                    )
    return out


def np_holistic(s: np.ndarray, c: np.ndarray, m: np.ndarray, tau: float) -> float:
    per_seq = []
    for b in range(s.shape[0]):
        if m[b].sum() == 0:
            continue  # padded rows do not count
        total = 0.0
        for i in range(s.shape[1]):
            for j in range(s.shape[2]):
                inner = np.sqrt(((s[b, i, j] - c[b, i, j]) / tau) ** 2 + 1e-8)
                total += m[b, i, j] * inner**2
        per_seq.append(np.sqrt(total))
    return float(np.mean(per_seq)) if per_seq else 0.0


def np_code_loss(logits: np.ndarray, codes: np.ndarray, m: np.ndarray) -> float:
    total, count = 0.0, 0
    for idx in np.ndindex(codes.shape):
        if m[idx]:
            row = logits[idx].astype(np.float64)
            log_z = np.log(np.exp(row - row.max()).sum()) + row.max()
            total += log_z - row[codes[idx]]
            count += 1
    return total / count if count else 0.0


def padded_batch(seed: int, b: int = 3, n: int = 5, d: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Random rows with zero padding rows, one identical pair, and one empty sequence."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(b, n, d)).astype(np.float32)
    lengths = rng.integers(1, n + 1, size=b)
    lengths[-1] = 0  # a fully padded (empty) sequence
    real = np.arange(n)[None, :] < lengths[:, None]
    x[~real] = 0.0
    x[0, 1] = x[0, 0]  # identical items: zero distance
    mask = (real[:, :, None] & real[:, None, :]).astype(np.float32)
    return x, mask


# ------------------------------------------------------------------------------- correlations


@pytest.mark.parametrize("kind", KINDS)
def test_pairwise_correlation_matches_numpy(kind):
    x, _ = padded_batch(0)
    got = np.asarray(pairwise_correlation(jnp.asarray(x), kind))
    assert got.shape == (3, 5, 5) and got.dtype == np.float32
    np.testing.assert_allclose(got, np_pairwise(x, kind), rtol=1e-4, atol=1e-4)


def test_cosine_of_zero_rows_is_zero_and_identical_rows_have_zero_distance():
    x, _ = padded_batch(0)
    cos = np.asarray(pairwise_correlation(jnp.asarray(x), "cos"))
    assert np.all(cos[-1] == 0.0)  # the empty sequence is all zero rows
    for kind in ("euc", "man"):
        dist = np.asarray(pairwise_correlation(jnp.asarray(x), kind))
        assert dist[0, 0, 1] == 0.0 and dist[0, 1, 0] == 0.0
        assert np.all(np.diagonal(dist, axis1=1, axis2=2) == 0.0)


def test_unknown_kind_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown correlation kind 'cosine'"):
        pairwise_correlation(jnp.ones((1, 2, 4)), "cosine")
    with pytest.raises(ValueError, match="unknown correlation kind"):
        correlation_vectors(jnp.ones((1, 2, 4)), 2, "l2")


@pytest.mark.parametrize("kind", KINDS)
def test_correlation_vectors_match_numpy(kind):
    x, _ = padded_batch(1, d=12)
    got = np.asarray(correlation_vectors(jnp.asarray(x), 3, kind))
    assert got.shape == (3, 5, 5, 3)
    np.testing.assert_allclose(got, np_corr_vectors(x, 3, kind), rtol=1e-4, atol=1e-4)


def test_correlation_vectors_with_one_chunk_equal_pairwise():
    x, _ = padded_batch(2)
    np.testing.assert_allclose(
        np.asarray(correlation_vectors(jnp.asarray(x), 1))[..., 0],
        np.asarray(pairwise_correlation(jnp.asarray(x))),
        rtol=1e-6,
        atol=1e-6,
    )


def test_correlation_vectors_reject_indivisible_width():
    with pytest.raises(ValueError, match=r"d=10.*num_chunks=4"):
        correlation_vectors(jnp.ones((2, 3, 10)), 4)


# ------------------------------------------------------------------------------------ losses


def test_holistic_loss_matches_numpy_with_random_masks():
    rng = np.random.default_rng(3)
    s = rng.normal(size=(6, 7, 7)).astype(np.float32)
    c = rng.normal(size=(6, 7, 7)).astype(np.float32)
    m = (rng.random((6, 7, 7)) < 0.5).astype(np.float32)
    m[2] = 0.0  # empty rows must not dilute the mean
    m[4] = 0.0
    got = float(holistic_correlation_loss(s, c, m, 1.5))
    np.testing.assert_allclose(got, np_holistic(s, c, m, 1.5), rtol=1e-5)
    # Excluding the empty rows is the same as dropping them from the batch.
    keep = [0, 1, 3, 5]
    np.testing.assert_allclose(
        got, float(holistic_correlation_loss(s[keep], c[keep], m[keep], 1.5)), rtol=1e-6
    )


def test_holistic_loss_all_empty_is_zero_with_zero_gradient():
    s = jnp.ones((2, 3, 3))
    m = jnp.zeros((2, 3, 3))
    value, grad = jax.value_and_grad(holistic_correlation_loss)(s, jnp.zeros_like(s), m, 1.5)
    assert float(value) == 0.0
    assert np.all(np.asarray(grad) == 0.0)


def test_holistic_loss_ignores_non_finite_teacher_outside_mask():
    s = jnp.zeros((1, 2, 2))
    c = jnp.array([[[0.5, jnp.nan], [jnp.inf, 0.5]]])
    m = jnp.eye(2)[None]
    value, grad = jax.value_and_grad(holistic_correlation_loss)(s, c, m, 1.0)
    assert np.isfinite(float(value)) and np.all(np.isfinite(np.asarray(grad)))


def test_code_loss_matches_numpy_with_random_masks():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(3, 4, 4, 6)).astype(np.float32) * 3
    codes = rng.integers(0, 6, size=(3, 4, 4)).astype(np.int32)
    m = (rng.random((3, 4, 4)) < 0.4).astype(np.float32)
    m[1] = 0.0
    np.testing.assert_allclose(
        float(correlation_code_loss(logits, codes, m)), np_code_loss(logits, codes, m), rtol=1e-5
    )


def test_code_loss_with_all_zero_mask_is_exactly_zero():
    logits = jnp.full((2, 3, 3, 5), jnp.inf).at[0, 0, 0, 0].set(-jnp.inf)
    codes = jnp.zeros((2, 3, 3), jnp.int32)
    m = jnp.zeros((2, 3, 3))
    value, grad = jax.value_and_grad(correlation_code_loss)(logits, codes, m)
    assert float(value) == 0.0
    assert not np.any(np.isnan(np.asarray(grad)))


# ------------------------------------------------------------------------------------- codes


def test_assign_codes_is_nearest_centroid():
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(4, 5, 5, 3)).astype(np.float32)
    codebook = rng.normal(size=(7, 3)).astype(np.float32)
    got = np.asarray(assign_codes(vectors, codebook))
    assert got.dtype == np.int32 and got.shape == (4, 5, 5)
    for idx in np.ndindex(got.shape):
        dist = ((vectors[idx][None].astype(np.float64) - codebook) ** 2).sum(-1)
        # The chosen centroid is the nearest one (up to float32 rounding of near ties).
        assert dist[got[idx]] <= dist.min() + 1e-5


def test_assign_codes_recovers_perturbed_centroids_and_checks_shapes():
    rng = np.random.default_rng(6)
    codebook = rng.normal(size=(9, 4)).astype(np.float32) * 5
    truth = rng.integers(0, 9, size=(50,))
    vectors = codebook[truth] + rng.normal(size=(50, 4)).astype(np.float32) * 0.01
    np.testing.assert_array_equal(np.asarray(assign_codes(vectors, codebook)), truth)
    with pytest.raises(ValueError, match="codebook must be"):
        assign_codes(vectors, codebook[:, :3])


def test_assign_codes_ties_go_to_the_lowest_index():
    codebook = jnp.array([[1.0, 0.0], [0.0, 0.5], [0.0, 0.5], [0.0, -0.5]])
    # [0, 0] is equally far from centroids 1, 2 and 3; [0, 2] from 1 and 2.
    codes = assign_codes(jnp.array([[0.0, 0.0], [0.0, 2.0], [0.0, -2.0]]), codebook)
    np.testing.assert_array_equal(np.asarray(codes), [1, 1, 3])


# ------------------------------------------------------------------- gradients, jit, vmap


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_finite_with_padding_and_identical_items(kind):
    x, mask = padded_batch(7, d=8)
    rng = np.random.default_rng(8)
    teacher = rng.normal(size=mask.shape).astype(np.float32)
    codes = rng.integers(0, 4, size=mask.shape).astype(np.int32)
    w = jnp.asarray(rng.normal(size=(2, 4)).astype(np.float32))

    def total(x):
        hol = holistic_correlation_loss(pairwise_correlation(x, kind), teacher, mask, 1.5)
        vec = correlation_vectors(x, 2, kind)  # [B, L, L, 2]
        code = correlation_code_loss(vec @ w, codes, mask)
        return hol + code

    value, grad = jax.jit(jax.value_and_grad(total))(jnp.asarray(x))
    assert np.isfinite(float(value))
    grad = np.asarray(grad)
    assert np.all(np.isfinite(grad))
    assert np.any(grad[0] != 0.0)  # the gradient is real, not masked away


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_finite_at_all_zero_and_all_identical_inputs(kind):
    for x in (jnp.zeros((1, 3, 4)), jnp.ones((1, 3, 4))):
        grad = jax.jit(
            jax.grad(
                lambda x: (
                    pairwise_correlation(x, kind).sum() + correlation_vectors(x, 2, kind).sum()
                )
            )
        )(x)
        assert np.all(np.isfinite(np.asarray(grad)))


def test_jit_with_static_kind_and_inside_jitted_callers():
    x, mask = padded_batch(9)
    for kind in KINDS:
        jitted = jax.jit(pairwise_correlation, static_argnames="kind")
        np.testing.assert_allclose(
            np.asarray(jitted(x, kind=kind)),
            np.asarray(pairwise_correlation(x, kind)),
            rtol=1e-5,
            atol=1e-5,
        )
    vec = jax.jit(correlation_vectors, static_argnames=("num_chunks", "kind"))
    assert vec(x, num_chunks=4, kind="euc").shape == (3, 5, 5, 4)

    @functools.partial(jax.jit, static_argnames="kind")
    def caller(x, kind):
        s = pairwise_correlation(x, kind)
        return holistic_correlation_loss(s, jnp.zeros_like(s), mask, 1.5)

    np.testing.assert_allclose(
        float(caller(x, "man")),
        np_holistic(np_pairwise(x, "man"), np.zeros(mask.shape), mask, 1.5),
        rtol=1e-5,
    )


def test_vmap_over_an_extra_leading_axis():
    rng = np.random.default_rng(10)
    x = jnp.asarray(rng.normal(size=(2, 3, 4, 8)).astype(np.float32))
    # Everything jitted (op-by-op dispatch of the references would dominate the test time).
    pairwise = jax.jit(pairwise_correlation, static_argnames="kind")
    for kind in KINDS:
        mapped = jax.jit(jax.vmap(functools.partial(pairwise_correlation, kind=kind)))(x)
        np.testing.assert_allclose(
            np.asarray(mapped), np.asarray(pairwise(x, kind=kind)), rtol=1e-5, atol=1e-5
        )
    mask = jnp.ones((2, 3, 4, 4))
    corr = pairwise(x, kind="cos")
    per_group = jax.jit(jax.vmap(holistic_correlation_loss, in_axes=(0, 0, 0, None)))(
        corr, jnp.zeros((2, 3, 4, 4)), mask, 1.5
    )
    assert per_group.shape == (2,)
    np.testing.assert_allclose(
        np.asarray(per_group),
        [
            np_holistic(np.asarray(corr[g]), np.zeros((3, 4, 4)), np.ones((3, 4, 4)), 1.5)
            for g in range(2)
        ],
        rtol=1e-5,
    )
    vectors = jax.jit(correlation_vectors, static_argnames="num_chunks")(x, num_chunks=2)
    codes = jax.jit(jax.vmap(assign_codes, in_axes=(0, None)))(vectors, jnp.eye(2))
    assert codes.shape == (2, 3, 4, 4)
    # Nearest of the unit vectors e_0, e_1: the larger coordinate (ties to 0).
    np.testing.assert_array_equal(
        np.asarray(codes), (np.asarray(vectors)[..., 1] > np.asarray(vectors)[..., 0])
    )


def test_public_names():
    assert losses.__all__ == [
        "pairwise_correlation",
        "holistic_correlation_loss",
        "correlation_vectors",
        "assign_codes",
        "correlation_code_loss",
    ]
    for name in losses.__all__:
        doc = getattr(losses, name).__doc__
        assert doc and "[" in doc  # documented with shapes
