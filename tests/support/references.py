"""Plain NumPy references the jitted correlation code is checked against (float64, loops)."""

from __future__ import annotations

import numpy as np


def np_corr(u: np.ndarray, w: np.ndarray, kind: str) -> float:
    """One correlation of two vectors, by kind: cos | dot | euc | man."""
    u = u.astype(np.float64)
    w = w.astype(np.float64)
    if kind == "cos":
        return float(u @ w / max(np.linalg.norm(u) * np.linalg.norm(w), 1e-8))
    if kind == "dot":
        return float(u @ w)
    if kind == "euc":
        return float(np.sqrt(((u - w) ** 2).sum()))
    return float(np.abs(u - w).sum())
