"""Amazon Toys and Games, all-MiniLM-L6-v2, view `text` = IDGenRec keyword text, 128-d.

Run: python -m corrkd_jax.features --config configs/features/toys_minilm.py
"""

from __future__ import annotations

import ml_collections

from corrkd_jax.features.config import base_config, text_view


def get_config() -> ml_collections.ConfigDict:
    return base_config("toys_minilm", "../shared/data/amazon-toys", {
        "text": text_view(("idgenrec_text",)),  # ~5 keywords per item (no titles in this set)
    })
