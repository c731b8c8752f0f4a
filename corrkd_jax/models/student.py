"""The KDSR student heads of one view and its two distillation terms.

Per view `v` the student table rows `E_v[n]` of a batch's nodes feed
- the holistic head: `h = Dense(Dense(E_v[n]))` (no activation between), student correlations
  `S = corr(h_i, h_j)`, loss `holistic_correlation_loss(S, C, M, tau)`;
- the code head: `logits_ij = Dense_K(relu(Dense_d(|E_v[n_i] - E_v[n_j]|)))`, loss
  `correlation_code_loss(logits, z, M)` (evaluated over the pairs i < j and the diagonal only,
  see `code_term`).
Teacher targets `C` and `z` come from `corrkd_jax.teacher.teacher_signals`.
"""

from __future__ import annotations

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

    @nn.compact
    def __call__(self, pair_diff: jax.Array) -> jax.Array:
        """Args: pair_diff float32 [..., d]. Returns: float32 [..., num_codes]."""
        hidden = nn.relu(nn.Dense(self.dim, name="hidden")(pair_diff.astype(jnp.float32)))
        return nn.Dense(self.num_codes, name="logits")(hidden)


def pair_code_logits(mlp: CodeMLP, rows: jax.Array) -> jax.Array:
    """Code logits of every ordered node pair (the plain form; `code_term` avoids it).

    Args: mlp: the view's bound `CodeMLP`; rows float32 [B, Ln, d].

    Returns: float32 [B, Ln, Ln, K].
    """
    rows = rows.astype(jnp.float32)
    return mlp(jnp.abs(rows[:, :, None, :] - rows[:, None, :, :]))


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
    student_corr = pairwise_correlation(projection(rows), kind)
    return holistic_correlation_loss(student_corr, teacher_corr, mask, tau)


def code_term(
        mlp: CodeMLP, rows: jax.Array, teacher_codes: jax.Array, mask: jax.Array
) -> jax.Array:
    """Unweighted correlation-code loss of one view.

    Equal to `correlation_code_loss(pair_code_logits(mlp, rows), teacher_codes, mask)`, at half
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
                logits[:, :, None], teacher_codes[:, rows_idx, cols_idx][:, :, None],
                part_mask[:, :, None])
        total = total + part_count * mean
        count = count + part_count
    return total / jnp.maximum(count, 1.0)


def signals_for_view(teacher_signals: Any, view: str) -> Any:
    """The view's `TeacherSignals` from the per-view mapping; a clear error when missing."""
    try:
        return teacher_signals[view]
    except KeyError:
        raise ValueError(
                f"teacher_signals has no entry for view {view!r} (has "
                f"{sorted(teacher_signals)}); the teacher must cover every model.views entry"
        ) from None
