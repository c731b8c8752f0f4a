"""Runs the strong-baselines grid of issue 14 (resumable, skips finished runs).

    python -m benchmarks.backbones.run                     # everything missing, in order
    python -m benchmarks.backbones.run --list              # runs and whether they are done
    python -m benchmarks.backbones.run --only sasrec-best  # runs whose name contains a string

Finished runs: `results/beauty/backbones/<run>/seed<k>/` (results.json, metrics.jsonl,
curves.png, test_ranks.npy); workdirs with checkpoints: `runs/backbones/<run>/seed<k>/`.
`sasrec-best` is the full study's Beauty / SASRec / id_only cell (`Cell.study_twin`): it is
trained and kept as that cell (`results/beauty/leave_one_out/sasrec/id_only/`, workdir under
`runs/study/`), so neither runner trains it twice.
`--results DIR` writes the finished runs elsewhere (e.g. the main checkout while this one
trains from a frozen worktree).
"""

from __future__ import annotations

import argparse
import os

from benchmarks.backbones.cells import all_cells
from benchmarks.runner import REPO, results_path, run_cell


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="list runs and their status")
    parser.add_argument("--only", default="", help="run cells whose name contains this")
    parser.add_argument("--results", default=os.path.join(REPO, "results", "beauty", "backbones"))
    parser.add_argument("--runs", default=os.path.join(REPO, "runs", "backbones"))
    parser.add_argument("--study-results", default=os.path.join(REPO, "results"))
    parser.add_argument("--study-runs", default=os.path.join(REPO, "runs", "study"))
    args = parser.parse_args()
    # (cell, results root, runs root): study twins run as the study's cells
    queue = [
        (c.study_twin, args.study_results, args.study_runs)
        if c.study_twin
        else (c, args.results, args.runs)
        for c in all_cells()
        if args.only in c.name
    ]
    if args.list:
        for cell, results, _ in queue:
            done = os.path.isfile(results_path(results, cell))
            print(f"{'done' if done else 'todo'}  {cell.name}")
        return
    for cell, results, runs in queue:
        if not os.path.isfile(results_path(results, cell)):
            run_cell(cell, results, runs)


if __name__ == "__main__":
    main()
