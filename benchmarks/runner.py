"""A resumable runner for grids of training runs ("cells"), shared by the studies.

A cell is anything with a `name` (a relative folder, e.g. `sasrec-best/seed0`) and a
`command(workdir)` (the training command line). `run_cells` trains the cells that have no
`results.json` yet under `results_root/<name>/`, in the given order; each trains in
`runs_root/<name>/` (the trainer resumes a workdir, so an interrupted cell continues from its
last checkpoint), and its small outputs are copied into the results folder only once the run
has finished, through a staging folder, so a half-copied cell never counts as done. A cell
another worker is training (its lock is held) is skipped, so two workers can share a grid.

`stop_at` (`--stop-at HH:MM` of the study and backbones runners) is the time the CPU must be
idle by, e.g. the end of a working session: a cell still training then is stopped (its workdir
keeps the last epoch's checkpoint, so a later run resumes it), and a caller with time estimates
starts only cells expected to finish before it (`may_start`: a started cell by what is left of
its estimate after the epochs its workdir has finished).
"""

from __future__ import annotations

import datetime
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from corrkd_jax.trainer.checkpointing import CHECKPOINT_DIR
from corrkd_jax.trainer.metric_writer import METRICS_FILE, read_records

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


def parse_stop_at(text: str, now: datetime.datetime | None = None) -> float:
    """`HH:MM` (today, local time) or an ISO date-time -> seconds since the epoch."""
    now = now or datetime.datetime.now()
    try:
        if len(text) <= 5:
            clock = datetime.time.fromisoformat(text.zfill(5))
            when = datetime.datetime.combine(now.date(), clock)
        else:
            when = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise SystemExit(f"--stop-at {text!r}: expected HH:MM or YYYY-MM-DDTHH:MM") from None
    if when <= now:
        raise SystemExit(f"--stop-at {text!r}: that time has passed ({now:%Y-%m-%d %H:%M} now)")
    return when.timestamp()


def minutes_left(stop_at: float | None) -> float:
    return float("inf") if stop_at is None else (stop_at - time.time()) / 60


def has_started(cell: Cell, runs_root: str) -> bool:
    """True if the cell's workdir holds a checkpoint (a run of it resumes, not restarts)."""
    return os.path.isdir(os.path.join(runs_root, cell.name, CHECKPOINT_DIR, "latest"))


def fits(minutes: float | None, stop_at: float | None, margin: float = 1.1) -> bool:
    """Whether a cell estimated at `minutes` (None: unknown) should start before `stop_at`.

    Unknown estimates start (the stop time still bounds them); known ones need their minutes
    times `margin` (default: plus 10%) before the stop time, since a cell stopped half-way is
    lost when `runs/` is.
    """
    return minutes is None or minutes * margin <= minutes_left(stop_at)


def epoch_minutes(cell: Cell, runs_root: str) -> list[float]:
    """Wall time of each epoch a cell's workdir has finished (its metrics.jsonl), in minutes."""
    records = read_records(os.path.join(runs_root, cell.name, METRICS_FILE))
    # keyed by epoch: a process stopped between logging an epoch and saving it logs it twice
    seconds = {r["epoch"]: r["seconds"] for r in records if r.get("kind") == "epoch"}
    return [s / 60 for s in seconds.values()]


def remaining_minutes(cell: Cell, runs_root: str, minutes: float | None) -> float | None:
    """What is left of a cell's estimate (None: unknown) once its finished epochs are counted.

    A cell that has run past its estimate still needs at least one more epoch (its slowest so
    far); a cell not started yet needs all of it.
    """
    if minutes is None or not has_started(cell, runs_root):
        return minutes
    done = epoch_minutes(cell, runs_root)
    return max(minutes - sum(done), max(done, default=0.0))


def may_start(
    cell: Cell, runs_root: str, minutes: float | None, stop_at: float | None, margin: float = 1.1
) -> bool:
    """A cell starts, or a started one continues, if what is left of its estimate `fits`.

    A started cell that cannot finish either is left for a later run: when `runs/` does not
    outlive the session, continuing it would spend the time left on a cell that is then lost.
    """
    return fits(remaining_minutes(cell, runs_root, minutes), stop_at, margin)


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def results_path(results_root: str, cell: Cell) -> str:
    return os.path.join(results_root, cell.name, "results.json")


def run_cell(cell: Cell, results_root: str, runs_root: str, stop_at: float | None = None) -> bool:
    """Trains one cell (resuming its workdir) and copies its outputs into results_root.

    Returns True if the cell finished; False if another worker holds it or `stop_at` came
    first (the training process is then stopped; its last checkpoint stays in the workdir).
    """
    workdir = os.path.join(runs_root, cell.name)
    os.makedirs(workdir, exist_ok=True)
    lock = open(os.path.join(workdir, "run.lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        _log(f"{cell.name}: another worker runs it, skipped")
        lock.close()
        return False
    try:
        command = cell.command(workdir)
        _log(f"{cell.name}: {' '.join(command)}")
        start = time.time()
        with open(os.path.join(workdir, "train.log"), "a") as log:
            code = _train_until(command, log, stop_at, lock)
        if code is None:
            _log(f"{cell.name}: stopped at the --stop-at time after {time.time() - start:.0f} s")
            return False
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
        return True
    finally:
        lock.close()  # releases the lock


def _raise_exit(signum, frame) -> None:
    raise SystemExit(128 + signum)


def _train_until(command: list[str], log, stop_at: float | None, lock=None) -> int | None:
    """Runs the trainer; its exit code, or None if it was stopped at `stop_at`.

    The trainer inherits the cell's lock (`lock`, an open file holding the flock): a runner
    killed outright (SIGKILL) leaves a trainer that still holds it, so another runner skips
    the cell instead of starting a second trainer on the same workdir. A runner stopped with
    SIGTERM (`pkill -f benchmarks.study.run`) or Ctrl-C stops its trainer first.
    """
    keep = (lock.fileno(),) if lock is not None else ()
    process = subprocess.Popen(
        command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, pass_fds=keep
    )
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_exit) if on_main_thread else None
    try:
        timeout = None if stop_at is None else max(0.0, stop_at - time.time())
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return None
    except BaseException:  # Ctrl-C, SIGTERM: never leave an orphaned trainer holding the CPU
        process.kill()
        process.wait()
        raise
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous)


def run_cells(
    cells: Iterable[Cell],
    results_root: str,
    runs_root: str,
    is_done: Callable[[Cell], bool] | None = None,
    stop_at: float | None = None,
) -> None:
    """Runs every cell not done yet, in order (default: done = results.json exists), until
    `stop_at`."""
    done = is_done or (lambda cell: os.path.isfile(results_path(results_root, cell)))
    for cell in cells:
        if minutes_left(stop_at) <= 0:
            return
        if not done(cell):
            run_cell(cell, results_root, runs_root, stop_at)
