"""Data layer: readers, preprocessing, the built-in synthetic shop, splits and grain pipelines.

    data = load_dataset("../shared/data/amazon-beauty")      # or "builtin:synthetic"
    split = make_split(data, "leave_one_out", max_len=50)
    loader = TrainLoader(split.train, 256, (10, 20, 30, 50), seed=0, graph=True)

See docs/architecture.md for the contracts.
"""

from __future__ import annotations

from corrkd_jax.data.dataset import BUILTIN_SYNTHETIC, default_cache_dir, load_dataset
from corrkd_jax.data.graph import session_graph
from corrkd_jax.data.splits import PROTOCOLS, TRAIN_ON, make_split
from corrkd_jax.data.structures import (
    DataFormatError,
    Examples,
    InteractionData,
    ItemTable,
    Split,
)

_PIPELINE = ("BatchPlan", "EvalLoader", "TrainLoader", "build_batch")


def __getattr__(name: str):
    # The pipeline pulls in grain (and with it jax, ~1 s); import it only when used, so
    # `python -m corrkd_jax.data --describe` and the readers stay light.
    if name in _PIPELINE:
        from corrkd_jax.data import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BUILTIN_SYNTHETIC",
    "BatchPlan",
    "DataFormatError",
    "EvalLoader",
    "Examples",
    "InteractionData",
    "ItemTable",
    "PROTOCOLS",
    "TRAIN_ON",
    "Split",
    "TrainLoader",
    "build_batch",
    "default_cache_dir",
    "load_dataset",
    "make_split",
    "session_graph",
]
