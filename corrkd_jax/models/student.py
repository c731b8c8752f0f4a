"""The KDSR student heads of one view and its two distillation terms.

Per view `v` the student table rows `E_v[n]` of a batch's nodes feed
- the holistic head: `h = Dense(Dense(E_v[n]))` (no activation between), student correlations
  `S = corr(h_i, h_j)`, loss `holistic_correlation_loss(S, C, M, tau)`;
- the code head: `logits_ij = Dense_K(relu(Dense_d(|E_v[n_i] - E_v[n_j]|)))`, loss
  `correlation_code_loss(logits, z, M)` (evaluated over the pairs i < j and the diagonal only,
  see `code_term`; over the batch's listed real pairs when it carries them, see
  `packed_code_term`).
Teacher targets `C` and `z` come from `corrkd_jax.teacher.teacher_signals`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from corrkd_jax.losses import (
    correlation_code_loss,
    holistic_correlation_loss,
    pairwise_correlation,
)


class HolisticProjection(nn.Module):
    """Two dense layers without an activation between them (as in the released code)."""

    dim: int

    @nn.compact
    def __call__(self, rows: jax.Array) -> jax.Array:
        """Args: rows float32 [B, Ln, d]. Returns: float32 [B, Ln, dim]."""
        return nn.Dense(self.dim, name="project_2")(nn.Dense(self.dim, name="project_1")(rows))


class CodeMLP(nn.Module):
    """Correlation-code logits of a node pair from its absolute difference `|E_v[a] - E_v[c]|`."""

    dim: int
    num_codes: int
    dtype: Any = jnp.float32  # compute dtype (parameters stay float32)

    @nn.compact
    def __call__(self, pair_diff: jax.Array) -> jax.Array:
        """Args: pair_diff float32 [..., d]. Returns: float32 [..., num_codes]."""
        hidden = nn.relu(
            nn.Dense(self.dim, dtype=self.dtype, name="hidden")(pair_diff.astype(jnp.float32))
        )
        logits = nn.Dense(self.num_codes, dtype=self.dtype, name="logits")(hidden)
        return logits.astype(jnp.float32)


def pair_mask(node_items: jax.Array) -> jax.Array:
    """Args: node_items int32 [B, Ln] (0 = padding).

    Returns: float32 [B, Ln, Ln], `M[b, i, j] = (n[b, i] > 0) * (n[b, j] > 0)`.
    """
    real = (node_items > 0).astype(jnp.float32)
    return real[:, :, None] * real[:, None, :]


def holistic_term(
    projection: HolisticProjection,
    rows: jax.Array,
    teacher_corr: jax.Array,
    mask: jax.Array,
    kind: str,
    tau: float,
) -> jax.Array:
    """Unweighted holistic loss of one view.

    Args:
        projection: the view's bound `HolisticProjection`.
        rows: float32 [B, Ln, d], student table rows at the nodes.
        teacher_corr: float32 [B, Ln, Ln]; mask: float32 [B, Ln, Ln].
        kind: correlation kind (static); tau: temperature.

    Returns: float32 scalar.
    """
    with jax.named_scope("holistic_term"):  # names the ops in profiles
        student_corr = pairwise_correlation(projection(rows), kind)
        return holistic_correlation_loss(student_corr, teacher_corr, mask, tau)


def code_term(
    mlp: CodeMLP, rows: jax.Array, teacher_codes: jax.Array, mask: jax.Array
) -> jax.Array:
    """Unweighted correlation-code loss of one view.

    Equal to the loss of the plain form (the MLP on `|a - c|` of every ordered pair), at half
    the cost: `|a - c|` is symmetric, so the MLP runs on the pairs i < j only (the one inherent
    [B, P, d] tensor, P = Ln (Ln - 1) / 2), each of their logits is scored against both
    `z[i, j]` and `z[j, i]`, and the diagonal (`|a - a| = 0`) needs a single MLP row.

    Args:
        mlp: the view's bound `CodeMLP`.
        rows: float32 [B, Ln, d], student table rows at the nodes.
        teacher_codes: int32 [B, Ln, Ln]; mask: float32 [B, Ln, Ln].

    Returns: float32 scalar (0 when the mask is all zero).
    """
    rows = rows.astype(jnp.float32)
    batch, length, _ = rows.shape
    upper_i, upper_j = np.triu_indices(length, k=1)  # static: shapes are known at trace time
    diag = np.arange(length)
    upper = mlp(jnp.abs(rows[:, upper_i] - rows[:, upper_j]))  # [B, P, K]
    zero_pair = mlp(jnp.zeros((1, 1, rows.shape[-1]), jnp.float32))  # [1, 1, K]
    on_diag = jnp.broadcast_to(zero_pair, (batch, length, zero_pair.shape[-1]))
    parts = (
        (upper, upper_i, upper_j),  # pairs (i, j), i < j
        (upper, upper_j, upper_i),  # pairs (j, i): the same logits
        (on_diag, diag, diag),
    )
    total, count = 0.0, 0.0
    for logits, rows_idx, cols_idx in parts:
        part_mask = mask[:, rows_idx, cols_idx]  # [B, P] (or [B, Ln])
        part_count = part_mask.sum()
        # Shapes [B, P, 1, K], [B, P, 1]: the loss's [B, L, L(, K)] layout with one column.
        mean = correlation_code_loss(
            logits[:, :, None],
            teacher_codes[:, rows_idx, cols_idx][:, :, None],
            part_mask[:, :, None],
        )
        total = total + part_count * mean
        count = count + part_count
    return total / jnp.maximum(count, 1.0)


PAIR_CHUNK = 1024  # pairs per step of `packed_code_term`'s loop (fits the L2 cache)


def code_mlp_apply(params: Any, pair_diff: jax.Array, dtype: Any = jnp.float32) -> jax.Array:
    """`CodeMLP` as a pure function of its parameters (usable inside `jax.lax.scan`).

    Args: params: a `CodeMLP`'s variables["params"]; pair_diff float32 [..., d]; dtype:
        the module's compute dtype.

    Returns: float32 [..., K], the same values as `CodeMLP.__call__`.
    """

    def dense(x: jax.Array, layer: Mapping[str, jax.Array]) -> jax.Array:
        return x.astype(dtype) @ layer["kernel"].astype(dtype) + layer["bias"].astype(dtype)

    hidden = nn.relu(dense(pair_diff, params["hidden"]))
    return dense(hidden, params["logits"]).astype(jnp.float32)


def _chunk_ce(
    params: Any,
    left_rows: jax.Array,
    right_rows: jax.Array,
    forward_codes: jax.Array,
    backward_codes: jax.Array,
    weights: jax.Array,
    dtype: Any,
) -> jax.Array:
    """Summed CE of one chunk of pairs scored against z[i, j] and z[j, i].

    Args: left_rows, right_rows float32 [G, c, d]; forward_codes, backward_codes int32
    [G, c]; weights float32 [G, c] (0 = padding slot). Returns: float32 scalar.
    """
    log_probs = jax.nn.log_softmax(
        code_mlp_apply(params, jnp.abs(left_rows - right_rows), dtype), axis=-1
    )  # [G, c, K]
    forward = jnp.take_along_axis(log_probs, forward_codes[..., None], -1)[..., 0]
    backward = jnp.take_along_axis(log_probs, backward_codes[..., None], -1)[..., 0]
    return jnp.where(weights > 0, -(forward + backward), 0.0).sum()


def _chunk_inputs(grouped: jax.Array, codes: jax.Array, part: jax.Array, weights: jax.Array):
    """Gathers one chunk: part int32 [G, c, 3] -> rows of i and j, z[i, j], z[j, i], weights."""
    group = jnp.arange(grouped.shape[0])[:, None]
    row, left, right = part[..., 0], part[..., 1], part[..., 2]
    return (
        grouped[group, row, left],
        grouped[group, row, right],
        codes[group, row, left, right],
        codes[group, row, right, left],
        weights,
    )


def _chunked(pairs: jax.Array, weights: jax.Array, chunk: int) -> tuple[jax.Array, jax.Array]:
    """[G, C, 3], [G, C] -> [S, G, chunk, 3], [S, G, chunk] (padded with weight-0 slots)."""
    groups, capacity = weights.shape
    chunk = capacity if chunk <= 0 else min(chunk, capacity)
    steps = -(-capacity // chunk)
    pad = steps * chunk - capacity  # padding slots: pair (0, 0, 0) with weight 0
    pairs = jnp.pad(pairs, ((0, 0), (0, pad), (0, 0)))
    weights = jnp.pad(weights, ((0, 0), (0, pad)))
    return (
        pairs.reshape(groups, steps, chunk, 3).swapaxes(0, 1),
        weights.reshape(groups, steps, chunk).swapaxes(0, 1),
    )


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6))
def _pairs_ce(
    params: Any,
    grouped: jax.Array,
    codes: jax.Array,
    pairs: jax.Array,
    weights: jax.Array,
    chunk: int,
    dtype: Any,
) -> jax.Array:
    """Summed pair CE over all listed pairs, `chunk` pairs at a time.

    Args: params: the code MLP's; grouped float32 [G, B / G, Ln, d]; codes int32
    [G, B / G, Ln, Ln]; pairs int32 [G, C, 3]; weights float32 [G, C]. Returns: scalar.
    """

    def body(total: jax.Array, xs: tuple[jax.Array, jax.Array]):
        inputs = _chunk_inputs(grouped, codes, *xs)
        return total + _chunk_ce(params, *inputs, dtype), None

    total, _ = jax.lax.scan(body, jnp.zeros((), jnp.float32), _chunked(pairs, weights, chunk))
    return total


def _pairs_ce_fwd(params, grouped, codes, pairs, weights, chunk, dtype):
    """Value and gradients in ONE pass over the chunks: the loss is a scalar, so its
    backward only scales them. Each chunk's activations stay in cache (no stored
    residuals, no recomputed forward)."""
    group = jnp.arange(grouped.shape[0])[:, None]

    def body(carry, xs):
        total, grad_params, grad_rows = carry
        part = xs[0]
        inputs = _chunk_inputs(grouped, codes, *xs)
        value, (g_params, g_left, g_right) = jax.value_and_grad(_chunk_ce, argnums=(0, 1, 2))(
            params, *inputs, dtype
        )
        row, left, right = part[..., 0], part[..., 1], part[..., 2]
        grad_rows = grad_rows.at[group, row, left].add(g_left).at[group, row, right].add(g_right)
        grad_params = jax.tree.map(jnp.add, grad_params, g_params)
        return (total + value, grad_params, grad_rows), None

    init = (
        jnp.zeros((), jnp.float32),
        jax.tree.map(jnp.zeros_like, params),
        jnp.zeros_like(grouped),
    )
    (total, grad_params, grad_rows), _ = jax.lax.scan(body, init, _chunked(pairs, weights, chunk))
    return total, (grad_params, grad_rows, codes, pairs, weights)


def _pairs_ce_bwd(chunk, dtype, residuals, cotangent):
    del chunk, dtype
    grad_params, grad_rows, codes, pairs, weights = residuals
    return (
        jax.tree.map(lambda g: cotangent * g, grad_params),
        cotangent * grad_rows,
        _zero_cotangent(codes),
        _zero_cotangent(pairs),
        jnp.zeros_like(weights),
    )


def _zero_cotangent(x: jax.Array) -> jax.Array:
    """The zero cotangent of an integer input (dtype float0)."""
    return np.zeros(x.shape, dtype=jax.dtypes.float0)


_pairs_ce.defvjp(_pairs_ce_fwd, _pairs_ce_bwd)


def packed_code_term(
    mlp: CodeMLP,
    rows: jax.Array,
    teacher_codes: jax.Array,
    node_mask: jax.Array,
    pairs: jax.Array,
    pair_weights: jax.Array,
    chunk: int = PAIR_CHUNK,
) -> jax.Array:
    """`code_term` over the batch's listed real pairs instead of all `Ln^2` slots.

    The same value as `code_term(mlp, rows, teacher_codes, pair_mask(nodes))`: the MLP runs
    once per listed pair i < j (`corrkd_jax.data.pairs`: C slots per group of rows, at most
    `growth` x the real pairs, instead of B Ln (Ln - 1) / 2), its logits are scored against
    both `z[i, j]` and `z[j, i]` with one log-softmax, and the real diagonal pairs
    (`|a - a| = 0`) share one MLP row.

    Speed (benchmarks/perf): the pairs are processed `chunk` at a time in a `lax.scan`, so
    each chunk's `[G, chunk, d]` activations stay in cache, and under `jax.grad` every chunk
    computes its value and gradients at once (a custom VJP: the term is a scalar, so the
    backward pass only scales the accumulated gradients). No activation is stored or
    recomputed: the step's temporaries stay at a few MiB instead of ~1 GiB at Lb = 50.

    Args:
        mlp: the view's bound `CodeMLP`.
        rows: float32 [B, Ln, d], student table rows at the nodes.
        teacher_codes: int32 [B, Ln, Ln].
        node_mask: float32 [B, Ln], 1 at real nodes.
        pairs: int32 [G, C, 3], (row within the group of B / G rows, i, j).
        pair_weights: float32 [G, C], 1 for listed pairs, 0 for padding slots.
        chunk: pairs per group and loop step (static); 0 = all pairs in one step (e.g. on
            GPUs, where memory bandwidth is plentiful).

    Returns: float32 scalar (0 when there is no real node).
    """
    rows = rows.astype(jnp.float32)
    batch, length, dim = rows.shape
    groups = pairs.shape[0]
    if batch % groups:
        raise ValueError(f"pairs has {groups} groups, which do not divide the batch of {batch}")
    # Diagonal pairs (a, a): the MLP of a zero difference, scored against z[b, i, i]. This
    # call also creates the MLP's parameters when initialising.
    zero_log_probs = jax.nn.log_softmax(mlp(jnp.zeros((1, dim), jnp.float32))[0], axis=-1)
    diag = jnp.arange(length)
    diag_total = -(zero_log_probs[teacher_codes[:, diag, diag]] * node_mask).sum()
    pair_total = _pairs_ce(
        mlp.variables["params"],
        rows.reshape(groups, batch // groups, length, dim),
        teacher_codes.reshape(groups, batch // groups, length, length),
        pairs,
        pair_weights.astype(jnp.float32),
        chunk,
        jnp.dtype(mlp.dtype),
    )
    count = 2.0 * (pair_weights > 0).sum() + node_mask.sum()
    return (pair_total + diag_total) / jnp.maximum(count, 1.0)


def signals_for_view(teacher_signals: Any, view: str) -> Any:
    """The view's `TeacherSignals` from the per-view mapping; a clear error when missing."""
    try:
        return teacher_signals[view]
    except KeyError:
        raise ValueError(
            f"teacher_signals has no entry for view {view!r} (has "
            f"{sorted(teacher_signals)}); the teacher must cover every model.views entry"
        ) from None
