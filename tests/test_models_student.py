"""KDSR student heads: the half-pair and the packed-pair code losses equal the plain form."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_models_backbones import quick_jit

from corrkd_jax.data.pairs import pack_pairs
from corrkd_jax.losses import correlation_code_loss, holistic_correlation_loss
from corrkd_jax.models.student import (
    CodeMLP,
    HolisticProjection,
    code_mlp_apply,
    code_term,
    holistic_term,
    packed_code_term,
    pair_mask,
)

B, L, D, K = 3, 6, 8, 5


def pair_code_logits(mlp: CodeMLP, rows: jax.Array) -> jax.Array:
    """Code logits of every ordered node pair (the plain form, the reference of `code_term`).

    Args: mlp: the view's bound `CodeMLP`; rows float32 [B, Ln, d].

    Returns: float32 [B, Ln, Ln, K].
    """
    rows = rows.astype(jnp.float32)
    return mlp(jnp.abs(rows[:, :, None, :] - rows[:, None, :, :]))


def assert_matches_plain_loss(fast, mlp, params, rows, codes, mask):
    """`fast(params, rows)` has the value and gradients of the plain all-pairs code loss."""

    def plain(p, r):
        logits = mlp.apply(p, r, method=lambda m, x: pair_code_logits(m, x))
        return correlation_code_loss(logits, codes, mask)

    v_fast, g_fast = quick_jit(jax.value_and_grad(fast, argnums=(0, 1)))(params, rows)
    v_plain, g_plain = quick_jit(jax.value_and_grad(plain, argnums=(0, 1)))(params, rows)
    np.testing.assert_allclose(v_fast, v_plain, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(g_fast), jax.tree.leaves(g_plain)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def _inputs(seed: int):
    rng = np.random.default_rng(seed)
    rows = jnp.asarray(rng.normal(size=(B, L, D)), jnp.float32)
    codes = jnp.asarray(rng.integers(0, K, (B, L, L)), jnp.int32)  # not symmetric
    nodes = jnp.asarray(rng.integers(0, 4, (B, L)), jnp.int32)  # 0 = padding
    nodes = nodes.at[2].set(0)  # one fully padded row
    return rows, codes, pair_mask(nodes), nodes


def test_pair_mask():
    nodes = jnp.asarray([[3, 1, 0], [0, 0, 0]])
    expected = np.zeros((2, 3, 3), np.float32)
    expected[0, :2, :2] = 1.0
    np.testing.assert_array_equal(pair_mask(nodes), expected)


@pytest.mark.parametrize("seed", [0, 1])
def test_code_term_equals_all_pairs_loss(seed):
    rows, codes, mask, _ = _inputs(seed)
    mlp = CodeMLP(D, K)
    params = quick_jit(mlp.init)(jax.random.key(seed), rows[:, :1])

    def fast(p, r):
        return mlp.apply(p, r, method=lambda m, x: code_term(m, x, codes, mask))

    assert_matches_plain_loss(fast, mlp, params, rows, codes, mask)


def test_code_term_with_empty_mask_is_zero():
    rows, codes, mask, _ = _inputs(2)
    mlp = CodeMLP(D, K)
    params = quick_jit(mlp.init)(jax.random.key(0), rows[:, :1])
    value, grads = quick_jit(
        jax.value_and_grad(
            lambda p: mlp.apply(p, rows, method=lambda m, x: code_term(m, x, codes, 0 * mask))
        )
    )(params)
    assert float(value) == 0.0
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))


def test_pair_code_logits_is_symmetric_and_uses_abs_difference():
    rows, _, _, _ = _inputs(3)
    mlp = CodeMLP(D, K)
    params = quick_jit(mlp.init)(jax.random.key(0), rows[:, :1])
    logits = mlp.apply(params, rows, method=lambda m, x: pair_code_logits(m, x))
    assert logits.shape == (B, L, L, K)
    np.testing.assert_allclose(logits, logits.transpose(0, 2, 1, 3), rtol=1e-6)
    one = mlp.apply(params, jnp.abs(rows[0, 1] - rows[0, 4]))
    np.testing.assert_allclose(logits[0, 1, 4], one, rtol=1e-5, atol=1e-6)


def test_holistic_term_uses_two_linear_layers():
    rows, _, mask, _ = _inputs(4)
    projection = HolisticProjection(D)
    params = quick_jit(projection.init)(jax.random.key(0), rows)
    p = params["params"]
    # No activation between the layers: the projection is one affine map.
    w = p["project_1"]["kernel"] @ p["project_2"]["kernel"]
    b = p["project_1"]["bias"] @ p["project_2"]["kernel"] + p["project_2"]["bias"]
    h = np.asarray(rows) @ np.asarray(w) + np.asarray(b)
    norms = np.linalg.norm(h, axis=-1)
    student = np.einsum("bid,bjd->bij", h, h) / np.maximum(norms[:, :, None] * norms[:, None], 1e-8)
    teacher = jnp.asarray(np.random.default_rng(5).uniform(-1, 1, (B, L, L)), jnp.float32)
    value = projection.apply(
        params, rows, method=lambda m, x: holistic_term(m, x, teacher, mask, "cos", 1.5)
    )
    expected = holistic_correlation_loss(jnp.asarray(student, jnp.float32), teacher, mask, 1.5)
    np.testing.assert_allclose(value, expected, rtol=1e-4)


def test_code_mlp_apply_matches_the_module():
    rows, _, _, _ = _inputs(6)
    mlp = CodeMLP(D, K)
    params = quick_jit(mlp.init)(jax.random.key(1), rows)
    np.testing.assert_allclose(
        code_mlp_apply(params["params"], rows), mlp.apply(params, rows), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("groups, extra, chunk", [(1, 0, 2048), (3, 5, 4), (1, 3, 7)])
def test_packed_code_term_equals_all_pairs_loss(groups, extra, chunk):
    """Listed real pairs (one pass, or a scan over chunks with padding) = the dense loss."""
    rows, codes, mask, nodes = _inputs(groups + extra)
    real = np.asarray(nodes) > 0
    per_group = [int((np.triu(np.outer(r, r), 1)).sum()) for r in real]
    capacity = max(sum(per_group[g::groups]) for g in range(groups)) + extra
    packed = pack_pairs(np.asarray(nodes), groups, max(capacity, 1))
    mlp = CodeMLP(D, K)
    params = quick_jit(mlp.init)(jax.random.key(0), rows[:, :1])

    def fast(p, r):
        return mlp.apply(
            p,
            r,
            method=lambda m, x: packed_code_term(
                m,
                x,
                codes,
                jnp.asarray(real, jnp.float32),
                jnp.asarray(packed["pairs"]),
                jnp.asarray(packed["pair_weights"]),
                chunk=chunk,
            ),
        )

    assert_matches_plain_loss(fast, mlp, params, rows, codes, mask)


def test_packed_code_term_without_real_nodes_is_zero():
    rows, codes, _, _ = _inputs(7)
    empty = np.zeros((B, L), np.int32)
    packed = pack_pairs(empty, 1, 8)
    mlp = CodeMLP(D, K)
    params = quick_jit(mlp.init)(jax.random.key(0), rows[:, :1])
    value, grads = quick_jit(
        jax.value_and_grad(
            lambda p: mlp.apply(
                p,
                rows,
                method=lambda m, x: packed_code_term(
                    m,
                    x,
                    codes,
                    jnp.zeros((B, L)),
                    jnp.asarray(packed["pairs"]),
                    jnp.asarray(packed["pair_weights"]),
                ),
            )
        )
    )(params)
    assert float(value) == 0.0
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))
