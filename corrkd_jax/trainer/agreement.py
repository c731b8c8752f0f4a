"""Teacher-student correlation agreement: do the view tables keep the teacher's structure?

KDSR's premise is "modality forgetting": a view table initialised from the teacher features
and trained by the next-item loss alone drifts away from the teacher's item-item
correlations, and distillation keeps it close. `correlation_agreement` measures exactly that
on a fixed random sample of item pairs: the Pearson correlation between the teacher's cosine
and the student table's cosine over the pairs (1 at initialisation, lower as the table drifts).
The trainer logs it per view as `agreement/<view>` in every epoch record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

PAIR_SEED = 20240324  # fixed (not the run's seed) so every run is measured on the same pairs
NUM_PAIRS = 20_000


def agreement_pairs(
    num_items: int, num_pairs: int = NUM_PAIRS, seed: int = PAIR_SEED
) -> np.ndarray:
    """int64 [P, 2]: random pairs of distinct item ids in 1..N (P = num_pairs)."""
    if num_items < 2:
        raise ValueError(f"agreement needs at least 2 items, got {num_items}")
    rng = np.random.default_rng(seed)
    first = rng.integers(1, num_items + 1, num_pairs)
    # An offset in 1..N-1 (mod N) makes the second item always differ from the first.
    second = (first - 1 + rng.integers(1, num_items, num_pairs)) % num_items + 1
    return np.stack([first, second], axis=1)


def pair_cosines(table: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """float64 [P]: cosine of rows `pairs[:, 0]` and `pairs[:, 1]` of `table` [N + 1, d]
    (x.y / max(|x||y|, 1e-8), as `losses.pairwise_correlation(kind="cos")`)."""
    left = np.asarray(table[pairs[:, 0]], np.float64)
    right = np.asarray(table[pairs[:, 1]], np.float64)
    norms = np.linalg.norm(left, axis=1) * np.linalg.norm(right, axis=1)
    return np.sum(left * right, axis=1) / np.maximum(norms, 1e-8)


def correlation_agreement(
    student_table: np.ndarray, teacher_table: np.ndarray, pairs: np.ndarray
) -> float:
    """Pearson correlation (over `pairs`) of the teacher's and the student's item-pair cosines.

    Args:
        student_table: float [N + 1, d_s], the trained view table (row 0 = padding).
        teacher_table: float [N + 1, d_t], the teacher features of the view.
        pairs: int [P, 2] item ids in 1..N (`agreement_pairs`).

    Returns:
        A float in [-1, 1]; NaN when either side's cosines are constant over the pairs.
    """
    student = pair_cosines(student_table, pairs)
    teacher = pair_cosines(teacher_table, pairs)
    if student.std() == 0 or teacher.std() == 0:
        return float("nan")
    return float(np.corrcoef(student, teacher)[0, 1])


def view_agreements(
    params: Mapping[str, Any], teacher_features: Mapping[str, np.ndarray], pairs: np.ndarray
) -> dict[str, float]:
    """`agreement/<view>` for every view whose table `view_<view>` is in `params`."""
    return {
        f"agreement/{view}": correlation_agreement(
            np.asarray(params[f"view_{view}"]["embedding"]), features, pairs
        )
        for view, features in teacher_features.items()
        if f"view_{view}" in params
    }
