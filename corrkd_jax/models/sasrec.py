"""SASRec (Kang and McAuley, ICDM 2018) over the gated fusion of ID and view embeddings.

Pre-layer-norm causal self-attention blocks with a key padding mask. Positions are counted from
the END of the right-aligned history (the last item has position 0), so extra left padding
changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from corrkd_jax.models.fusion import GatedFusion


class SASRecEncoder(nn.Module):
    """Causal transformer encoder over a right-aligned sequence; per-position outputs."""

    dim: int
    num_blocks: int = 2
    num_heads: int = 2
    dropout: float = 0.0
    max_positions: int = 200

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array, train: bool = False) -> jax.Array:
        """Args: x float32 [B, L, d]; mask bool [B, L] (real positions).

        Returns: float32 [B, L, d]; output i depends on real inputs 0..i only.
        """
        length = x.shape[1]
        if length > self.max_positions:
            raise ValueError(
                    f"sequence length {length} exceeds model.sasrec.max_positions="
                    f"{self.max_positions}")
        deterministic = not train
        # Position 0 = last column: counted from the end so left padding is irrelevant.
        positions = jnp.arange(length - 1, -1, -1)
        pos = nn.Embed(self.max_positions, self.dim,
                       embedding_init=nn.initializers.normal(0.02),
                       name="position_embedding")(positions)
        keep = mask[..., None].astype(x.dtype)
        x = nn.Dropout(self.dropout, deterministic=deterministic)(x + pos[None]) * keep
        # Causal and key-padding mask: [B, 1, L, L]; padded queries see no key (flax fills
        # such rows with a uniform softmax: finite, and never read by real positions).
        attn_mask = nn.combine_masks(
                nn.make_causal_mask(mask, dtype=jnp.bool_),
                nn.make_attention_mask(jnp.ones_like(mask), mask, dtype=jnp.bool_))
        for i in range(self.num_blocks):
            y = nn.LayerNorm(name=f"attention_norm_{i}")(x)
            y = nn.MultiHeadDotProductAttention(
                    num_heads=self.num_heads, qkv_features=self.dim,
                    dropout_rate=self.dropout, deterministic=deterministic,
                    name=f"attention_{i}")(y, y, mask=attn_mask)
            x = x + nn.Dropout(self.dropout, deterministic=deterministic)(y)
            y = nn.LayerNorm(name=f"ffn_norm_{i}")(x)
            y = nn.Dense(self.dim, name=f"ffn_in_{i}")(y)
            y = nn.Dense(self.dim, name=f"ffn_out_{i}")(nn.gelu(y))
            x = (x + nn.Dropout(self.dropout, deterministic=deterministic)(y)) * keep
        return nn.LayerNorm(name="final_norm")(x)


class SASRec(nn.Module):
    """SASRec backbone: gated fusion per position -> causal encoder -> last column."""

    node_key: ClassVar[str] = "items"  # the batch key whose ids the rows are gathered at

    dim: int
    dropout: float = 0.0
    num_blocks: int = 2
    num_heads: int = 2
    max_positions: int = 200

    @nn.compact
    def __call__(
            self,
            id_rows: jax.Array,
            view_rows: Sequence[jax.Array],
            batch: Mapping[str, jax.Array],
            train: bool = False,
    ) -> jax.Array:
        """Sequence vectors.

        Args:
            id_rows: float32 [B, L, d], `E_id[items]` (zero at padding).
            view_rows: per view float32 [B, L, d], `E_v[items]`.
            batch: needs `items` int32 [B, L], right-aligned.
            train: enables dropout (rng stream "dropout").

        Returns: float32 [B, d], the output at the last column.
        """
        fused = GatedFusion(self.dim, name="fusion")([id_rows, *view_rows])
        encoded = SASRecEncoder(
                self.dim, self.num_blocks, self.num_heads, self.dropout, self.max_positions,
                name="encoder")(fused, batch["items"] > 0, train=train)
        return encoded[:, -1]
