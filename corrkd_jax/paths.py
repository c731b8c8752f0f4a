"""The one rule for paths in configs and on the command line.

A relative path means the file or folder under the current directory when it exists there,
else under the repository root (the folder holding `pyproject.toml` above the package, or the
current directory when the package is installed elsewhere). So `../shared/data/amazon-beauty`
and `.cache/features/...` in the shipped configs work from any directory, and a user's own
relative path works from where they run the command. Absolute paths, "" and `builtin:` names
are left as they are.
"""

from __future__ import annotations

import os
import pathlib


def repo_root() -> str:
    """The repository checkout holding the package, else the current directory."""
    candidate = pathlib.Path(__file__).resolve().parents[1]  # corrkd_jax -> repository
    if (candidate / "pyproject.toml").exists():
        return str(candidate)
    return os.getcwd()


def resolve_path(path: str | os.PathLike) -> str:
    """Absolute form of a config path by the module's rule ("" and `builtin:` unchanged)."""
    path = os.fspath(path)
    if not path or path.startswith("builtin:"):
        return path
    path = os.path.expanduser(path)
    if os.path.isabs(path) or os.path.exists(path):
        return os.path.abspath(path)
    return os.path.normpath(os.path.join(repo_root(), path))
