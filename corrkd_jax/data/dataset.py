"""`load_dataset`: a dataset folder (or the built-in synthetic shop) -> InteractionData, cached.

The processed data is cached under `<cache_dir>/<name>-<key>/` (`arrays.npz` + `meta.json`),
where `key` hashes the preprocessing settings, the data-layer source code and the input files'
paths, sizes and modification times; a second load with the same key reads the cache and
skips parsing. Entries are written to a temporary folder and renamed into place
(`os.replace`), so a crash never leaves a half-written entry.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from corrkd_jax.data import preprocess as preprocess_lib
from corrkd_jax.data import readers, synthetic
from corrkd_jax.data.structures import InteractionData, ItemTable
from corrkd_jax.paths import resolve_path

BUILTIN_SYNTHETIC = "builtin:synthetic"
CACHE_VERSION = 1  # bump when the on-disk layout changes
_SOURCES = (
    "raw.py",
    "read_s3rec.py",
    "read_recbole.py",
    "read_amazon.py",
    "readers.py",
    "preprocess.py",
    "synthetic.py",
    "dataset.py",
)


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/corrkd_jax, or ~/.cache/corrkd_jax."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "corrkd_jax"


def resolve_root(root: str | os.PathLike) -> Path:
    """A dataset folder path by the project's path rule (`corrkd_jax.paths.resolve_path`)."""
    return Path(resolve_path(root))


def _code_fingerprint() -> str:
    """Hash of the data layer's source, so a code change invalidates old cache entries."""
    digest = hashlib.sha256()
    for name in _SOURCES:
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()


def cache_key(root: str | os.PathLike, format: str = "auto", min_core: int = 0) -> tuple[str, dict]:
    """(entry name, the settings it hashes) for a dataset, without parsing it."""
    settings: dict = {"version": CACHE_VERSION, "code": _code_fingerprint(), "min_core": min_core}
    if _is_builtin(root, format):
        name = "synthetic"
        settings.update(format="synthetic", config=dataclasses.asdict(synthetic.SyntheticConfig()))
    else:
        path = resolve_root(root)
        format = readers.detect_format(path) if format == "auto" else format
        files = readers.input_files(path, format)
        name = path.name
        settings.update(
            format=format,
            root=str(path),
            files=[[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files],
        )
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    return f"{name}-{digest}", settings


def _is_builtin(root: str | os.PathLike, format: str) -> bool:
    if str(root).startswith("builtin:"):
        if str(root) != BUILTIN_SYNTHETIC:
            raise ValueError(f"unknown built-in dataset {root!r}; expected {BUILTIN_SYNTHETIC!r}")
        return True
    return format == "synthetic"


def _save(data: InteractionData, entry: Path, settings: dict) -> None:
    """Writes the entry atomically: temp folder beside it, then os.replace."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.tmp-", dir=entry.parent))
    try:
        lengths = np.asarray([len(s) for s in data.sequences], dtype=np.int64)
        items = np.concatenate(data.sequences).astype(np.int32)
        np.savez(tmp / "arrays.npz", items=items, lengths=lengths)
        meta = {
            "name": data.name,
            "user_ids": [str(u) for u in data.user_ids],
            "external_ids": [str(e) for e in data.items.external_ids],
            "source_ids": [str(e) for e in data.items.source_ids],
            "fields": {k: [str(x) for x in v] for k, v in data.items.fields.items()},
            "settings": settings,
        }
        with open(tmp / "meta.json", "w", encoding="utf-8") as f:
            json.dump(meta, f)
        try:
            os.replace(tmp, entry)
        except OSError:
            if not entry.is_dir():  # a concurrent writer may have won the race: fine
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _load(entry: Path) -> InteractionData:
    """Reads a cache entry written by `_save`."""
    with np.load(entry / "arrays.npz") as arrays:
        items, lengths = arrays["items"], arrays["lengths"]
    with open(entry / "meta.json", encoding="utf-8") as f:
        meta = json.load(f)
    num_items = len(meta["external_ids"]) - 1
    if int(lengths.sum()) != len(items) or (
        len(items) and not 1 <= items.min() <= items.max() <= num_items
    ):
        raise ValueError("arrays.npz does not match meta.json")

    def strings(values: list[str]) -> np.ndarray:
        return np.asarray(values, dtype=object)

    table = ItemTable(
        external_ids=strings(meta["external_ids"]),
        fields={k: strings(v) for k, v in meta["fields"].items()},
        num_items=len(meta["external_ids"]) - 1,
        source_ids=strings(meta["source_ids"]),
    )
    return InteractionData(
        name=meta["name"],
        sequences=list(np.split(items, np.cumsum(lengths)[:-1])),
        user_ids=strings(meta["user_ids"]),
        items=table,
    )


def build_dataset(
    root: str | os.PathLike, *, format: str = "auto", min_core: int = 0
) -> InteractionData:
    """Reads and preprocesses a dataset, without the cache."""
    if _is_builtin(root, format):
        raw = synthetic.generate()
    else:
        raw = readers.read_raw(resolve_root(root), format)
    return preprocess_lib.preprocess(raw, min_core=min_core)


def load_dataset(
    root: str | os.PathLike,
    *,
    format: str = "auto",
    min_core: int = 0,
    cache_dir: str | os.PathLike | None = None,
) -> InteractionData:
    """Loads a dataset folder of any supported format, or "builtin:synthetic", through the cache.

    Args:
        root: dataset folder (see `resolve_root`) or "builtin:synthetic".
        format: "auto" (detect by the files present), "s3rec", "recbole", "amazon_raw" or
            "synthetic".
        min_core: iterative k-core threshold on users and items (0 = keep everything).
        cache_dir: where processed datasets are kept; None or "" = `default_cache_dir()`.

    Raises:
        DataFormatError (a ValueError) for missing or malformed input files.
    """
    if format not in ("auto", "synthetic", *readers.FORMATS):
        raise ValueError(f"unknown format {format!r}")
    if min_core < 0:
        raise ValueError(f"min_core must be >= 0, got {min_core}")
    name, settings = cache_key(root, format, min_core)
    entry = Path(cache_dir or default_cache_dir()) / name
    if entry.is_dir():
        try:
            return _load(entry)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            # Unreadable entry (truncated, edited by hand): rebuild it. A notice on stderr,
            # so stdout stays clean (e.g. the JSON of `--describe`).
            print(
                f"corrkd_jax.data: rebuilding unreadable cache entry {entry} "
                f"({type(e).__name__}: {e})",
                file=sys.stderr,
            )
            shutil.rmtree(entry, ignore_errors=True)
    data = build_dataset(root, format=format, min_core=min_core)
    _save(data, entry, settings)
    return data


__all__ = [
    "BUILTIN_SYNTHETIC",
    "build_dataset",
    "cache_key",
    "default_cache_dir",
    "load_dataset",
    "resolve_root",
]
