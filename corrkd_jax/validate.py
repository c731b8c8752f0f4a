"""Up-front checks of a training run: config, data, features and run directory agree.

`prepare_run(config, workdir)` is what `train_and_evaluate` calls first. It checks every
config field the run reads, loads the dataset (readers name the file and line of bad input),
fits the views to the item table (`own_data.resolve_views`), checks that every view's fields
exist and have text, that the split has cases, and that a run directory holding checkpoints
belongs to this config and this dataset (content fingerprint) -- all BEFORE stage 1 runs and
before anything is written to the run directory, so a refused run leaves nothing behind and
the corrected command works in the same directory. `claim_workdir` then writes `config.json`
and `dataset.json`. Problems raise `ConfigError` (naming the field), `DataFormatError` (file
and line) or `WorkdirError`; the CLIs print them as one line (`corrkd_jax.cli`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from collections.abc import Iterator
from typing import Any

import ml_collections
import numpy as np

from corrkd_jax.data import InteractionData
from corrkd_jax.errors import ConfigError, WorkdirError
from corrkd_jax.fingerprint import dataset_fingerprint

CHECKPOINT_DIRS = ("checkpoints/latest", "checkpoints/best")


@contextlib.contextmanager
def field(name: str) -> Iterator[None]:
    """Turns a ValueError/TypeError of an existing check into a ConfigError naming `name`."""
    try:
        yield
    except ConfigError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        text = str(err).strip("'\"")
        raise ConfigError(name, text) from None


def _number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    integer: bool = False,
    strict: bool = False,
) -> None:
    """`value` is a finite number (an int when `integer`) within the bounds."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
        raise ConfigError(name, f"{value!r} must be a finite {'integer' if integer else 'number'}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise ConfigError(name, f"{value!r} must be {'>' if strict else '>='} {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(name, f"{value!r} must be <= {maximum}")


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(name, f"{value!r} is not one of {list(choices)}")


def _normalize_views(config: ml_collections.ConfigDict) -> None:
    """`--config.model.views=title,attr` arrives as ('title,attr',): split such entries."""
    views = config.model.views
    if isinstance(views, str):
        views = (views,)
    split = tuple(part.strip() for view in views for part in str(view).split(",") if part.strip())
    if tuple(views) != split:
        config.model.views = split


def check_config(config: ml_collections.ConfigDict) -> None:
    """Every field a training run reads has a usable value; fields agree with each other.

    Raises ConfigError naming the (first) field at fault. Reads no data, writes nothing.
    """
    from corrkd_jax.data.pipeline import check_buckets
    from corrkd_jax.data.readers import FORMATS
    from corrkd_jax.data.splits import PROTOCOLS, TRAIN_ON
    from corrkd_jax.models import build_model
    from corrkd_jax.optim import ASYNC_SCHEDULES
    from corrkd_jax.trainer import setup
    from corrkd_jax.trainer.evaluators import NAMES as EVALUATORS
    from corrkd_jax.trainer.steps import loss_weights
    from corrkd_jax.variants import get_variant

    with field(""):
        setup.check_config(config)
    with field("model.variant"):
        variant = get_variant(config.model.variant)
    for name in (
        "seed",
        "batch_size",
        "eval_batch_size",
        "num_epochs",
        "log_every_steps",
        "num_negatives",
    ):
        _number(
            name, config[name], integer=True, minimum=0 if name in ("seed", "num_negatives") else 1
        )
    data = config.data
    _choice("data.format", data.format, ("auto", "synthetic", *FORMATS))
    _choice("data.protocol", data.protocol, PROTOCOLS)
    _choice("data.train_on", data.train_on, TRAIN_ON)
    if not isinstance(data.root, str) or not data.root:
        raise ConfigError("data.root", "is empty: give a dataset folder or builtin:synthetic")
    _number("data.max_len", data.max_len, integer=True, minimum=1)
    _number("data.min_core", data.min_core, integer=True, minimum=0)
    _number("data.num_threads", data.num_threads, integer=True, minimum=0)
    _number("data.prefetch", data.prefetch, integer=True, minimum=0)
    for name in ("valid_fraction", "test_fraction"):
        _number(f"data.{name}", data[name], minimum=0.0)
        if data[name] >= 1:
            raise ConfigError(f"data.{name}", f"{data[name]!r} must be below 1")
    with field("data.length_buckets"):
        check_buckets(tuple(int(b) for b in data.length_buckets), int(data.max_len))

    _normalize_views(config)
    model, kd = config.model, config.kd
    _number("model.dim", model.dim, integer=True, minimum=1)
    views = tuple(model.views) if variant.use_views else ()
    # The model's own checks (backbone, widths, heads, dropout, sasrec options, corr_kind,
    # tau, num_codes, pair options), on placeholder features of the right shape.
    with field("model"):
        build_model(config, 2, {view: np.zeros((3, int(model.dim)), np.float32) for view in views})
    _number("kd.num_chunks", kd.num_chunks, integer=True, minimum=1)
    if variant.distills:
        if int(model.dim) % int(kd.num_chunks):
            raise ConfigError(
                "kd.num_chunks",
                f"model.dim={model.dim} is not divisible by "
                f"kd.num_chunks={kd.num_chunks} (each feature vector is cut "
                f"into num_chunks equal chunks)",
            )
        _number("kd.num_pairs", kd.num_pairs, integer=True, minimum=1)
        _number("kd.kmeans_iters", kd.kmeans_iters, integer=True, minimum=1)
        for name in ("lambda_hol", "lambda_code"):
            values = kd[name] if isinstance(kd[name], ml_collections.ConfigDict) else {"": kd[name]}
            for key, value in dict(values).items():
                _number(f"kd.{name}" + (f".{key}" if key else ""), value, minimum=0.0)
        with field("kd.lambda_hol"):
            loss_weights(kd, views, holistic=variant.holistic, codes=variant.codes)
    _number("kd.pair_growth", kd.pair_growth, minimum=1.0, strict=True)

    optim = config.optim
    _number("optim.lr", optim.lr, minimum=0.0)
    _number("optim.weight_decay", optim.weight_decay, minimum=0.0)
    _number("optim.lr_decay_epochs", optim.lr_decay_epochs, integer=True, minimum=0)
    _number("optim.lr_decay_rate", optim.lr_decay_rate, minimum=0.0)
    _choice("optim.async_schedule", optim.async_schedule, ASYNC_SCHEDULES)
    _number("optim.async_gamma", optim.async_gamma, minimum=0.0, strict=True)
    _number("optim.freeze_epochs", optim.freeze_epochs, integer=True, minimum=0)
    with field("optim.table_regex"):
        re.compile(optim.table_regex)

    ev = config.eval
    _number("eval.patience", ev.patience, integer=True, minimum=1)
    for k in ev.ks:
        _number("eval.ks", k, integer=True, minimum=1)
    _number("eval.item_chunk", ev.item_chunk, integer=True, minimum=0)
    if not isinstance(ev.exclude_history, bool):
        raise ConfigError("eval.exclude_history", f"{ev.exclude_history!r} must be True or False")
    for name in ev.per_epoch:
        _choice("eval.per_epoch", name, EVALUATORS)
    _number("checkpoint.every_steps", config.checkpoint.every_steps, integer=True, minimum=0)
    _number(
        "checkpoint.max_steps_per_run", config.checkpoint.max_steps_per_run, integer=True, minimum=0
    )
    if variant.use_views:
        check_features_config(config)


def check_features_config(config: ml_collections.ConfigDict) -> None:
    """The stage-1 part of a training config agrees with the model (views, width, dataset)."""
    from corrkd_jax.features.stage import validate_config
    from corrkd_jax.trainer import setup

    features = config.features
    missing = [view for view in config.model.views if view not in features.views]
    if missing:
        raise ConfigError(
            "model.views",
            f"{missing} are not views of config.features (it has {sorted(features.views)})",
        )
    with field("features"):
        validate_config(features)
    if features.reduce.method != "none" and int(features.reduce.dim) != int(config.model.dim):
        raise ConfigError(
            "features.reduce.dim",
            f"{features.reduce.dim} differs from "
            f"model.dim={config.model.dim}: the view tables are initialised "
            f"from the reduced features",
        )
    with field("features.data.root"):
        setup.features_config(config)


def check_features(config: ml_collections.ConfigDict, data: InteractionData) -> None:
    """Every used view's inputs exist for this item table (see `check_view_inputs`)."""
    from corrkd_jax.variants import get_variant

    if get_variant(config.model.variant).use_views:
        check_view_inputs(
            config.features.views,
            tuple(config.model.views),
            data.items,
            prefix="features.views",
            root=config.data.root,
        )


def check_view_inputs(
    views: ml_collections.ConfigDict, names: tuple[str, ...], items: Any, *, prefix: str, root: str
) -> None:
    """All views checked before any is encoded: text fields present with some text, image
    folders present, local encoder folders holding a model. `prefix` names the views'
    section in error messages ("features.views" in training configs, "views" in stage 1)."""
    from corrkd_jax.data.dataset import resolve_root
    from corrkd_jax.features.encoders import resolve_encoder_path

    for view in names:
        spec = views[view]
        where = f"{prefix}.{view}"
        if spec.kind == "text":
            unknown = [f for f in spec.fields if f not in items.fields]
            if unknown:
                raise ConfigError(
                    f"{where}.fields",
                    f"the item table of {root} has no field "
                    f"{unknown}; its fields: {sorted(items.fields)}",
                )
            if not any(str(text).strip() for f in spec.fields for text in items.fields[f][1:]):
                raise ConfigError(f"{where}.fields", f"no item has any text in {list(spec.fields)}")
        elif not os.path.isdir(resolve_root(spec.image_dir)):
            raise ConfigError(f"{where}.image_dir", f"{spec.image_dir!r} is not a folder")
        with field(f"{where}.encoder"):
            path = resolve_encoder_path(spec.encoder)
        looks_local = spec.encoder.startswith((".", "/", "~")) or os.path.isabs(path)
        if looks_local and not os.path.isfile(os.path.join(path, "config.json")):
            raise ConfigError(
                f"{where}.encoder",
                f"{spec.encoder!r} is not a model folder (no config.json in {path})",
            )


def check_split(config: ml_collections.ConfigDict, data: InteractionData) -> None:
    """The split has cases in every part; sampled negatives fit the catalogue."""
    from corrkd_jax.trainer import setup

    with field("data.protocol"):
        setup.split_data(config, data)
    if int(config.num_negatives) >= data.num_items:
        raise ConfigError(
            "num_negatives",
            f"{config.num_negatives} must be below the number "
            f"of items ({data.num_items}); 0 = full softmax",
        )


# ----------------------------------------------------------------------------- run directory


def has_checkpoint(workdir: str) -> bool:
    """True when `workdir` holds a saved checkpoint step (latest or best)."""
    for sub in CHECKPOINT_DIRS:
        folder = os.path.join(workdir, sub)
        if os.path.isdir(folder) and any(name.isdigit() for name in os.listdir(folder)):
            return True
    return False


def dataset_record(data: InteractionData) -> dict[str, Any]:
    """What `dataset.json` holds: the sizes and the content fingerprint."""
    from corrkd_jax.trainer.workdir import dataset_summary

    return {**dataset_summary(data), "fingerprint": dataset_fingerprint(data)}


def check_dataset_record(workdir: str, data: InteractionData) -> dict[str, Any] | None:
    """Compares `workdir/dataset.json` with `data`; returns the saved record (None if absent).

    Raises WorkdirError when sizes or content differ (a record written before fingerprints
    existed is compared on its sizes).
    """
    from corrkd_jax.trainer.workdir import DATASET_FILE

    path = os.path.join(workdir, DATASET_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
    except (OSError, ValueError) as err:
        raise WorkdirError(f"{path} is unreadable ({err}); use a new --workdir") from None
    current = dataset_record(data)
    sizes = {key: value for key, value in saved.items() if key != "fingerprint"}
    changed = [key for key in sizes if sizes[key] != current.get(key)]
    if "fingerprint" in saved and saved["fingerprint"] != current["fingerprint"]:
        changed.append("content")
    if changed:
        then = ", ".join(f"{key} {sizes[key]}" for key in changed if key in sizes)
        now = ", ".join(f"{key} {current[key]}" for key in changed if key in sizes)
        detail = f" ({then} then, {now} now)" if then else " (same sizes, other content)"
        raise WorkdirError(
            f"the dataset {data.name!r} changed since {workdir} was trained: "
            f"{', '.join(changed)} differ{detail}; its checkpoints index the old "
            f"items: use a new --workdir"
        )
    return saved


def check_workdir(config: ml_collections.ConfigDict, data: InteractionData, workdir: str) -> None:
    """A run directory with checkpoints must belong to this config and dataset. Read only."""
    from corrkd_jax.trainer.workdir import CONFIG_FILE, DATASET_FILE, check_or_write_config

    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise WorkdirError(f"--workdir {workdir} exists and is not a folder")
    if not has_checkpoint(workdir):
        return  # nothing to resume: a changed config or dataset simply starts afresh
    for name in (CONFIG_FILE, DATASET_FILE):
        if not os.path.isfile(os.path.join(workdir, name)):
            raise WorkdirError(
                f"{workdir} holds checkpoints but no {name}: cannot tell which "
                f"{'config' if name == CONFIG_FILE else 'dataset'} trained them; use a "
                f"new --workdir (or delete {os.path.join(workdir, 'checkpoints')} to start "
                f"over here)"
            )
    check_dataset_record(workdir, data)
    try:
        # Compares with the saved config (only resumable fields may differ); it writes
        # config.json only when they agree, i.e. nothing that matters changes on disk.
        check_or_write_config(as_saved(config, workdir), workdir)
    except ValueError as err:
        raise WorkdirError(str(err)) from None


def _detected(root: str, format: str) -> str:
    """The concrete format "auto" stands for (or `format` itself)."""
    from corrkd_jax.data import readers
    from corrkd_jax.data.dataset import BUILTIN_SYNTHETIC, resolve_root
    from corrkd_jax.paths import resolve_path

    if format != "auto":
        return format
    if root == BUILTIN_SYNTHETIC:
        return "synthetic"
    try:
        return readers.detect_format(resolve_root(resolve_path(root)))
    except ValueError:
        return format


def as_saved(config: ml_collections.ConfigDict, workdir: str) -> ml_collections.ConfigDict:
    """`config` as the run directory's config.json spells equivalent values: `data.format`
    "auto" where the run saved the format it detects (configs used to name it)."""
    from corrkd_jax.trainer.workdir import CONFIG_FILE

    try:
        with open(os.path.join(workdir, CONFIG_FILE), encoding="utf-8") as f:
            saved = json.load(f)
        formats = {
            "data": saved["data"]["format"],
            "features": saved.get("features", {}).get("data", {}).get("format"),
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return config
    copy = None
    for section, old in formats.items():
        node = config.data if section == "data" else config.features.data
        if (
            old is None
            or old == node.format
            or _detected(node.root, node.format) != _detected(node.root, old)
        ):
            continue
        copy = copy or ml_collections.ConfigDict(config.to_dict())  # references resolved
        (copy.data if section == "data" else copy.features.data).format = old
    return copy or config


def claim_workdir(config: ml_collections.ConfigDict, data: InteractionData, workdir: str) -> None:
    """Writes `config.json` and `dataset.json` (after `prepare_run`; primary process only).

    A run directory without checkpoints takes the new config and dataset whatever files an
    earlier, refused or failed, attempt left there.
    """
    import jax

    from corrkd_jax.trainer.workdir import (
        CONFIG_FILE,
        DATASET_FILE,
        check_or_write_config,
        json_config,
        write_json,
    )

    os.makedirs(workdir, exist_ok=True)
    resuming = has_checkpoint(workdir)
    if resuming:
        check_workdir(config, data, workdir)
    if jax.process_index() != 0:
        return
    if not resuming:
        write_json(os.path.join(workdir, CONFIG_FILE), json_config(config))
    else:
        check_or_write_config(as_saved(config, workdir), workdir)
    write_json(os.path.join(workdir, DATASET_FILE), dataset_record(data))


def prepare_run(config: ml_collections.ConfigDict, workdir: str) -> InteractionData:
    """All checks of a training run, before stage 1 and before writing to `workdir`.

    May adjust `config` in place: `model.views` written as "a,b" is split, and the views are
    fitted to the item table's text fields (`own_data.resolve_views`). Returns the dataset.
    """
    from corrkd_jax import own_data
    from corrkd_jax.trainer import setup
    from corrkd_jax.trainer.sharding import check_batch_size

    check_config(config)
    with field("batch_size"):
        check_batch_size(int(config.batch_size))
    with field("eval_batch_size"):
        check_batch_size(int(config.eval_batch_size), "eval_batch_size")
    with field("data.root"):
        if not str(config.data.root).startswith("builtin:") and config.data.format != "synthetic":
            root = setup.resolve_path(config.data.root)
            if not os.path.isdir(root):
                raise ConfigError(
                    "data.root", f"{config.data.root!r} is not a folder (resolved to {root})"
                )
    data = setup.load_data(config)
    if own_data.resolve_views(config, data.items):
        check_config(config)  # the views changed: check them again
    check_features(config, data)
    check_split(config, data)
    own_data.choose_features_dir(config, data.items)
    check_workdir(config, data, os.path.abspath(workdir))
    return data


def nan_advice(
    config: ml_collections.ConfigDict, workdir: str, term: str, last_checkpoint: int | None
) -> str:
    """How to continue after a non-finite loss, as one sentence with the exact flags."""
    lr = float(config.optim.lr)
    flags = f"--config.optim.lr={lr / 10:g}"
    if term.startswith(("loss/hol", "loss/code")):
        weight = "lambda_hol" if term.startswith("loss/hol") else "lambda_code"
        flags += f" (or a lower --config.kd.{weight})"
    if last_checkpoint is None:
        return (
            f"To continue, rerun the same command with {flags}: {workdir} has no "
            f"checkpoint yet, so it takes the changed config."
        )
    return (
        f"To continue, rerun with {flags} and a new --workdir (e.g. {workdir}-lr{lr / 10:g}):"
        f" {workdir} holds checkpoints of this config, which a changed config may not "
        f"resume, and rerunning the same config repeats the same numbers."
    )
