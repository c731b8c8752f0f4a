"""Runs every cell of the Beauty reproduction study; resumable, skips finished cells.

    python benchmarks/reproduce/run.py                 # everything still missing, in order
    python benchmarks/reproduce/run.py --list          # cells and whether they are done
    python benchmarks/reproduce/run.py --only sasrec   # cells whose name contains a string

A cell is finished when `results/beauty/<cell>/results.json` exists. A cell interrupted half
way resumes from its checkpoint in `runs/reproduce/<cell>` (the trainer resumes a workdir).
Each finished cell also keeps its `metrics.jsonl` and `curves.png` beside `results.json`, and
its console log under `runs/reproduce/<cell>/train.log`.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cells import EPOCH_CAP, Cell, all_cells  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULTS = os.path.join(REPO, "results", "beauty")
RUNS = os.path.join(REPO, "runs", "reproduce")
KEPT_FILES = ("results.json", "metrics.jsonl", "curves.png")


def results_dir(cell: Cell) -> str:
    return os.path.join(RESULTS, cell.name)


def is_done(cell: Cell) -> bool:
    """results.json exists and the run ended by early stopping or at the current EPOCH_CAP
    (raising the cap reruns a capped cell, which resumes from its last checkpoint)."""
    path = os.path.join(results_dir(cell), "results.json")
    if not os.path.isfile(path):
        return False
    with open(path) as f:
        results = json.load(f)
    if not results["stop_reason"].startswith("num_epochs"):
        return True  # early stopping ended it: more epochs would not change it
    budget = EPOCH_CAP if EPOCH_CAP is not None else results["config"]["num_epochs"]
    return results["epochs_trained"] >= budget


def run_cell(cell: Cell) -> None:
    """Trains one cell (resuming its workdir) and copies its outputs into results/.

    A cell that another `run.py` process is training (its lock is held) is skipped, so two
    workers can share one study (e.g. `--only sasrec` beside the default order)."""
    workdir = os.path.join(RUNS, cell.name)
    os.makedirs(workdir, exist_ok=True)
    lock = open(os.path.join(workdir, "run.lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"[{time.strftime('%H:%M:%S')}] {cell.name}: another worker runs it, skipped",
              flush=True)
        lock.close()
        return
    try:
        _train_and_copy(cell, workdir)
    finally:
        lock.close()  # releases the lock


def _train_and_copy(cell: Cell, workdir: str) -> None:
    command = cell.command(workdir)
    print(f"[{time.strftime('%H:%M:%S')}] {cell.name}: {' '.join(command)}", flush=True)
    start = time.time()
    with open(os.path.join(workdir, "train.log"), "a") as log:
        code = subprocess.call(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    if code != 0:
        raise SystemExit(f"{cell.name} failed with exit code {code}; see {workdir}/train.log")
    # Copy into a temporary folder first so a half-copied cell never counts as finished.
    target = results_dir(cell)
    staging = target + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    for name in KEPT_FILES:
        shutil.copy2(os.path.join(workdir, name), os.path.join(staging, name))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    print(f"[{time.strftime('%H:%M:%S')}] {cell.name}: done in {time.time() - start:.0f} s",
          flush=True)


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
    for cell in cells:
        if not is_done(cell):
            run_cell(cell)


if __name__ == "__main__":
    main()
