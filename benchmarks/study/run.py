"""Runs the full study (issue 15); resumable, skips finished cells, resumes interrupted ones.

    python -m benchmarks.study.run                  # every missing cell, in run order
    python -m benchmarks.study.run --list           # cells, done/todo, and pending ones
    python -m benchmarks.study.run --only sports    # cells whose name contains a string
    python -m benchmarks.study.run --skip /sasrec/  # hold cells back (repeatable), e.g. while
                                                    # the Backbones grid may change SASRec's defaults
    python -m benchmarks.study.run --max-cells 1    # stop after one trained cell (e.g. a GPU slot)

Finished cells: `results/<cell>/` (results.json, metrics.jsonl, curves.png, test_ranks.npy);
workdirs with checkpoints: `runs/study/<cell>/` (an interrupted cell resumes from its last
checkpoint). Training, locking and copying are `benchmarks/runner.py`'s: a cell another worker
holds is skipped, so several workers can share the queue. The cell list is rebuilt after every
cell: once the search's last point has finished, the selection file is written
(`results/beauty/search/sasrec/selection.json`) and the `kdsr_tuned` cells join the queue.
`--results DIR` writes finished cells elsewhere (e.g. the main checkout while this one trains
from a frozen worktree).
"""

from __future__ import annotations

import argparse
import os

from benchmarks.runner import REPO, run_cell
from benchmarks.study import cells as study
from benchmarks.study import load, search


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
    results_root: str, tried: set[str], only: str, hold: tuple[str, ...] = ()
) -> study.Cell | None:
    """The first wanted cell in run order that is not finished and not tried by this process."""
    write_selection_when_ready(results_root)
    for cell in study.all_cells(results_root):
        if (
            wanted(cell.name, only, hold)
            and cell.name not in tried
            and not load.is_finished(os.path.join(results_root, cell.name))
        ):
            return cell
    return None


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
    parser.add_argument("--results", default=os.path.join(REPO, "results"))
    parser.add_argument("--runs", default=os.path.join(REPO, "runs", "study"))
    args = parser.parse_args()
    hold = tuple(args.skip)
    if args.list:
        ready = write_selection_when_ready(args.results)
        for cell in study.all_cells(args.results):
            if wanted(cell.name, args.only, hold):
                done = load.is_finished(os.path.join(args.results, cell.name))
                print(f"{'done' if done else 'todo'}  {cell.group:8s} {cell.name}")
        for name in [] if ready else study.tuned_names():
            if wanted(name, args.only, hold):
                print(f"pending (needs the search)  {name}")
        return
    tried: set[str] = set()  # run or skipped (another worker holds it) by this process
    finished = 0
    while args.max_cells <= 0 or finished < args.max_cells:
        cell = next_cell(args.results, tried, args.only, hold)
        if cell is None:
            break
        tried.add(cell.name)
        run_cell(cell, args.results, args.runs)
        finished += load.is_finished(os.path.join(args.results, cell.name))


if __name__ == "__main__":
    main()
