"""Amazon Sports and Outdoors (S3-Rec 5-core): configs/beauty.py with this dataset.

    python -m corrkd_jax.train --config configs/sports.py:sasrec,kdsr \
        --workdir runs/sports/sasrec-kdsr

The item table has only short keyword text, so there is one view, `text`
(configs/features/sports_minilm.py). Argument "backbone,variant" as in configs/beauty.py.
"""

from __future__ import annotations

import ml_collections

from corrkd_jax.trainer.config_files import link_features_to_data, sibling_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = sibling_config(__file__, "beauty.py", arg)
    config.data.root = "../shared/data/amazon-sports"  # relative to the repo root
    config.model.views = ("text",)  # IDGenRec keyword text (no titles in this dataset)
    config.features = sibling_config(__file__, "features/sports_minilm.py")  # stage 1
    config.features.reduce.method = "pca"  # as in configs/beauty.py (the autoencoder collapses)
    suffix = "" if config.model.dim == 128 else str(config.model.dim)  # one cache per width
    config.features.out_dir = f".cache/features/sports_minilm_pca{suffix}"  # repo-relative
    config.features.reduce.dim = config.model.get_ref("dim")  # reduced width = model.dim
    link_features_to_data(config)  # stage 1 on data.root (e.g. --config.data.root=DIR)
    return config
