"""Stage 1: frozen Hugging Face Flax encoders turn item text/images into feature views.

Public API (imported lazily, so that config files importing `corrkd_jax.features.config` do
not pay for importing transformers):
  encode_texts, encode_images, load_encoder, reduce_features, compute_features,
  ensure_features, default_out_dir, load_items, flax_t5_compat.
CLI: `python -m corrkd_jax.features --config configs/features/<name>.py`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "encode_texts": "corrkd_jax.features.text",
    "encode_images": "corrkd_jax.features.image",
    "load_encoder": "corrkd_jax.features.encoders",
    "Encoder": "corrkd_jax.features.encoders",
    "reduce_features": "corrkd_jax.features.reduce",
    "compute_features": "corrkd_jax.features.stage",
    "compute_view": "corrkd_jax.features.stage",
    "ensure_features": "corrkd_jax.features.stage",
    "default_out_dir": "corrkd_jax.features.stage",
    "load_items": "corrkd_jax.features.items",
    "flax_t5_compat": "corrkd_jax.features.compat",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
