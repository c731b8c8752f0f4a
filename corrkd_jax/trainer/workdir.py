"""The files of a run directory besides checkpoints and logs, and the checks on them.

`config.json` (the run's config: a workdir belongs to one experiment), `dataset.json` (sizes
that must not change while the workdir is in use), `results.json` and `curves.png`.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping
from importlib import metadata
from typing import Any

import jax
import ml_collections
import numpy as np

from corrkd_jax.data import InteractionData

CONFIG_FILE = "config.json"
DATASET_FILE = "dataset.json"
RESULTS_FILE = "results.json"
CURVES_FILE = "curves.png"
RESULTS_TABLE_FILE = "results.md"
# int32 [test cases]: each test case's target rank at the best validation epoch (paired tests)
TEST_RANKS_FILE = "test_ranks.npy"
# Fields that may change between a run and its resumption (they do not change the numbers).
RESUMABLE_CHANGES = ("num_epochs", "eval.patience", "checkpoint", "log_every_steps", "progress",
                     "data.num_threads", "data.prefetch", "features.progress",
                     # speed settings that leave the results unchanged (benchmarks/perf)
                     "kd.pack_pairs", "kd.pair_growth", "kd.pair_chunk", "eval.item_chunk",
                     # extra test scoring that is logged but never used for selection
                     "eval.test_every_epoch")
# Fields added after runs existed: a saved config without them ran with these values.
ADDED_FIELDS = {"kd.pair_dtype": "float32", "num_negatives": 0,
                "model.session_graph.attention_dropout": 0.0,
                # The backbone options of issue 14, at the behaviour before they existed.
                "data.train_on": "prefixes", "model.sasrec.norm": "pre",
                "model.sasrec.layer_norm_eps": 1e-6, "model.sasrec.ffn_ratio": 1,
                "model.sasrec.activation": "gelu_tanh", "model.sasrec.init_std": 0.0,
                "model.sasrec.broadcast_attention_dropout": True,
                "model.sasrec.positions": "from_end", "model.gru4rec.output_proj": False}


def json_config(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """The config as plain JSON data (references resolved, tuples as lists)."""
    return json.loads(config.to_json_best_effort(sort_keys=True))


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def write_json(path: str, payload: Any) -> None:
    """Writes JSON atomically (temp file + os.replace)."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


def atomic_save_npy(path: str, array: Any) -> None:
    """Saves a .npy file atomically (temp file + os.replace)."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        np.save(f, np.asarray(array))
    os.replace(tmp, path)


def check_or_write_config(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Writes `workdir/config.json`, or checks it against `config` when resuming.

    Raises ValueError listing the fields that differ (other than `RESUMABLE_CHANGES`): a
    workdir belongs to one experiment. The file is rewritten with the current values.
    """
    path = os.path.join(workdir, CONFIG_FILE)
    current = json_config(config)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
        old, new = _flatten(saved), _flatten(current)
        differ = sorted(
                key for key in set(old) | set(new)
                if old.get(key, ADDED_FIELDS.get(key)) != new.get(key)
                and not any(key == f or key.startswith(f + ".") for f in RESUMABLE_CHANGES))
        if differ:
            details = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in differ[:10])
            raise ValueError(f"{path} was written by a different config ({details}); use a new "
                             f"--workdir for a different experiment")
    if jax.process_index() == 0:
        write_json(path, current)


def dataset_summary(data: InteractionData) -> dict[str, Any]:
    """Sizes that must not change while a run directory is in use (ids index the tables)."""
    return {"name": data.name, "num_users": len(data.sequences),
            "num_items": int(data.items.num_items),
            "num_interactions": int(sum(len(s) for s in data.sequences))}


def check_or_write_dataset(data: InteractionData, workdir: str) -> None:
    """Writes `workdir/dataset.json`, or checks that the dataset still has the same sizes.

    Raises ValueError when the dataset changed since the run started (its checkpoints index
    items by id, so they would not fit or, worse, mean other items).
    """
    path = os.path.join(workdir, DATASET_FILE)
    current = dataset_summary(data)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
        if saved != current:
            raise ValueError(f"the dataset changed since {workdir} was trained: {saved} then, "
                             f"{current} now; use a new --workdir")
    elif jax.process_index() == 0:
        write_json(path, current)


def library_versions() -> dict[str, str]:
    """Versions of Python, the platform and the libraries the numbers depend on."""
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain", "numpy",
                    "transformers", "ml-collections"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    versions["devices"] = f"{jax.device_count()} x {jax.devices()[0].device_kind}"
    versions["processes"] = str(jax.process_count())
    return versions


def results_table(results: Mapping[str, Any]) -> str:
    """Markdown table of a run's validation and test metrics (in %), from results.json."""
    names = list(results["test"])
    config = results["config"]
    lines = [f"{config['data']['root']}: {config['model']['backbone']} / "
             f"{config['model']['variant']}, seed {config['seed']}, best epoch "
             f"{results['best_epoch'] + 1} of {results['epochs_trained']} (selected on "
             f"valid {config['eval']['metric']}; test scored once there)", "",
             "| split | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for split in ("valid", "test"):
        lines.append(f"| {split} | " + " | ".join(
                f"{100 * results[split][name]:.2f}" for name in names) + " |")
    return "\n".join(lines) + "\n"
