"""Helpers only the tests use: tiny datasets, configs and randomly initialised encoders."""

import os

import ml_collections

from corrkd_jax.paths import repo_root
from corrkd_jax.trainer.config_files import load_config_file


def default_config(**overrides) -> ml_collections.ConfigDict:
    """configs/default.py (the one source of defaults) with dotted overrides applied."""
    config = load_config_file(os.path.join(repo_root(), "configs", "default.py"))
    config.update_from_flattened_dict(overrides)
    return config
