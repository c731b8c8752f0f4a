"""Reading finished cells: results.json, the epoch records (through the trainer's own
`read_records`), the per-user test ranks and the agreement curves logged per epoch."""

from __future__ import annotations

import json
import os

import numpy as np

from corrkd_jax.trainer.metric_writer import METRICS_FILE, read_records
from corrkd_jax.trainer.workdir import RESULTS_FILE, TEST_RANKS_FILE


def is_finished(folder: str) -> bool:
    """A cell is finished when the runner has copied its results.json (copied last)."""
    return os.path.isfile(os.path.join(folder, RESULTS_FILE))


# Cells finished by the trainer of commit d161e7f (session of 2026-12-02 14:30), which reused
# host memory (`corrkd_jax.host_memory`, on by default since 8ead89c) before results.json
# recorded it (b9623ba); their files are left as the trainer wrote them.
REUSED_HOST_MEMORY_UNRECORDED = (
    "toys/leave_one_out/session_graph/kdsr_released/seed0",
    "toys/leave_one_out/sasrec/feature_init/seed0",
)


def read_results(folder: str) -> dict:
    with open(os.path.join(folder, RESULTS_FILE), encoding="utf-8") as f:
        results = json.load(f)
    if os.path.normpath(folder).endswith(REUSED_HOST_MEMORY_UNRECORDED):
        results["timing"].setdefault("host_memory_reused", True)
    return results


def epoch_records(folder: str) -> list[dict]:
    """The per-epoch records (validation metrics, agreement) of a finished cell."""
    records = read_records(os.path.join(folder, METRICS_FILE))
    return [r for r in records if r.get("kind") == "epoch"]


def test_ranks(folder: str) -> np.ndarray | None:
    """int32 [test users]: each test user's target rank (None for runs older than issue 14)."""
    path = os.path.join(folder, TEST_RANKS_FILE)
    return np.load(path) if os.path.isfile(path) else None


def agreement_points(records: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """view -> [(epoch, teacher-student agreement)] from the 'agreement/<view>' fields."""
    keys = sorted({k for r in records for k in r if k.startswith("agreement/")})
    return {k.split("/", 1)[1]: [(r["epoch"], r[k]) for r in records if k in r] for k in keys}
