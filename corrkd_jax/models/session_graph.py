"""The session-graph backbone of the released KDSR code.

Nodes are the distinct items of a history (`batch["nodes"]`, left-aligned), edges carry a type
(`batch["adjacency"]`: 0 none, 1 self, 2 out, 3 in, 4 both). One relational graph-attention
layer refines the ID embeddings; per node the streams `[E_id, GNN(E_id), E_v...]` are fused by a
gate, the fused nodes go back to positions through `batch["alias"]`, and the sequence vector is
the sum of the last `last_n` positions (histories are right-aligned).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from corrkd_jax.models.fusion import Batch, GatedFusion, Rows, ViewRows

NUM_EDGE_TYPES = 4  # 1 self, 2 out, 3 in, 4 both directions


def _uniform(scale: float) -> nn.initializers.Initializer:
    """U(-scale, scale), the released layer's init."""

    def init(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -scale, scale)

    return init


class RelationalGAT(nn.Module):
    """One relational graph-attention layer with a learned attention vector per edge type.

    `h = x W`; for an edge i -> j of type r: `e_ij = s_r * LeakyReLU((h_i * h_j) . a_r)` with a
    learned vector `a_r` and a learned scalar `s_r` per edge type (the released code's "relation
    amplifier"); softmax over the j with an edge; attention dropout; output `sum_j alpha_ij h_j`.
    Nodes without edges (padding) give 0.

    The released code applies dropout to the masked scores *before* the softmax, which turns
    dropped non-edges (score -9e15) into score 0 and lets nodes attend to padding; we drop the
    attention weights after the softmax instead (standard attention dropout).
    """

    dim: int
    num_edge_types: int = NUM_EDGE_TYPES
    negative_slope: float = 0.1
    attention_dropout: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array, adjacency: jax.Array, train: bool = False) -> jax.Array:
        """Args: x float32 [B, n, d_in]; adjacency int32 [B, n, n] (0 = no edge); train enables
        attention dropout (rng stream "dropout").

        Returns: float32 [B, n, dim].
        """
        init = _uniform(1.0 / np.sqrt(self.dim))
        kernel = self.param("kernel", init, (x.shape[-1], self.dim))
        attn = self.param("edge_attention", init, (self.num_edge_types, self.dim))
        amplifier = self.param("edge_amplifier", init, (self.num_edge_types,))
        h = x @ kernel  # [B, n, d]
        # (h_i * h_j) . a_r for every type r at once: [B, R, n, n], no [B, n, n, d] tensor.
        scores = jnp.einsum("brid,bjd->brij", h[:, None] * attn[None, :, None, :], h)
        edge_type = jnp.clip(adjacency - 1, 0, self.num_edge_types - 1)
        e = jnp.take_along_axis(scores, edge_type[:, None], axis=1)[:, 0]  # [B, n, n]
        e = nn.leaky_relu(e, self.negative_slope) * amplifier[edge_type]
        edge = adjacency > 0
        # Masked softmax; rows without any edge get all-zero weights (finite, no NaN).
        alpha = jax.nn.softmax(jnp.where(edge, e, jnp.finfo(e.dtype).min), axis=-1)
        alpha = jnp.where(edge, alpha, 0.0)
        alpha = nn.Dropout(self.attention_dropout, deterministic=not train)(alpha)
        return alpha @ h


def sum_last_positions(x: jax.Array, mask: jax.Array, last_n: int) -> jax.Array:
    """Sum of the last `last_n` real positions of right-aligned rows.

    Args:
        x: float32 [B, L, d]; mask: bool [B, L] (real positions); right-aligned, so the last
            `last_n` columns are the last real positions (padding there is masked out).

    Returns: float32 [B, d].
    """
    tail = x[:, -last_n:] * mask[:, -last_n:, None]
    return tail.sum(axis=1)


class SessionGraph(nn.Module):
    """Session-graph backbone: relational GAT over item nodes, gated fusion, last-n sum."""

    node_key: ClassVar[str] = "nodes"  # the batch key whose ids the rows are gathered at
    # One vector per history ([B, d]): the graph is built per prefix, so it cannot predict
    # every position of a whole sequence in one pass (data.train_on="prefixes" only).
    per_position: ClassVar[bool] = False

    dim: int
    dropout: float = 0.0
    last_n: int = 2
    negative_slope: float = 0.1
    attention_dropout: float = 0.0

    @nn.compact
    def __call__(self, id_rows: Rows, view_rows: ViewRows, batch: Batch, train: bool = False):
        """Sequence vectors.

        Args:
            id_rows: float32 [B, Ln, d], `E_id[nodes]` (zero at padding nodes).
            view_rows: per view float32 [B, Ln, d], `E_v[nodes]`.
            batch: needs `items` [B, Lb], `alias` [B, Lb], `adjacency` [B, Ln, Ln].
            train: enables dropout (rng stream "dropout").

        Returns: float32 [B, d].
        """
        graph = RelationalGAT(
            self.dim,
            negative_slope=self.negative_slope,
            attention_dropout=self.attention_dropout,
            name="gnn",
        )(id_rows, batch["adjacency"], train)
        fused = GatedFusion(self.dim, name="fusion")([id_rows, graph, *view_rows])  # [B, Ln, d]
        fused = nn.Dropout(self.dropout, deterministic=not train)(fused)
        positions = jnp.take_along_axis(fused, batch["alias"][..., None], axis=1)  # [B, Lb, d]
        return sum_last_positions(positions, batch["items"] > 0, self.last_n)
