"""Amazon Beauty, all-MiniLM-L6-v2 (offline, from the PyPI package), reduced to 128 by the AE.

View `title`: product title, falling back to the IDGenRec keyword text for the 7 items
without one. View `attr`: brand and category path (`OPI|Makeup|Nails|Nail Polish`).
Run: python -m corrkd_jax.features --config configs/features/beauty_minilm.py
"""

from __future__ import annotations

import ml_collections

from corrkd_jax.features.config import base_config, text_view


def get_config() -> ml_collections.ConfigDict:
    return base_config("beauty_minilm", "../shared/data/amazon-beauty", {
        "title": text_view(("title", "idgenrec_text")),  # title, else keyword text
        "attr": text_view(("attributes",)),  # brand|category|path
    })
