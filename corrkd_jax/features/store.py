"""On-disk layout of stage 1: `<out>/<view>.npy`, `<out>/<view>.reduced.npy`, manifest.json.

Every file is written to a temporary name in the same folder and moved into place with
`os.replace`, and the manifest last, so a manifest entry always describes complete files.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import numpy as np

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def raw_path(out_dir: str, view: str) -> str:
    return os.path.join(out_dir, f"{view}.npy")


def reduced_path(out_dir: str, view: str) -> str:
    return os.path.join(out_dir, f"{view}.reduced.npy")


def _atomic_write(path: str, write, mode: str) -> None:
    """Write through `write(handle)` to a unique temporary file, then rename it to `path`."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # A unique name opened with "x" (not mkstemp): the file gets the usual umask permissions.
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "x" + mode[1:]) as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_array(path: str, array: np.ndarray) -> None:
    """Atomically write `array` as float32 .npy."""
    _atomic_write(path, lambda h: np.save(h, np.asarray(array, np.float32)), "wb")


def save_manifest(out_dir: str, manifest: dict[str, Any]) -> None:
    """Atomically write `<out_dir>/manifest.json`."""
    _atomic_write(os.path.join(out_dir, MANIFEST),
                  lambda h: h.write(json.dumps(manifest, indent=2, sort_keys=True) + "\n"), "w")


def load_manifest(out_dir: str) -> dict[str, Any] | None:
    """The manifest of `out_dir`, or None when absent, unreadable or of another format."""
    try:
        with open(os.path.join(out_dir, MANIFEST)) as handle:
            manifest = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        return None
    return manifest


def array_shape(path: str) -> tuple[int, ...] | None:
    """Shape of a .npy file without reading its data; None when missing or unreadable."""
    try:
        return tuple(np.load(path, mmap_mode="r").shape)
    except (OSError, ValueError):
        return None


def load_array(path: str) -> np.ndarray:
    """A float32 .npy array."""
    return np.asarray(np.load(path), np.float32)
