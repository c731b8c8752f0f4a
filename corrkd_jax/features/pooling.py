"""Pooling of encoder states into one vector per input (pure jnp, used inside jit)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

TEXT_POOLINGS = ("mean", "cls")
IMAGE_POOLINGS = ("pooler", "cls", "mean")


def masked_mean(hidden: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean over real tokens: hidden float [B, L, H], mask int/bool [B, L] -> float32 [B, H].

    Rows without any real token give zeros (the denominator is clamped to 1).
    """
    weights = mask.astype(jnp.float32)[..., None]
    total = jnp.sum(hidden.astype(jnp.float32) * weights, axis=1)
    return total / jnp.maximum(jnp.sum(weights, axis=1), 1.0)


def first_token(hidden: jax.Array) -> jax.Array:
    """CLS pooling of a bidirectional encoder: hidden [B, L, H] -> float32 [B, H]."""
    return hidden[:, 0].astype(jnp.float32)


def last_real_token(hidden: jax.Array, mask: jax.Array) -> jax.Array:
    """State of the last real token (right padding): hidden [B, L, H], mask [B, L] -> [B, H].

    For decoder-only (causal) models this is the only position that has seen the whole text,
    so it plays the role of CLS.
    """
    last = jnp.maximum(jnp.sum(mask.astype(jnp.int32), axis=1) - 1, 0)
    return jnp.take_along_axis(hidden, last[:, None, None], axis=1)[:, 0].astype(jnp.float32)


def pool_text(hidden: jax.Array, mask: jax.Array, pooling: str, *, causal: bool) -> jax.Array:
    """hidden [B, L, H], mask [B, L] -> float32 [B, H] by `pooling` ("mean" | "cls").

    "cls" is the first token for encoders and the last real token for causal models.
    """
    if pooling == "mean":
        return masked_mean(hidden, mask)
    if pooling == "cls":
        return last_real_token(hidden, mask) if causal else first_token(hidden)
    raise ValueError(f"text pooling must be one of {TEXT_POOLINGS}, got {pooling!r}")


def l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
    """Rows scaled to unit L2 norm: x [B, H] -> [B, H] (zero rows stay zero)."""
    norm = jnp.sqrt(jnp.sum(jnp.square(x), axis=-1, keepdims=True))
    return x / jnp.maximum(norm, eps)
