"""On-disk layout of stage 1: `<out>/<view>.npy`, `<out>/<view>.reduced.npy`, manifest.json.

Every file is written atomically (`corrkd_jax.io`), and the manifest last, so a manifest entry always describes complete files.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from corrkd_jax.io import save_npy, write_json

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def raw_path(out_dir: str, view: str) -> str:
    return os.path.join(out_dir, f"{view}.npy")


def reduced_path(out_dir: str, view: str) -> str:
    return os.path.join(out_dir, f"{view}.reduced.npy")


def save_array(path: str, array: np.ndarray) -> None:
    """Atomically write `array` as float32 .npy."""
    save_npy(path, np.asarray(array, np.float32))


def save_manifest(out_dir: str, manifest: dict[str, Any]) -> None:
    """Atomically write `<out_dir>/manifest.json`."""
    write_json(os.path.join(out_dir, MANIFEST), manifest, sort_keys=True)


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
