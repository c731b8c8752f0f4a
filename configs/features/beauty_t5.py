"""Amazon Beauty with T5-base (the paper's default text encoder): mean-pooled encoder states
(768-d, not normalised), reduced to 128 by the released autoencoder.

T5-base is NOT available offline here: this config needs the Hugging Face hub (or a local
copy: `--config.views.title.encoder=/path/to/t5-base`) and is meant for GPU/TPU machines, e.g.
  python -m corrkd_jax.features --config configs/features/beauty_t5.py --config.dtype=bfloat16
The Flax T5 incompatibility with current JAX is handled by corrkd_jax.features.compat.
"""

from __future__ import annotations

import ml_collections

from corrkd_jax.features.config import base_config, text_view

T5_BASE = "google-t5/t5-base"  # hub name of T5-base (Flax weights available on the hub)


def get_config() -> ml_collections.ConfigDict:
    config = base_config("beauty_t5", "../shared/data/amazon-beauty", {
        "title": text_view(("title", "idgenrec_text"), encoder=T5_BASE, normalize=False),
        "attr": text_view(("attributes",), encoder=T5_BASE, normalize=False),
    })
    config.batch_size = 256  # accelerator-sized batches
    return config
