"""GRU4Rec (Hidasi et al., ICLR 2016) over the gated fusion of ID and view embeddings.

The GRU keeps its state on padded positions, so with right-aligned (left-padded) histories the
state at the last column depends on the real items only.
"""

from __future__ import annotations

from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from corrkd_jax.models.fusion import Batch, GatedFusion, Rows, ViewRows


class MaskedGRU(nn.Module):
    """A GRU layer (PyTorch gate layout) that skips masked steps; all hidden states out."""

    hidden: int

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        """Args: x float32 [B, L, d_in]; mask bool [B, L] (False = keep the previous state).

        Returns: float32 [B, L, hidden], the state after each step (zeros before the first
        real item).
        """
        h = self.hidden
        # Input projections of all steps in one matmul; only the recurrent part is scanned.
        x_proj = nn.Dense(3 * h, name="input_proj")(x)  # [B, L, 3h]
        w_h = self.param("hidden_kernel", nn.initializers.orthogonal(), (h, 3 * h))
        b_h = self.param("hidden_bias", nn.initializers.zeros_init(), (3 * h,))

        def step(state: jax.Array, inputs: tuple[jax.Array, jax.Array]):
            xt, mt = inputs
            xr, xz, xn = jnp.split(xt, 3, axis=-1)
            hr, hz, hn = jnp.split(state @ w_h + b_h, 3, axis=-1)
            r = jax.nn.sigmoid(xr + hr)
            z = jax.nn.sigmoid(xz + hz)
            n = jnp.tanh(xn + r * hn)
            new = (1.0 - z) * n + z * state
            new = jnp.where(mt[:, None], new, state)
            return new, new

        init = jnp.zeros((x.shape[0], h), x_proj.dtype)
        _, states = jax.lax.scan(step, init, (x_proj.swapaxes(0, 1), mask.swapaxes(0, 1)))
        return states.swapaxes(0, 1)


class GRU4Rec(nn.Module):
    """GRU4Rec backbone: gated fusion per position -> dropout -> GRU -> (projection) ->
    per-position outputs."""

    node_key: ClassVar[str] = "items"  # the batch key whose ids the rows are gathered at
    per_position: ClassVar[bool] = True  # returns [B, L, d]; output i sees items 0..i only

    dim: int
    dropout: float = 0.0
    hidden: int = 128
    # True: a Dense(hidden -> d) after the GRU always (RecBole: GRU 128 -> Linear -> 64), so
    # tanh-bounded states are not scored against the item table directly; False: only when
    # hidden != d (the behaviour before this option existed).
    output_proj: bool = False

    @nn.compact
    def __call__(self, id_rows: Rows, view_rows: ViewRows, batch: Batch, train: bool = False):
        """Per-position vectors [B, L, d] of the backbone contract (docs/architecture.md):
        the state after each step, projected to d when `output_proj` or hidden != d."""
        fused = GatedFusion(self.dim, name="fusion")([id_rows, *view_rows])
        fused = nn.Dropout(self.dropout, deterministic=not train)(fused)
        states = MaskedGRU(self.hidden, name="gru")(fused, batch["items"] > 0)
        if self.output_proj or self.hidden != self.dim:
            states = nn.Dense(self.dim, name="output_proj")(states)
        return states
