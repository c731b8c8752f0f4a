"""The files of a run directory besides checkpoints and logs, and the checks on them.

`config.json` (the run's config: a workdir belongs to one experiment), `dataset.json` (sizes
that must not change while the workdir is in use), `results.json` and `curves.png`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import jax
import ml_collections

from corrkd_jax.data import InteractionData
from corrkd_jax.io import library_versions, write_json
from corrkd_jax.trainer.migrate import migrate_config

CONFIG_FILE = "config.json"
DATASET_FILE = "dataset.json"
RESULTS_FILE = "results.json"
CURVES_FILE = "curves.png"
RESULTS_TABLE_FILE = "results.md"
# int32 [test cases]: each test case's target rank at the best validation epoch (paired tests)
TEST_RANKS_FILE = "test_ranks.npy"
# Fields that may change between a run and its resumption (they do not change the numbers).
RESUMABLE_CHANGES = (
    "num_epochs",
    "eval.patience",
    "checkpoint",
    "log_every_steps",
    "progress",
    "data.num_threads",
    "data.prefetch",
    "features.progress",
    # speed settings that leave the results unchanged (benchmarks/perf)
    "kd.pack_pairs",
    "kd.pair_growth",
    "kd.pair_chunk",
    "eval.item_chunk",
    # per-epoch extras: logged, never used for selection
    "eval.per_epoch",
)


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
        old, new = _flatten(migrate_config(saved)), _flatten(current)
        differ = sorted(
            key
            for key in set(old) | set(new)
            if old.get(key) != new.get(key)
            and not any(key == f or key.startswith(f + ".") for f in RESUMABLE_CHANGES)
        )
        if differ:
            details = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in differ[:10])
            raise ValueError(
                f"{path} was written by a different config ({details}); use a new "
                f"--workdir for a different experiment"
            )
    if jax.process_index() == 0:
        write_json(path, current)


def dataset_summary(data: InteractionData) -> dict[str, Any]:
    """Sizes that must not change while a run directory is in use (ids index the tables)."""
    return {
        "name": data.name,
        "num_users": len(data.sequences),
        "num_items": int(data.items.num_items),
        "num_interactions": int(sum(len(s) for s in data.sequences)),
    }


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
            raise ValueError(
                f"the dataset changed since {workdir} was trained: {saved} then, "
                f"{current} now; use a new --workdir"
            )
    elif jax.process_index() == 0:
        write_json(path, current)


def run_versions() -> dict[str, str]:
    """`corrkd_jax.io.library_versions()` plus the devices and processes of this run."""
    return {
        **library_versions(),
        "devices": f"{jax.device_count()} x {jax.devices()[0].device_kind}",
        "processes": str(jax.process_count()),
    }


def results_table(results: Mapping[str, Any]) -> str:
    """Markdown table of a run's validation and test metrics (in %), from results.json."""
    names = list(results["test"])
    config = results["config"]
    lines = [
        f"{config['data']['root']}: {config['model']['backbone']} / "
        f"{config['model']['variant']}, seed {config['seed']}, best epoch "
        f"{results['best_epoch'] + 1} of {results['epochs_trained']} (selected on "
        f"valid {config['eval']['metric']}; test scored once there)",
        "",
        "| split | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for split in ("valid", "test"):
        lines.append(
            f"| {split} | "
            + " | ".join(f"{100 * results[split][name]:.2f}" for name in names)
            + " |"
        )
    return "\n".join(lines) + "\n"
