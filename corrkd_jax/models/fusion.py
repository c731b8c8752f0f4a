"""Gated fusion of per-item representations (ID, graph, modality views).

The released KDSR code fuses the streams of one item with a shared two-layer MLP that scores
each stream (`Linear(d, d) -> ReLU -> Linear(d, 1)`), a softmax over the streams and the
weighted sum. The same module serves every backbone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

# The backbone call contract (docs/architecture.md): backbone(id_rows, view_rows, batch, train).
Rows = jax.Array  # float32 [B, L, d] table rows at the batch's nodes (zero at padding)
ViewRows = Sequence[jax.Array]  # one Rows per view, in model.views order
Batch = Mapping[str, jax.Array]  # a batch dict (docs/architecture.md "Batches")


class GatedFusion(nn.Module):
    """softmax(MLP(x_s)) weighted sum over streams s; one MLP shared by all streams."""

    dim: int  # hidden width of the scoring MLP

    @nn.compact
    def __call__(self, streams: Sequence[jax.Array]) -> jax.Array:
        """Fuses S streams.

        Args:
            streams: S >= 1 arrays, each float32 [..., d].

        Returns:
            float32 [..., d]. With a single stream it is returned unchanged (no parameters).
        """
        if len(streams) == 1:
            return streams[0]
        stacked = jnp.stack(streams, axis=-2)  # [..., S, d]
        energy = nn.Dense(self.dim, name="score_hidden")(stacked)
        energy = nn.Dense(1, name="score_out")(nn.relu(energy))[..., 0]  # [..., S]
        weights = jax.nn.softmax(energy, axis=-1)
        return jnp.einsum("...s,...sd->...d", weights, stacked)
