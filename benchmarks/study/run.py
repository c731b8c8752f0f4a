"""Runs the full study (issue 15); resumable, skips finished cells, resumes interrupted ones.

    python -m benchmarks.study.run                  # every missing cell, in run order
    python -m benchmarks.study.run --list           # cells, done/todo, and pending ones
    python -m benchmarks.study.run --only sports    # cells whose name contains a string
    python -m benchmarks.study.run --skip /sasrec/  # hold cells back (repeatable), e.g. while
                                                    # the Backbones grid may change SASRec's defaults
    python -m benchmarks.study.run --max-cells 1    # stop after one trained cell (e.g. a GPU slot)
    python -m benchmarks.study.run --stop-at 10:40  # leave the CPU idle by then (session end):
                                                    # start only cells estimated to finish first
    python -m benchmarks.study.run --stop-at 10:40 --carry-over  # where runs/ outlives the
                                                    # session: once nothing fits, train the next
                                                    # cell until then anyway; a later run continues it

Finished cells: `results/<cell>/` (results.json, metrics.jsonl, curves.png, test_ranks.npy);
workdirs with checkpoints: `runs/study/<cell>/` (an interrupted cell resumes from its last
checkpoint). Training, locking and copying are `benchmarks/runner.py`'s: a cell another worker
holds is skipped, so several workers can share the queue. The cell list is rebuilt after every
cell: once the search's last point has finished, the selection file is written
(`results/beauty/search/sasrec/selection.json`) and the `kdsr_tuned` cells join the queue
(but the one that is the chosen point's own run: `cells.py`'s `twin_of`).
`--results DIR` writes finished cells elsewhere (e.g. the main checkout while this one trains
from a frozen worktree).

With `--stop-at`, a cell not started yet is skipped while its estimate (`estimate.py`, from
the finished cells' wall times) plus a margin does not fit before the stop time (15% when
measured on the cell's own dataset, backbone and variant, 50% when carried over from another
dataset or backbone, which is off by more), and the next cell
in run order that fits runs instead. A cell with a checkpoint is judged by what is left of
its estimate (less the epochs its workdir has finished, at least one more epoch). A working
session whose `runs/` does not survive it would otherwise lose every cell it cannot finish.

`--carry-over` is for machines whose `runs/` does outlive the session: once no cell fits, and
at least `CARRY_OVER_MINUTES` are left, the runner continues a cell that already has a
checkpoint (the first in run order) or else starts the next unfinished one, trains it until
the stop time and leaves its checkpoint for the next session. Cells that fit still come
first, so the flag only fills time that would otherwise stay idle; cells longer than a
session (no estimate ever fits) can then finish over several.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from benchmarks import runner
from benchmarks.runner import REPO, run_cell
from benchmarks.study import cells as study
from benchmarks.study import estimate, load, search, summarize

# Least time left for --carry-over to start a cell: start-up and compilation (~2 min) plus one
# checkpointed epoch of the slowest cells (Beauty SASRec with KD: ~2.6 min), with room to spare.
CARRY_OVER_MINUTES = 10.0


def write_selection_when_ready(results_root: str) -> bool:
    """Writes the selection file once every design point has finished; True if it exists."""
    path = study.selection_path(results_root)
    if search.read_selection(path):
        return True
    scores = {}
    for point, cell in ((p, study.search_cell(p)) for p in search.points()):
        folder = os.path.join(results_root, cell.name)
        if not load.is_finished(folder):
            return False
        scores[point] = load.read_results(folder)["valid"][search.METRIC]
    search.write_selection(path, search.select(scores))
    print(f"search finished: selected {search.read_selection(path)['selected']}", flush=True)
    return True


def wanted(name: str, only: str, hold: tuple[str, ...]) -> bool:
    """True if a cell name contains `only` and none of the `hold` strings."""
    return only in name and not any(h in name for h in hold)


def next_cell(
    results_root: str,
    tried: set[str],
    only: str,
    hold: tuple[str, ...] = (),
    fits: Callable[[study.Cell], bool] = lambda cell: True,
) -> study.Cell | None:
    """The first wanted cell in run order that is not finished, not tried by this process,
    and `fits` (the time left). A cell with a twin is never trained: its twin is queued."""
    write_selection_when_ready(results_root)
    for cell in study.all_cells(results_root):
        if (
            wanted(cell.name, only, hold)
            and not cell.twin
            and cell.name not in tried
            and not load.is_finished(os.path.join(results_root, cell.name))
            and fits(cell)
        ):
            return cell
    return None


def fits_before(stop_at: float | None, results_root: str, runs_root: str):
    """`next_cell`'s `fits` for a stop time: by estimate (for a started cell, what is left)."""
    if stop_at is None:
        return lambda cell: True
    minutes, cases = estimate.measured(summarize.finished(results_root, with_search=True))
    cases = estimate.with_data_cases(cases)

    def fits(cell: study.Cell) -> bool:
        guess = estimate.estimate(cell, minutes, cases)
        return runner.may_start(cell, runs_root, guess.minutes, stop_at, guess.margin)

    return fits


def carry_over_cell(
    results_root: str, runs_root: str, tried: set[str], only: str, hold: tuple[str, ...] = ()
) -> study.Cell | None:
    """`--carry-over`'s cell once none fits: the first started one (it has a checkpoint), else
    the first unfinished one, in run order."""
    started = next_cell(results_root, tried, only, hold, lambda c: runner.has_started(c, runs_root))
    return started or next_cell(results_root, tried, only, hold)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="list cells and their status")
    parser.add_argument("--only", default="", help="run cells whose name contains this")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        help="leave out cells whose name contains this (repeatable)",
    )
    parser.add_argument("--max-cells", type=int, default=0, help="stop after N cells (0: all)")
    parser.add_argument(
        "--stop-at",
        default=None,
        help="HH:MM (today) or an ISO date-time: stop training then; start only cells "
        "estimated to finish before it",
    )
    parser.add_argument(
        "--carry-over",
        action="store_true",
        help="with --stop-at, where runs/ outlives the session: once no cell fits, train "
        "the next one until the stop time anyway (a later run continues it)",
    )
    parser.add_argument("--results", default=os.path.join(REPO, "results"))
    parser.add_argument("--runs", default=os.path.join(REPO, "runs", "study"))
    args = parser.parse_args()
    hold = tuple(args.skip)
    if args.carry_over and not args.stop_at:
        parser.error("--carry-over needs --stop-at (without one, every cell runs to its end)")
    if args.list:
        ready = write_selection_when_ready(args.results)
        for cell in study.all_cells(args.results):
            if wanted(cell.name, args.only, hold):
                done = load.is_finished(summarize.folder(args.results, cell))
                twin = f"  (the run of {cell.twin})" if cell.twin else ""
                print(f"{'done' if done else 'todo'}  {cell.group:8s} {cell.name}{twin}")
        for name in [] if ready else study.tuned_names():
            if wanted(name, args.only, hold):
                print(f"pending (needs the search)  {name}")
        return
    stop_at = runner.parse_stop_at(args.stop_at) if args.stop_at else None
    tried: set[str] = set()  # run or skipped (another worker holds it) by this process
    finished = 0
    while (args.max_cells <= 0 or finished < args.max_cells) and runner.minutes_left(stop_at) > 0:
        fits = fits_before(stop_at, args.results, args.runs)  # estimates grow with each cell
        cell = next_cell(args.results, tried, args.only, hold, fits)
        if cell is None and args.carry_over and runner.minutes_left(stop_at) >= CARRY_OVER_MINUTES:
            cell = carry_over_cell(args.results, args.runs, tried, args.only, hold)
            if cell is not None:
                print(f"{cell.name}: does not fit before --stop-at; carried over", flush=True)
        if cell is None:
            break
        tried.add(cell.name)
        finished += run_cell(cell, args.results, args.runs, stop_at)
    if stop_at is not None:
        print(
            f"stopping with {runner.minutes_left(stop_at):.0f} min left before --stop-at",
            flush=True,
        )


if __name__ == "__main__":
    main()
