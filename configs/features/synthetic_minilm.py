"""The embedded synthetic catalogue (`builtin:synthetic`), views `title` and `attr` with
all-MiniLM-L6-v2, reduced to 128: the stage-1 settings of the default training config.

Run: python -m corrkd_jax.features --config configs/features/synthetic_minilm.py
"""

from __future__ import annotations

import ml_collections

from corrkd_jax.features.config import base_config, text_view


def get_config() -> ml_collections.ConfigDict:
    return base_config("synthetic_minilm", "builtin:synthetic", {
        "title": text_view(("title",)),  # synthetic product title
        "attr": text_view(("attributes",)),  # synthetic brand|category path
    }, data_format="synthetic")
