"""Stage 1 end to end: item table -> per-view raw and reduced features (+ manifest).

`compute_features` computes in memory; `ensure_features` (what the trainer calls) loads the
files of `out_dir` when their manifest entry matches the view's config and input checksum and
otherwise computes and writes them, view by view.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Mapping
from typing import Any

import jax
import ml_collections
import numpy as np

from corrkd_jax.data import ItemTable, default_cache_dir
from corrkd_jax.data.dataset import resolve_root
from corrkd_jax.features import store
from corrkd_jax.features.encoders import Encoder, describe_params, load_encoder
from corrkd_jax.features.image import MISSING, encode_images, find_image_files
from corrkd_jax.features.items import file_checksum, text_checksum, view_texts
from corrkd_jax.features.pooling import IMAGE_POOLINGS, TEXT_POOLINGS
from corrkd_jax.features.reduce import REDUCE_METHODS, reduce_features
from corrkd_jax.features.sharding import local_mesh
from corrkd_jax.features.text import encode_texts
from corrkd_jax.io import library_versions

log = logging.getLogger(__name__)

_VIEW_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
# View keys left out of the fingerprint: moving the image folder does not change the
# features (the input checksum covers the image bytes).
_NOT_FINGERPRINTED = ("image_dir",)


@dataclasses.dataclass(frozen=True)
class ViewInputs:
    """What a view encodes, per item row (row 0 = padding, never encoded)."""

    kind: str  # "text" | "image"
    items: list[str | None]  # [N + 1] texts, or image paths; None/"" = no content
    checksum: str  # sha256 of the inputs in row order
    detail: dict[str, Any]  # manifest extras (field usage, image folder)


@dataclasses.dataclass(frozen=True)
class ViewResult:
    raw: np.ndarray  # float32 [N + 1, d_raw], row 0 zeros
    reduced: np.ndarray  # float32 [N + 1, d], row 0 zeros
    entry: dict[str, Any]  # the view's manifest entry


def validate_config(config: ml_collections.ConfigDict) -> None:
    """Raise ValueError naming the first bad field of a stage-1 config."""
    if not config.views:
        raise ValueError("features config: `views` is empty")
    for name, view in config.views.items():
        where = f"features config views.{name}"
        if not _VIEW_NAME.match(name):
            raise ValueError(f"{where}: view names may use letters, digits, '_' and '-'")
        if view.kind not in ("text", "image"):
            raise ValueError(f"{where}.kind must be 'text' or 'image', got {view.kind!r}")
        if not view.encoder:
            raise ValueError(f"{where}.encoder is empty")
        poolings = TEXT_POOLINGS if view.kind == "text" else IMAGE_POOLINGS
        if view.pooling not in poolings:
            raise ValueError(
                f"{where}.pooling must be one of {poolings} for a {view.kind} "
                f"view, got {view.pooling!r}"
            )
        if view.kind == "text" and not view.fields:
            raise ValueError(f"{where}.fields is empty")
        if view.kind == "image" and not view.image_dir:
            raise ValueError(f"{where}.image_dir is empty")
        if view.kind == "text" and int(view.max_length) < 1:
            raise ValueError(f"{where}.max_length must be >= 1")
    if config.reduce.method not in REDUCE_METHODS:
        raise ValueError(
            f"features config reduce.method must be one of {REDUCE_METHODS}, "
            f"got {config.reduce.method!r}"
        )
    if config.reduce.method != "none" and int(config.reduce.dim) < 1:
        raise ValueError("features config reduce.dim must be >= 1")
    if config.dtype not in ("float32", "bfloat16"):
        raise ValueError(f"features config dtype must be float32 or bfloat16, got {config.dtype!r}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, ml_collections.ConfigDict):
        value = value.to_dict()
    return json.loads(json.dumps(value, default=list, sort_keys=True))


def view_settings(config: ml_collections.ConfigDict, name: str) -> dict[str, Any]:
    """Everything that determines a view's numbers (its fingerprint is a hash of this)."""
    view = {k: v for k, v in _jsonable(config.views[name]).items() if k not in _NOT_FINGERPRINTED}
    return {
        "view": view,
        "reduce": _jsonable(config.reduce),
        "dtype": config.dtype,
        "format_version": store.FORMAT_VERSION,
    }


def fingerprint(settings: Mapping[str, Any]) -> str:
    """Short stable hash of JSON-able settings."""
    text = json.dumps(settings, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_out_dir(config: ml_collections.ConfigDict) -> str:
    """`<cache>/features/<dataset>/<name>-<hash>`: keyed by dataset and all view settings.

    <cache> is config.cache_dir, else the data layer's cache ($XDG_CACHE_HOME/corrkd_jax).
    """
    cache = config.cache_dir or str(default_cache_dir())
    dataset = re.sub(
        r"[^A-Za-z0-9_-]+", "-", os.path.basename(os.path.normpath(config.data.root))
    ).strip("-")
    key = fingerprint({name: view_settings(config, name) for name in sorted(config.views)})
    return os.path.join(
        cache, "features", dataset or "dataset", f"{config.name or 'features'}-{key[:12]}"
    )


def view_inputs(view: ml_collections.ConfigDict, items: ItemTable) -> ViewInputs:
    """Texts (first non-empty field) or image files of every item row, with a checksum."""
    if view.kind == "text":
        texts, source = view_texts(items, tuple(view.fields))
        usage = {f: int(np.sum(source == k)) for k, f in enumerate(view.fields)}
        return ViewInputs(
            "text",
            list(texts),
            text_checksum(texts),
            {"fields": list(view.fields), "field_usage": usage},
        )
    image_dir = str(resolve_root(view.image_dir))  # like data.root: cwd, else repo root
    paths = [None] + find_image_files(
        image_dir, range(1, items.num_items + 1), list(items.external_ids[1:])
    )
    return ViewInputs("image", paths, file_checksum(paths), {"image_dir": image_dir})


def _encode(
    view: ml_collections.ConfigDict,
    inputs: ViewInputs,
    encoder: Encoder,
    rows: list,
    config: ml_collections.ConfigDict,
    mesh: jax.sharding.Mesh,
    progress: bool,
    desc: str,
) -> tuple[np.ndarray, dict[int, str]]:
    """Encode the content rows -> (float32 [len(rows), d], failures {position: reason})."""
    content = [inputs.items[r] for r in rows]
    if inputs.kind == "text":
        out = encode_texts(
            content,
            encoder,
            pooling=view.pooling,
            normalize=view.normalize,
            max_length=int(view.max_length),
            batch_size=int(config.batch_size),
            length_buckets=tuple(config.length_buckets),
            mesh=mesh,
            progress=progress,
            desc=desc,
        )
        return out, {}
    return encode_images(
        content,
        encoder,
        pooling=view.pooling,
        normalize=view.normalize,
        batch_size=int(config.batch_size),
        mesh=mesh,
        progress=progress,
        desc=desc,
    )


def compute_view(
    config: ml_collections.ConfigDict,
    name: str,
    items: ItemTable,
    *,
    inputs: ViewInputs | None = None,
    encoder: Encoder | None = None,
    mesh: jax.sharding.Mesh | None = None,
    progress: bool = True,
) -> ViewResult:
    """Encode and reduce one view of `items` -> ViewResult (arrays [N + 1, .] + manifest entry).

    Items without content (no text in any field, missing or unreadable image) get zero rows
    in both arrays and are listed in the entry's `missing`.
    """
    view = config.views[name]
    inputs = inputs or view_inputs(view, items)
    start = time.perf_counter()
    encoder = encoder or load_encoder(view.encoder, view.kind, dtype=config.dtype)
    load_seconds = time.perf_counter() - start
    rows = [r for r in range(1, items.num_items + 1) if inputs.items[r]]
    reasons = {r: MISSING for r in range(1, items.num_items + 1) if not inputs.items[r]}
    if not rows:
        source = f"fields {list(view.fields)}" if view.kind == "text" else view.image_dir
        raise ValueError(f"view {name!r}: no item has any content ({source})")
    start = time.perf_counter()
    encoded, failures = _encode(
        view, inputs, encoder, rows, config, mesh or local_mesh(), progress, desc=name
    )
    encode_seconds = time.perf_counter() - start
    reasons.update({rows[i]: reason for i, reason in failures.items()})
    raw = np.zeros((items.num_items + 1, encoded.shape[1]), np.float32)
    raw[rows] = encoded
    raw[sorted(reasons)] = 0.0
    red = config.reduce
    reduced, reduction = reduce_features(
        raw,
        red.method,
        int(red.dim),
        epochs=int(red.epochs),
        lr=float(red.lr),
        batch_size=int(red.batch_size),
        seed=int(red.seed),
    )
    settings = view_settings(config, name)
    missing = [
        {"item_id": r, "external_id": str(items.external_ids[r]), "reason": reasons[r]}
        for r in sorted(reasons)
    ]
    entry = {
        "kind": view.kind,
        "encoder": view.encoder,
        "encoder_path": encoder.path,
        "model_type": encoder.model_type,
        "causal": encoder.causal,
        **describe_params(encoder.params),
        "pooling": view.pooling,
        "normalize": bool(view.normalize),
        **inputs.detail,
        "num_items": items.num_items,
        "input_checksum": inputs.checksum,
        "fingerprint": fingerprint(settings),
        "settings": settings,
        "raw_dim": int(raw.shape[1]),
        "reduced_dim": int(reduced.shape[1]),
        "files": {"raw": f"{name}.npy", "reduced": f"{name}.reduced.npy"},
        "num_missing": len(missing),
        "missing": missing,
        "load_seconds": load_seconds,
        "encode_seconds": encode_seconds,
        "items_per_second": len(rows) / max(encode_seconds, 1e-9),
        "reduction": reduction,
        "versions": library_versions(),
        "devices": [str(d) for d in jax.local_devices()],
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    return ViewResult(raw=raw, reduced=reduced, entry=entry)


class _Encoders:
    """Loads each (spec, kind) once per stage-1 call; views sharing an encoder also share
    its compiled forward passes."""

    def __init__(self, dtype: str) -> None:
        self._dtype = dtype
        self._loaded: dict[tuple[str, str], Encoder] = {}

    def get(self, view: ml_collections.ConfigDict) -> tuple[Encoder, float]:
        """(encoder, seconds spent loading it now: 0 when already loaded)."""
        key = (view.encoder, view.kind)
        start = time.perf_counter()
        if key not in self._loaded:
            self._loaded[key] = load_encoder(view.encoder, view.kind, dtype=self._dtype)
        return self._loaded[key], time.perf_counter() - start

    def compute(
        self, config: ml_collections.ConfigDict, name: str, items: ItemTable, **kwargs: Any
    ) -> ViewResult:
        """compute_view with the shared encoder; the entry records the load time."""
        encoder, seconds = self.get(config.views[name])
        result = compute_view(config, name, items, encoder=encoder, **kwargs)
        result.entry["load_seconds"] = seconds
        return result


def compute_features(
    config: ml_collections.ConfigDict,
    items: ItemTable,
    *,
    mesh: jax.sharding.Mesh | None = None,
    progress: bool = True,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """All views in memory -> {view: (raw float32 [N + 1, d_raw], reduced float32 [N + 1, d])}.

    Nothing is read from or written to disk.
    """
    validate_config(config)
    mesh = mesh or local_mesh()
    encoders = _Encoders(config.dtype)
    results = {}
    for name in config.views:
        result = encoders.compute(config, name, items, mesh=mesh, progress=progress)
        results[name] = (result.raw, result.reduced)
    return results


def _is_fresh(
    entry: Mapping[str, Any] | None,
    settings: Mapping[str, Any],
    checksum: str,
    num_items: int,
    out_dir: str,
    name: str,
) -> bool:
    if not entry:
        return False
    if (
        entry.get("fingerprint") != fingerprint(settings)
        or entry.get("input_checksum") != checksum
        or entry.get("num_items") != num_items
    ):
        return False
    rows = num_items + 1
    return store.array_shape(store.raw_path(out_dir, name)) == (
        rows,
        entry.get("raw_dim"),
    ) and store.array_shape(store.reduced_path(out_dir, name)) == (rows, entry.get("reduced_dim"))


def ensure_features(
    config: ml_collections.ConfigDict,
    items: ItemTable,
    out_dir: str | None = None,
    *,
    force: bool = False,
    mesh: jax.sharding.Mesh | None = None,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """{view: reduced float32 [N + 1, d]} for every view of `config`, rows = item ids.

    out_dir: default config.out_dir, else `default_out_dir(config)`. A view is loaded from
    disk when its manifest entry has the same settings fingerprint, input checksum and item
    count and both files have the recorded shapes; otherwise (or with `force`) it is computed
    and written (arrays first, then the manifest). Entries of other views are kept.
    """
    validate_config(config)
    out_dir = out_dir or config.out_dir or default_out_dir(config)
    manifest = store.load_manifest(out_dir) or {"format_version": store.FORMAT_VERSION, "views": {}}
    encoders = _Encoders(config.dtype)
    mesh = mesh or local_mesh()
    reduced: dict[str, np.ndarray] = {}
    for name, view in config.views.items():
        inputs = view_inputs(view, items)
        settings = view_settings(config, name)
        if not force and _is_fresh(
            manifest["views"].get(name), settings, inputs.checksum, items.num_items, out_dir, name
        ):
            loaded = store.load_array(store.reduced_path(out_dir, name))
            if np.isfinite(loaded).all():
                log.info("features %s: up to date in %s", name, out_dir)
                reduced[name] = loaded
                continue
            # A damaged cache file (NaN/Inf rows) is never used: recompute it.
            log.warning(
                "features %s: %s has NaN/Inf values; recomputing it",
                name,
                store.reduced_path(out_dir, name),
            )
        log.info("features %s: computing into %s", name, out_dir)
        result = encoders.compute(config, name, items, inputs=inputs, mesh=mesh, progress=progress)
        store.save_array(store.raw_path(out_dir, name), result.raw)
        store.save_array(store.reduced_path(out_dir, name), result.reduced)
        manifest["views"][name] = result.entry
        manifest["num_items"] = items.num_items
        store.save_manifest(out_dir, manifest)
        reduced[name] = result.reduced
    return reduced
