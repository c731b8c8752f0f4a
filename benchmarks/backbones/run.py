"""Runs the strong-baselines grid of issue 14 (resumable, skips finished runs).

    python -m benchmarks.backbones.run                     # everything missing, in order
    python -m benchmarks.backbones.run --list              # runs and whether they are done
    python -m benchmarks.backbones.run --only sasrec-best  # runs whose name contains a string

Finished runs: `results/beauty/backbones/<run>/seed<k>/` (results.json, metrics.jsonl,
curves.png, test_ranks.npy); workdirs with checkpoints: `runs/backbones/<run>/seed<k>/`.
`--results DIR` writes the finished runs elsewhere (e.g. the main checkout while this one
trains from a frozen worktree).
"""

from __future__ import annotations

import argparse
import os

from benchmarks.backbones.cells import all_cells
from benchmarks.runner import REPO, results_path, run_cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="list runs and their status")
    parser.add_argument("--only", default="", help="run cells whose name contains this")
    parser.add_argument("--results", default=os.path.join(REPO, "results", "beauty", "backbones"))
    parser.add_argument("--runs", default=os.path.join(REPO, "runs", "backbones"))
    args = parser.parse_args()
    cells = [c for c in all_cells() if args.only in c.name]
    if args.list:
        for cell in cells:
            done = os.path.isfile(results_path(args.results, cell))
            print(f"{'done' if done else 'todo'}  {cell.name}")
        return
    run_cells(cells, args.results, args.runs)


if __name__ == "__main__":
    main()
