"""`build_model(config, ...)`: the configured `Recommender`, with checked view features.

Reads `config.model` (backbone, variant, views, dim, dropout and the backbone's own section)
and `config.kd` (corr_kind, tau, num_codes, pair_chunk, pair_dtype); every field and its
meaning is in configs/default.py, the one source of defaults.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import numpy as np

from corrkd_jax.losses import KINDS
from corrkd_jax.models.gru4rec import GRU4Rec
from corrkd_jax.models.recommender import Recommender, constant_init
from corrkd_jax.models.sasrec import ACTIVATIONS, NORMS, POSITIONS, SASRec, SASRecEncoder
from corrkd_jax.models.session_graph import SessionGraph
from corrkd_jax.variants import get_variant

BACKBONES: dict[str, type[nn.Module]] = {
    "session_graph": SessionGraph,
    "sasrec": SASRec,
    "gru4rec": GRU4Rec,
}
PAIR_DTYPES = ("float32", "bfloat16")
_VIEW_NAME = re.compile(r"^[A-Za-z0-9_]+$")  # usable inside a parameter name


def _backbone_class(name: str) -> type[nn.Module]:
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(
            f"model.backbone={name!r} is not a known backbone; choose one of {sorted(BACKBONES)}"
        ) from None


def kd_node_items(batch: Mapping[str, Any], backbone: str) -> Any:
    """The ids the KDSR pair terms run over.

    Args:
        batch: a batch dict (docs/architecture.md).
        backbone: `model.backbone`.

    Returns: int32 [B, Ln]: `batch["nodes"]` (distinct items) for `session_graph`,
        `batch["items"]` (positions) otherwise; 0 = padding.
    """
    key = _backbone_class(backbone).node_key
    if key not in batch:
        raise ValueError(f"backbone {backbone!r} needs batch[{key!r}], which is missing")
    return batch[key]


def _check_choice(field: str, value: Any, choices: Any) -> None:
    if value not in choices:
        raise ValueError(f"{field}={value!r} is not one of {tuple(choices)}")


def _check_rate(field: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{field}={value} must be in [0, 1)")


def make_backbone(model_config: Any) -> nn.Module:
    """The backbone module of `model_config` (the `config.model` section)."""
    cls = _backbone_class(model_config.backbone)
    dim, dropout = int(model_config.dim), float(model_config.dropout)
    _check_rate("model.dropout", dropout)
    if cls is SessionGraph:
        section = model_config.session_graph
        if int(section.last_n) < 1:
            raise ValueError(f"model.session_graph.last_n={section.last_n} must be >= 1")
        _check_rate("model.session_graph.attention_dropout", float(section.attention_dropout))
        return SessionGraph(
            dim,
            dropout,
            int(section.last_n),
            float(section.negative_slope),
            float(section.attention_dropout),
        )
    if cls is SASRec:
        section = model_config.sasrec
        heads = int(section.num_heads)
        if heads < 1 or dim % heads:
            raise ValueError(f"model.dim={dim} is not divisible by model.sasrec.num_heads={heads}")
        _check_choice("model.sasrec.norm", section.norm, NORMS)
        _check_choice("model.sasrec.activation", section.activation, ACTIVATIONS)
        _check_choice("model.sasrec.positions", section.positions, POSITIONS)
        if int(section.ffn_ratio) < 1 or float(section.init_std) < 0:
            raise ValueError(
                f"model.sasrec.ffn_ratio={section.ffn_ratio} must be >= 1 and "
                f"model.sasrec.init_std={section.init_std} >= 0"
            )
        encoder = SASRecEncoder(
            dim=dim,
            num_blocks=int(section.num_blocks),
            num_heads=heads,
            dropout=dropout,
            max_positions=int(section.max_positions),
            norm=section.norm,
            layer_norm_eps=float(section.layer_norm_eps),
            ffn_ratio=int(section.ffn_ratio),
            activation=section.activation,
            init_std=float(section.init_std),
            broadcast_attention_dropout=bool(section.broadcast_attention_dropout),
            positions=section.positions,
        )
        return SASRec(dim, encoder)
    hidden = int(model_config.gru4rec.hidden)
    if hidden < 1:
        raise ValueError(f"model.gru4rec.hidden={hidden} must be >= 1")
    return GRU4Rec(dim, dropout, hidden, bool(model_config.gru4rec.output_proj))


def _checked_features(
    views: tuple[str, ...],
    view_features: Mapping[str, np.ndarray],
    num_items: int,
    dim: int,
) -> list[np.ndarray]:
    """The float32 feature table of each view, validated ([num_items + 1, dim], finite)."""
    tables = []
    for view in views:
        if view not in view_features:
            raise ValueError(
                f"model.views lists {view!r} but no features were given for it "
                f"(available: {sorted(view_features)})"
            )
        table = np.asarray(view_features[view], np.float32)
        if table.ndim != 2 or table.shape[0] != num_items + 1:
            raise ValueError(
                f"features of view {view!r} have shape {table.shape}; expected "
                f"[num_items + 1, dim] = [{num_items + 1}, {dim}] (row 0 = padding)"
            )
        if table.shape[1] != dim:
            raise ValueError(
                f"features of view {view!r} are {table.shape[1]}-d but model.dim={dim}; "
                f"reduce them to model.dim in stage 1"
            )
        if not np.isfinite(table).all():
            raise ValueError(f"features of view {view!r} contain NaN or inf")
        tables.append(table)
    return tables


def build_model(
    config: Any, num_items: int, view_features: Mapping[str, np.ndarray]
) -> Recommender:
    """The configured recommender (see the module docstring for the fields read).

    Args:
        config: the training config (`config.model`, `config.kd`).
        num_items: N (item ids 1..N, 0 = padding).
        view_features: view -> float32 [N + 1, d] reduced stage-1 features (row 0 = padding);
            only the views in `model.views` are used, and none for `id_only`.

    Returns:
        A `Recommender`; call it as `model.apply({"params": p}, batch, teacher_signals=...,
        train=..., rngs={"dropout": key})` -> (logits [B, N], aux dict of scalars).
    """
    model_config, kd = config.model, config.kd
    variant = get_variant(model_config.variant)
    dim = int(model_config.dim)
    if num_items < 1 or dim < 1:
        raise ValueError(f"num_items={num_items} and model.dim={dim} must be >= 1")
    views: tuple[str, ...] = ()
    if variant.use_views:
        views = tuple(model_config.views)
        if not views:
            raise ValueError(f"model.variant={variant.name!r} needs at least one model.views")
        if len(set(views)) != len(views):
            raise ValueError(f"model.views={views} lists a view twice")
        for view in views:
            if not isinstance(view, str) or not _VIEW_NAME.match(view):
                raise ValueError(f"model.views entry {view!r} must match {_VIEW_NAME.pattern}")
    tables = _checked_features(views, view_features, num_items, dim)
    _check_choice("kd.corr_kind", kd.corr_kind, KINDS)
    _check_choice("kd.pair_dtype", kd.pair_dtype, PAIR_DTYPES)
    if float(kd.tau) <= 0 or int(kd.num_codes) < 2 or int(kd.pair_chunk) < 0:
        raise ValueError(
            f"kd.tau={kd.tau} must be > 0, kd.num_codes={kd.num_codes} >= 2 and "
            f"kd.pair_chunk={kd.pair_chunk} >= 0"
        )
    return Recommender(
        num_items=num_items,
        dim=dim,
        backbone=make_backbone(model_config),
        views=views,
        view_inits=tuple(constant_init(t) for t in tables),
        freeze_views=variant.table_group == "frozen",
        holistic=variant.holistic,
        codes=variant.codes,
        corr_kind=kd.corr_kind,
        tau=float(kd.tau),
        num_codes=int(kd.num_codes),
        pair_chunk=int(kd.pair_chunk),
        pair_dtype=kd.pair_dtype,
    )


def init_params(
    model: Recommender, batch: Mapping[str, Any], seed: int | jax.Array = 0
) -> dict[str, Any]:
    """Initial parameters of `model` for a batch's shapes (KD heads included).

    Args:
        model: from `build_model`.
        batch: any batch of the training format (only shapes matter).
        seed: int seed or a PRNG key.

    Returns: the `params` collection.
    """
    key = jax.random.key(seed) if isinstance(seed, int) else seed
    return model.init({"params": key}, batch, teacher_signals=None, train=False)["params"]
