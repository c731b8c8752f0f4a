"""Runs the strong-baselines grid of issue 14 (resumable, skips finished runs).

    python -m benchmarks.backbones.run                     # everything missing, in order
    python -m benchmarks.backbones.run --list              # runs and whether they are done
    python -m benchmarks.backbones.run --only sasrec-best  # runs whose name contains a string
    python -m benchmarks.backbones.run --stop-at 10:40     # idle by then (see benchmarks/runner.py)

Finished runs: `results/beauty/backbones/<run>/seed<k>/` (results.json, metrics.jsonl,
curves.png, test_ranks.npy); workdirs with checkpoints: `runs/backbones/<run>/seed<k>/`.
`sasrec-best` is the full study's Beauty / SASRec / id_only cell (`Cell.study_twin`): it is
trained and kept as that cell (`results/beauty/leave_one_out/sasrec/id_only/`, workdir under
`runs/study/`), so neither runner trains it twice.
`--results DIR` writes the finished runs elsewhere (e.g. the main checkout while this one
trains from a frozen worktree). With `--stop-at`, a run not started yet is skipped while the
mean wall time of its finished seeds (unknown: it starts) plus 10% does not fit before then.
"""

from __future__ import annotations

import argparse
import os

from benchmarks import runner
from benchmarks.backbones.cells import all_cells
from benchmarks.runner import REPO, results_path, run_cell
from benchmarks.study import load


def seed_minutes(results: str, cell) -> float | None:
    """Mean wall minutes of the finished seeds of the cell's run (its `<run>/seed*` siblings)."""
    run = os.path.dirname(os.path.join(results, cell.name))
    folders = [os.path.join(run, s) for s in sorted(os.listdir(run))] if os.path.isdir(run) else []
    minutes = [
        load.read_results(f)["timing"]["total_seconds"] / 60 for f in folders if load.is_finished(f)
    ]
    return sum(minutes) / len(minutes) if minutes else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="list runs and their status")
    parser.add_argument("--only", default="", help="run cells whose name contains this")
    parser.add_argument("--results", default=os.path.join(REPO, "results", "beauty", "backbones"))
    parser.add_argument("--runs", default=os.path.join(REPO, "runs", "backbones"))
    parser.add_argument("--study-results", default=os.path.join(REPO, "results"))
    parser.add_argument("--study-runs", default=os.path.join(REPO, "runs", "study"))
    parser.add_argument("--stop-at", default=None, help="HH:MM (today) or ISO date-time")
    args = parser.parse_args()
    stop_at = runner.parse_stop_at(args.stop_at) if args.stop_at else None
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
        if runner.minutes_left(stop_at) <= 0:
            break
        if os.path.isfile(results_path(results, cell)):
            continue
        guess = seed_minutes(results, cell)
        if runner.may_start(cell, runs, guess, stop_at):
            run_cell(cell, results, runs, stop_at)
        else:
            print(f"{cell.name}: ~{guess:.0f} min, does not fit before --stop-at", flush=True)


if __name__ == "__main__":
    main()
