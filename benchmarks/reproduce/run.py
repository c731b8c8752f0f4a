"""Runs every cell of the capped Beauty reproduction study; resumable, skips finished cells.

    python -m benchmarks.reproduce.run                 # everything still missing, in order
    python -m benchmarks.reproduce.run --list          # cells and whether they are done
    python -m benchmarks.reproduce.run --only sasrec   # cells whose name contains a string

This is the first study (issue 7, 10-epoch cap, an older config); its results live under
`results/beauty/capped10/` so they never mix with the full study (`benchmarks/study/`).
A cell is finished when `results/beauty/capped10/<cell>/results.json` exists and it ran its
budget; training, resuming, locking and copying are `benchmarks/runner.py`'s
(workdirs: `runs/reproduce/<cell>`).
"""

from __future__ import annotations

import argparse
import json
import os

from benchmarks.reproduce.cells import EPOCH_CAP, Cell, all_cells
from benchmarks.runner import REPO, results_path, run_cells

RESULTS = os.path.join(REPO, "results", "beauty", "capped10")
RUNS = os.path.join(REPO, "runs", "reproduce")


def results_dir(cell: Cell) -> str:
    return os.path.join(RESULTS, cell.name)


def is_done(cell: Cell) -> bool:
    """results.json exists and the run ended by early stopping or at the current EPOCH_CAP
    (raising the cap reruns a capped cell, which resumes from its last checkpoint)."""
    path = results_path(RESULTS, cell)
    if not os.path.isfile(path):
        return False
    with open(path) as f:
        results = json.load(f)
    if not results["stop_reason"].startswith("num_epochs"):
        return True  # early stopping ended it: more epochs would not change it
    budget = EPOCH_CAP if EPOCH_CAP is not None else results["config"]["num_epochs"]
    return results["epochs_trained"] >= budget


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="list cells and their status")
    parser.add_argument("--only", default="", help="run cells whose name contains this")
    parser.add_argument("--group", default="", help="main | ablation | ratio | investigation")
    args = parser.parse_args()
    cells = [c for c in all_cells() if args.only in c.name and args.group in c.group]
    if args.list:
        for cell in cells:
            print(f"{'done' if is_done(cell) else 'todo'}  {cell.group:13s} {cell.name}")
        return
    run_cells(cells, RESULTS, RUNS, is_done=is_done)


if __name__ == "__main__":
    main()
