"""SASRec (Kang and McAuley, ICDM 2018) over the gated fusion of ID and view embeddings.

Causal self-attention blocks with a key padding mask, in two layouts:
- `norm="post"` (RecBole 1.2.1 and the original SASRec code): LayerNorm of the summed input
  embeddings, then per block `x = LN(x + Drop(Attn(x)))`, `x = LN(x + Drop(FFN(x)))`;
- `norm="pre"`: `x = x + Drop(Attn(LN(x)))`, `x = x + Drop(FFN(LN(x)))`, a final LN.

Options that matter for accuracy (configs/recbole_sasrec.py, configs/beauty.py say which):
`init_std` (N(0, init_std) kernels as in RecBole, so the blocks start small next to the
N(0, 0.02) embeddings; 0 = Flax's lecun_normal), `broadcast_attention_dropout` (False = an
independent attention-dropout mask per example and head; True = Flax's default, ONE mask for
the whole batch), `ffn_ratio` (FFN inner width = ffn_ratio * d), `activation`, and
`positions`: `from_start` counts positions from the first real item of the right-aligned
window (so a whole training sequence and its prefixes see the same positions), `from_end`
from the last item (the last item has position 0).
"""

from __future__ import annotations

from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from corrkd_jax.models.fusion import Batch, GatedFusion, Rows, ViewRows

NORMS = ("pre", "post")
POSITIONS = ("from_start", "from_end")
ACTIVATIONS = {
    "gelu": lambda x: nn.gelu(x, approximate=False),
    "gelu_tanh": lambda x: nn.gelu(x, approximate=True),
    "relu": nn.relu,
}


def kernel_initializer(init_std: float) -> nn.initializers.Initializer:
    """N(0, init_std) for init_std > 0, else Flax's default (lecun_normal)."""
    return nn.initializers.normal(init_std) if init_std > 0 else nn.linear.default_kernel_init


def position_ids(mask: jax.Array, positions: str) -> jax.Array:
    """int32 [B, L] position of each column of right-aligned rows (0 at padding for
    `from_start`). mask: bool [B, L]."""
    length = mask.shape[1]
    if positions == "from_end":
        return jnp.broadcast_to(jnp.arange(length - 1, -1, -1), mask.shape)
    return jnp.maximum(jnp.cumsum(mask, axis=1) - 1, 0)


class SASRecEncoder(nn.Module):
    """Causal transformer encoder over a right-aligned sequence; per-position outputs."""

    dim: int
    num_blocks: int = 2
    num_heads: int = 2
    dropout: float = 0.0
    max_positions: int = 200
    norm: str = "pre"
    layer_norm_eps: float = 1e-6
    ffn_ratio: int = 1
    activation: str = "gelu_tanh"
    init_std: float = 0.0
    broadcast_attention_dropout: bool = True
    positions: str = "from_end"

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array, train: bool = False) -> jax.Array:
        """Args: x float32 [B, L, d]; mask bool [B, L] (real positions).

        Returns: float32 [B, L, d]; output i depends on real inputs 0..i only.
        """
        length = x.shape[1]
        if length > self.max_positions:
            raise ValueError(
                f"sequence length {length} exceeds model.sasrec.max_positions={self.max_positions}"
            )
        deterministic = not train
        kernel_init = kernel_initializer(self.init_std)
        activation = ACTIVATIONS[self.activation]

        def layer_norm(name: str) -> nn.LayerNorm:
            return nn.LayerNorm(epsilon=self.layer_norm_eps, name=name)

        def dropout(y: jax.Array) -> jax.Array:
            return nn.Dropout(self.dropout, deterministic=deterministic)(y)

        pos = nn.Embed(
            self.max_positions,
            self.dim,
            embedding_init=nn.initializers.normal(0.02),
            name="position_embedding",
        )(position_ids(mask, self.positions))
        keep = mask[..., None].astype(x.dtype)
        x = x + pos
        if self.norm == "post":
            x = layer_norm("input_norm")(x)
        x = dropout(x) * keep
        # Causal and key-padding mask: [B, 1, L, L]; padded queries see no key (flax fills
        # such rows with a uniform softmax: finite, and never read by real positions).
        attn_mask = nn.combine_masks(
            nn.make_causal_mask(mask, dtype=jnp.bool_),
            nn.make_attention_mask(jnp.ones_like(mask), mask, dtype=jnp.bool_),
        )
        for i in range(self.num_blocks):
            attention = nn.MultiHeadDotProductAttention(
                num_heads=self.num_heads,
                qkv_features=self.dim,
                dropout_rate=self.dropout,
                deterministic=deterministic,
                broadcast_dropout=self.broadcast_attention_dropout,
                kernel_init=kernel_init,
                name=f"attention_{i}",
            )
            ffn_in = nn.Dense(
                self.ffn_ratio * self.dim, kernel_init=kernel_init, name=f"ffn_in_{i}"
            )
            ffn_out = nn.Dense(self.dim, kernel_init=kernel_init, name=f"ffn_out_{i}")
            if self.norm == "post":
                x = layer_norm(f"attention_norm_{i}")(x + dropout(attention(x, x, mask=attn_mask)))
                x = layer_norm(f"ffn_norm_{i}")(x + dropout(ffn_out(activation(ffn_in(x)))))
                x = x * keep
            else:
                y = layer_norm(f"attention_norm_{i}")(x)
                x = x + dropout(attention(y, y, mask=attn_mask))
                y = layer_norm(f"ffn_norm_{i}")(x)
                x = (x + dropout(ffn_out(activation(ffn_in(y))))) * keep
        if self.norm == "post":
            return x
        return layer_norm("final_norm")(x)


class SASRec(nn.Module):
    """SASRec backbone: gated fusion per position -> causal encoder -> per-position outputs."""

    node_key: ClassVar[str] = "items"  # the batch key whose ids the rows are gathered at
    per_position: ClassVar[bool] = True  # returns [B, L, d]; output i sees items 0..i only

    dim: int
    encoder: SASRecEncoder  # its settings (layers, heads, dropout, norm, ...) are the backbone's

    @nn.compact
    def __call__(self, id_rows: Rows, view_rows: ViewRows, batch: Batch, train: bool = False):
        """Per-position vectors [B, L, d] of the backbone contract (docs/architecture.md);
        the last column is the whole history's vector."""
        fused = GatedFusion(self.dim, name="fusion")([id_rows, *view_rows])
        return self.encoder(fused, batch["items"] > 0, train=train)
