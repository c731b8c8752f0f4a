"""Loading ml_collections config files by path (what `--config file.py:arg` does).

Training configs use it to embed a stage-1 config from `configs/features/` instead of
copying its settings, and tests use it to load `configs/default.py`.
"""

from __future__ import annotations

import importlib.util
import os

import ml_collections

CONFIGS_DIR = "configs"


def load_config_file(path: str, arg: str | None = None) -> ml_collections.ConfigDict:
    """`get_config()` (or `get_config(arg)`) of the Python config file at `path`.

    Raises:
        FileNotFoundError: no such file. ValueError: the file defines no `get_config`.
    """
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file {path} does not exist")
    name = "_config_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    get_config = getattr(module, "get_config", None)
    if get_config is None:
        raise ValueError(f"config file {path} defines no get_config()")
    return get_config() if arg is None else get_config(arg)


def sibling_config(
    config_file: str, relative: str, arg: str | None = None
) -> ml_collections.ConfigDict:
    """Loads the config at `relative` to the folder of `config_file` (pass `__file__`)."""
    return load_config_file(
        os.path.join(os.path.dirname(os.path.abspath(config_file)), relative), arg
    )


def link_features_to_data(config: ml_collections.ConfigDict) -> None:
    """Stage 1 runs on the training dataset: `features.data.{root,format,min_core}` of a
    training config become references to `data.*`, so `--config.data.root=DIR` moves both
    (setting a `features.data` field sets the `data` one too)."""
    for name in ("root", "format", "min_core"):
        reference = config.data.get_ref(name)
        if config.features.data.get_ref(name) is not reference:  # not linked yet
            config.features.data[name] = reference


def backbone_and_variant(arg: str | None, default: str = "sasrec,kdsr") -> tuple[str, str]:
    """Parses a config-file argument "backbone,variant" (e.g. "sasrec,kdsr"), checked.

    Raises ValueError naming the bad part and the valid choices.
    """
    from corrkd_jax.models import BACKBONES  # light: flax modules only
    from corrkd_jax.variants import VARIANTS

    parts = [part.strip() for part in (arg or default).split(",")]
    if len(parts) != 2:
        raise ValueError(
            f"config argument {arg!r}: expected 'backbone,variant', e.g. 'sasrec,kdsr'"
        )
    backbone, variant = parts
    if backbone not in BACKBONES:
        raise ValueError(
            f"config argument {arg!r}: backbone {backbone!r} is not one of {sorted(BACKBONES)}"
        )
    if variant not in VARIANTS:
        raise ValueError(
            f"config argument {arg!r}: variant {variant!r} is not one of {sorted(VARIANTS)}"
        )
    return backbone, variant
