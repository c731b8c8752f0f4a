"""`build_model(config, ...)`: the configured `Recommender`, with checked view features.

Config fields read (defaults in brackets when the field is absent):

    model.backbone                 session_graph | sasrec | gru4rec
    model.variant                  see corrkd_jax/variants.py
    model.views                    view names (ignored by `id_only`)
    model.dim                      d, the width of every table (features must match)
    model.dropout                  [0.0] dropout rate of fusion and backbone
    model.session_graph.last_n     [2] positions summed into the sequence vector
    model.session_graph.negative_slope  [0.1] LeakyReLU slope of the graph attention
    model.session_graph.attention_dropout  [0.0] dropout on the graph-attention weights
    model.sasrec.num_blocks        [2] self-attention blocks
    model.sasrec.num_heads         [2] attention heads (dim % num_heads == 0)
    model.sasrec.max_positions     [200] learned positions (>= the longest padded batch)
    model.sasrec.norm              [pre] pre | post (RecBole) layer norm placement
    model.sasrec.layer_norm_eps    [1e-6] LayerNorm epsilon (RecBole: 1e-12)
    model.sasrec.ffn_ratio         [1] FFN inner width = ffn_ratio * dim (RecBole: 4)
    model.sasrec.activation        [gelu_tanh] gelu (exact, RecBole) | gelu_tanh | relu
    model.sasrec.init_std          [0.0] N(0, init_std) dense kernels (RecBole: 0.02); 0 = lecun
    model.sasrec.broadcast_attention_dropout  [True] one attention-dropout mask per batch
    model.sasrec.positions         [from_end] from_start | from_end position counting
    model.gru4rec.hidden           [model.dim] GRU width (projected back to dim if different)
    model.gru4rec.output_proj      [False] always project the GRU state to dim
    kd.corr_kind                   [cos] student correlation kind (the teacher's too)
    kd.tau                         [1.5] holistic temperature
    kd.num_codes                   [50] K, code classes
    kd.pair_chunk                  [1024] listed pairs per scan step of the code term (0 = one pass)
    kd.pair_dtype                  [float32] compute dtype of the code MLP (bfloat16: an option
                                   for GPUs/TPUs; slower on CPUs, changes results slightly)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import numpy as np

from corrkd_jax.models.gru4rec import GRU4Rec
from corrkd_jax.models.recommender import Recommender, constant_init
from corrkd_jax.models.sasrec import ACTIVATIONS, NORMS, POSITIONS, SASRec
from corrkd_jax.models.session_graph import SessionGraph
from corrkd_jax.variants import get_variant

BACKBONES: dict[str, type[nn.Module]] = {
        "session_graph": SessionGraph,
        "sasrec": SASRec,
        "gru4rec": GRU4Rec,
}
CORR_KINDS = ("cos", "dot", "euc", "man")
PAIR_DTYPES = ("float32", "bfloat16")
_VIEW_NAME = re.compile(r"^[A-Za-z0-9_]+$")  # usable inside a parameter name


def _get(section: Any, name: str, default: Any) -> Any:
    """`section.name`, or `default` when the section or the field is absent."""
    if section is None:
        return default
    value = section.get(name, default) if hasattr(section, "get") else getattr(
            section, name, default)
    return default if value is None else value


def _backbone_class(name: str) -> type[nn.Module]:
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(
                f"model.backbone={name!r} is not a known backbone; choose one of "
                f"{sorted(BACKBONES)}") from None


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


def make_backbone(model_config: Any) -> nn.Module:
    """The backbone module of `model_config` (the `config.model` section)."""
    name = model_config.backbone
    cls = _backbone_class(name)
    dim = int(model_config.dim)
    dropout = float(_get(model_config, "dropout", 0.0))
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"model.dropout={dropout} must be in [0, 1)")
    section = _get(model_config, name, None)
    if cls is SessionGraph:
        last_n = int(_get(section, "last_n", 2))
        if last_n < 1:
            raise ValueError(f"model.session_graph.last_n={last_n} must be >= 1")
        attention_dropout = float(_get(section, "attention_dropout", 0.0))
        if not 0.0 <= attention_dropout < 1.0:
            raise ValueError(f"model.session_graph.attention_dropout={attention_dropout} "
                             "must be in [0, 1)")
        return SessionGraph(dim, dropout, last_n,
                            float(_get(section, "negative_slope", 0.1)), attention_dropout)
    if cls is SASRec:
        heads = int(_get(section, "num_heads", 2))
        if heads < 1 or dim % heads:
            raise ValueError(f"model.dim={dim} is not divisible by model.sasrec.num_heads={heads}")
        choices = {"norm": NORMS, "activation": tuple(ACTIVATIONS), "positions": POSITIONS}
        chosen = {name: str(_get(section, name, legacy))
                  for name, legacy in (("norm", "pre"), ("activation", "gelu_tanh"),
                                       ("positions", "from_end"))}
        for name, value in chosen.items():
            if value not in choices[name]:
                raise ValueError(f"model.sasrec.{name}={value!r} is not one of {choices[name]}")
        ffn_ratio = int(_get(section, "ffn_ratio", 1))
        init_std = float(_get(section, "init_std", 0.0))
        if ffn_ratio < 1 or init_std < 0:
            raise ValueError(f"model.sasrec.ffn_ratio={ffn_ratio} must be >= 1 and "
                             f"model.sasrec.init_std={init_std} >= 0")
        return SASRec(dim, dropout, int(_get(section, "num_blocks", 2)), heads,
                      int(_get(section, "max_positions", 200)), chosen["norm"],
                      float(_get(section, "layer_norm_eps", 1e-6)), ffn_ratio,
                      chosen["activation"], init_std,
                      bool(_get(section, "broadcast_attention_dropout", True)),
                      chosen["positions"])
    hidden = int(_get(section, "hidden", dim))
    if hidden < 1:
        raise ValueError(f"model.gru4rec.hidden={hidden} must be >= 1")
    return GRU4Rec(dim, dropout, hidden, bool(_get(section, "output_proj", False)))


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
                    f"(available: {sorted(view_features)})")
        table = np.asarray(view_features[view], np.float32)
        if table.ndim != 2 or table.shape[0] != num_items + 1:
            raise ValueError(
                    f"features of view {view!r} have shape {table.shape}; expected "
                    f"[num_items + 1, dim] = [{num_items + 1}, {dim}] (row 0 = padding)")
        if table.shape[1] != dim:
            raise ValueError(
                    f"features of view {view!r} are {table.shape[1]}-d but model.dim={dim}; "
                    f"reduce them to model.dim in stage 1")
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
    model_config, kd = config.model, _get(config, "kd", None)
    variant = get_variant(model_config.variant)
    dim = int(model_config.dim)
    if num_items < 1 or dim < 1:
        raise ValueError(f"num_items={num_items} and model.dim={dim} must be >= 1")
    views: tuple[str, ...] = ()
    if variant.use_views:
        views = tuple(_get(model_config, "views", ()))
        if not views:
            raise ValueError(f"model.variant={variant.name!r} needs at least one model.views")
        if len(set(views)) != len(views):
            raise ValueError(f"model.views={views} lists a view twice")
        for view in views:
            if not isinstance(view, str) or not _VIEW_NAME.match(view):
                raise ValueError(f"model.views entry {view!r} must match {_VIEW_NAME.pattern}")
    tables = _checked_features(views, view_features, num_items, dim)
    corr_kind = str(_get(kd, "corr_kind", "cos"))
    if corr_kind not in CORR_KINDS:
        raise ValueError(f"kd.corr_kind={corr_kind!r} is not one of {CORR_KINDS}")
    tau = float(_get(kd, "tau", 1.5))
    num_codes = int(_get(kd, "num_codes", 50))
    if tau <= 0 or num_codes < 2:
        raise ValueError(f"kd.tau={tau} must be > 0 and kd.num_codes={num_codes} >= 2")
    pair_chunk = int(_get(kd, "pair_chunk", 1024))
    pair_dtype = str(_get(kd, "pair_dtype", "float32"))
    if pair_chunk < 0 or pair_dtype not in PAIR_DTYPES:
        raise ValueError(f"kd.pair_chunk={pair_chunk} must be >= 0 and kd.pair_dtype="
                         f"{pair_dtype!r} one of {PAIR_DTYPES}")
    return Recommender(
            num_items=num_items,
            dim=dim,
            backbone=make_backbone(model_config),
            views=views,
            view_inits=tuple(constant_init(t) for t in tables),
            freeze_views=variant.table_group == "frozen",
            holistic=variant.holistic,
            codes=variant.codes,
            corr_kind=corr_kind,
            tau=tau,
            num_codes=num_codes,
            pair_chunk=pair_chunk,
            pair_dtype=pair_dtype,
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
