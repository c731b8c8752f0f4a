"""A resumable runner for grids of training runs ("cells"), shared by the studies.

A cell is anything with a `name` (a relative folder, e.g. `sasrec-best/seed0`) and a
`command(workdir)` (the training command line). `run_cells` trains the cells that have no
`results.json` yet under `results_root/<name>/`, in the given order; each trains in
`runs_root/<name>/` (the trainer resumes a workdir, so an interrupted cell continues from its
last checkpoint), and its small outputs are copied into the results folder only once the run
has finished, through a staging folder, so a half-copied cell never counts as done. A cell
another worker is training (its lock is held) is skipped, so two workers can share a grid.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from typing import Protocol

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Outputs of a finished cell kept beside its results.json (checkpoints stay in the workdir).
KEPT_FILES = ("results.json", "metrics.jsonl", "curves.png")
OPTIONAL_FILES = ("test_ranks.npy",)  # per-user test ranks (runs since issue 14)


class Cell(Protocol):
    @property
    def name(self) -> str: ...

    def command(self, workdir: str) -> list[str]: ...


def train_command(config: str, workdir: str, seed: int, *flags: str) -> list[str]:
    """The trainer's command line for one cell (run from the repo root, no progress bars)."""
    return [
        sys.executable,
        "-m",
        "corrkd_jax.train",
        "--config",
        config,
        "--workdir",
        workdir,
        f"--config.seed={seed}",
        "--config.progress=False",
        *flags,
    ]


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def results_path(results_root: str, cell: Cell) -> str:
    return os.path.join(results_root, cell.name, "results.json")


def run_cell(cell: Cell, results_root: str, runs_root: str) -> None:
    """Trains one cell (resuming its workdir) and copies its outputs into results_root."""
    workdir = os.path.join(runs_root, cell.name)
    os.makedirs(workdir, exist_ok=True)
    lock = open(os.path.join(workdir, "run.lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        _log(f"{cell.name}: another worker runs it, skipped")
        lock.close()
        return
    try:
        command = cell.command(workdir)
        _log(f"{cell.name}: {' '.join(command)}")
        start = time.time()
        with open(os.path.join(workdir, "train.log"), "a") as log:
            code = subprocess.call(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        if code != 0:
            raise SystemExit(f"{cell.name} failed with exit code {code}; see {workdir}/train.log")
        target = os.path.join(results_root, cell.name)
        staging = target + ".partial"
        shutil.rmtree(staging, ignore_errors=True)
        os.makedirs(staging)
        for name in KEPT_FILES + OPTIONAL_FILES:
            source = os.path.join(workdir, name)
            if name in KEPT_FILES or os.path.exists(source):
                shutil.copy2(source, os.path.join(staging, name))
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
        _log(f"{cell.name}: done in {time.time() - start:.0f} s")
    finally:
        lock.close()  # releases the lock


def run_cells(
    cells: Iterable[Cell],
    results_root: str,
    runs_root: str,
    is_done: Callable[[Cell], bool] | None = None,
) -> None:
    """Runs every cell not done yet, in order (default: done = results.json exists)."""
    done = is_done or (lambda cell: os.path.isfile(results_path(results_root, cell)))
    for cell in cells:
        if not done(cell):
            run_cell(cell, results_root, runs_root)
