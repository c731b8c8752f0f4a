"""Backbones (session graph, SASRec, GRU4Rec), gated fusion and the KDSR student.

Entry points: `build_model(config, num_items, view_features)` and
`kd_node_items(batch, backbone)`; see docs/architecture.md for the call contract.
"""

from __future__ import annotations

from corrkd_jax.models.build import (
    BACKBONES,
    build_model,
    init_params,
    kd_node_items,
    make_backbone,
)
from corrkd_jax.models.recommender import Recommender

__all__ = [
    "BACKBONES",
    "Recommender",
    "build_model",
    "init_params",
    "kd_node_items",
    "make_backbone",
]
