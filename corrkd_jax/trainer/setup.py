"""From a training config to the objects a run needs: data, split, features, model.

Shared by `corrkd_jax.train` and `corrkd_jax.recommend`, so inference rebuilds exactly the
model that was trained. Relative paths in configs (`data.root`, `data.cache_dir`,
`features.out_dir`, `features.cache_dir`) follow `corrkd_jax.paths.resolve_path`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ml_collections
import numpy as np

from corrkd_jax.data import Examples, InteractionData, Split, load_dataset, make_split
from corrkd_jax.metrics import metric_names
from corrkd_jax.models import BACKBONES, build_model
from corrkd_jax.paths import resolve_path
from corrkd_jax.variants import VariantSpec, get_variant

REQUIRED_FIELDS = (
    "seed",
    "batch_size",
    "num_epochs",
    "data.root",
    "data.protocol",
    "model.backbone",
    "model.variant",
)


def check_config(config: ml_collections.ConfigDict) -> None:
    """Raises ValueError naming the first missing required field or a bad value."""
    for dotted in REQUIRED_FIELDS:
        node: Any = config
        for part in dotted.split("."):
            if not isinstance(node, ml_collections.ConfigDict) or part not in node:
                raise ValueError(f"training config lacks the required field {dotted!r}")
            node = node[part]
    for name in ("batch_size", "eval_batch_size", "num_epochs"):
        if int(config[name]) < 1:
            raise ValueError(f"config.{name}={config[name]} must be >= 1")
    get_variant(config.model.variant)
    names = metric_names(config.eval.ks)
    if config.eval.metric not in names:
        raise ValueError(
            f"eval.metric={config.eval.metric!r} is not computed; choose one "
            f"of {names} (cut-offs from eval.ks)"
        )


@dataclasses.dataclass(frozen=True)
class Experiment:
    """Everything derived from a config before training starts."""

    data: InteractionData
    split: Split
    variant: VariantSpec
    features: dict[str, np.ndarray]  # view -> float32 [N + 1, d] (only model.views; {} if none)
    model: Any  # the flax Recommender from build_model

    @property
    def graph(self) -> bool:
        """True when batches need the session-graph arrays."""
        return self.model.backbone.node_key == "nodes"


def load_data(config: ml_collections.ConfigDict) -> InteractionData:
    """The dataset of `config.data` (processed-data cache included)."""
    data_config = config.data
    cache_dir = resolve_path(data_config.cache_dir) or None
    return load_dataset(
        resolve_path(data_config.root),
        format=data_config.format,
        min_core=int(data_config.min_core),
        cache_dir=cache_dir,
    )


def split_data(config: ml_collections.ConfigDict, data: InteractionData) -> Split:
    """The train/valid/test split of `config.data.protocol`; errors on an empty part."""
    data_config = config.data
    train_on = data_config.train_on
    backbone = BACKBONES.get(config.model.backbone)  # an unknown name fails in build_model
    if train_on == "sequences" and backbone is not None and not backbone.per_position:
        raise ValueError(
            f"data.train_on='sequences' needs a backbone with an output per position "
            f"(sasrec, gru4rec); model.backbone={config.model.backbone!r} builds its graph "
            f"per prefix: use data.train_on='prefixes'"
        )
    split = make_split(
        data,
        data_config.protocol,
        max_len=int(data_config.max_len),
        valid_fraction=float(data_config.valid_fraction),
        test_fraction=float(data_config.test_fraction),
        train_on=train_on,
    )
    for part in ("train", "valid", "test"):
        examples: Examples = getattr(split, part)
        if len(examples.targets) == 0:
            raise ValueError(
                f"{data.name}: the {data_config.protocol} split has no {part} "
                f"cases (too few items per user?)"
            )
    return split


def features_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """`config.features` with its paths resolved (a copy) and checked against `config.data`."""
    features = ml_collections.ConfigDict(config.features.to_dict())
    if resolve_path(features.data.root) != resolve_path(config.data.root):
        raise ValueError(
            f"features.data.root={features.data.root!r} and data.root="
            f"{config.data.root!r} name different datasets; the stage-1 features must be "
            f"computed on the training dataset"
        )
    for name in ("out_dir", "cache_dir"):
        features[name] = resolve_path(features[name])
    return features


def load_features(
    config: ml_collections.ConfigDict, data: InteractionData, variant: VariantSpec
) -> dict[str, np.ndarray]:
    """The reduced features of every `model.views` view (stage 1 runs first when missing)."""
    if not variant.use_views:
        return {}
    # Imports transformers: only when a variant needs features.
    from corrkd_jax.features import default_out_dir, ensure_features

    views = tuple(config.model.views)
    missing = [view for view in views if view not in config.features.views]
    if missing:
        raise ValueError(
            f"model.views {missing} are not views of config.features "
            f"(it has {sorted(config.features.views)})"
        )
    features = features_config(config)
    # The cache folder is keyed by ALL views of the stage-1 config: fix it before dropping
    # the views the model does not use (stage 1 then skips those).
    features.out_dir = features.out_dir or default_out_dir(features)
    for view in list(features.views):
        if view not in views:
            del features.views[view]
    reduced = ensure_features(features, data.items, progress=bool(config.progress))
    return {view: reduced[view] for view in views}


def build_experiment(
    config: ml_collections.ConfigDict, data: InteractionData | None = None
) -> Experiment:
    """Loads data (unless given, e.g. already read by `validate.prepare_run`), splits it,
    ensures features and builds the model of `config`."""
    check_config(config)
    variant = get_variant(config.model.variant)
    data = data if data is not None else load_data(config)
    split = split_data(config, data)
    features = load_features(config, data, variant)
    model = build_model(config, data.items.num_items, features)
    return Experiment(data=data, split=split, variant=variant, features=features, model=model)
