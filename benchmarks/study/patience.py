"""Would a shorter patience have cost anything? Replays finished runs' validation curves.

    python -m benchmarks.study.patience     # writes results/study/patience.md

For every finished run trained to early stopping under `results/<dataset>/` (the study's
cells on Beauty, Sports and Toys, and the Beauty backbones runs), the logged per-epoch validation NDCG@10 is fed to the trainer's own `EarlyStopping`
with a smaller patience: which epoch it would have selected, its validation score, and how
many epochs it would have trained. Only patiences up to the one each run used can be
replayed (a run stopped with patience p has no epochs past best + p). Test metrics are not
logged per epoch, so the cost is stated on validation only.
"""

from __future__ import annotations

import argparse
import glob
import os

from benchmarks.runner import REPO
from benchmarks.study import load
from corrkd_jax.trainer.early_stopping import EarlyStopping

METRIC = "NDCG@10"
PATIENCES = (3, 4, 5, 6, 8, 10)


def replay(curve: list[float], patience: int) -> tuple[int, float, int]:
    """(selected epoch, its validation value, epochs trained), epochs 1-based, for a run
    that had logged `curve` (one validation value per epoch) under `patience`."""
    stopper = EarlyStopping(METRIC, patience)
    for epoch, value in enumerate(curve):
        stopper.update(epoch, {METRIC: value})
        if stopper.should_stop:
            return stopper.best_epoch + 1, stopper.best_value, epoch + 1
    return stopper.best_epoch + 1, stopper.best_value, len(curve)


def runs(results_root: str) -> list[tuple[str, list[float], int]]:
    """(run label, validation curve, patience it was trained with) of the finished runs that
    early stopping ended (runs stopped by an epoch cap are left out), labelled from
    `<dataset>/`."""
    found = []
    pattern = os.path.join(results_root, "*", "**", "results.json")
    for path in sorted(glob.glob(pattern, recursive=True)):
        folder = os.path.dirname(path)
        result = load.read_results(folder)
        if not result.get("stop_reason", "").startswith("early stopping"):
            continue
        curve = [r[f"valid/{METRIC}"] for r in load.epoch_records(folder)]
        label = os.path.relpath(folder, results_root)
        found.append((label, curve, result["config"]["eval"]["patience"]))
    return found


def table(found: list[tuple[str, list[float], int]]) -> list[str]:
    head = " | ".join(f"p {p}" for p in PATIENCES)
    lines = [
        f"| run (trained with patience) | {head} |",
        "|---|" + "---|" * len(PATIENCES),
    ]
    for label, curve, used in found:
        cells = []
        for p in PATIENCES:
            if p > used:
                cells.append("")
                continue
            best, value, trained = replay(curve, p)
            cells.append(f"{best}/{trained}: {100 * value:.2f}")
        lines.append(f"| {label} ({used}) | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=os.path.join(REPO, "results"))
    args = parser.parse_args()
    text = [
        "# Patience replayed on finished runs",
        "",
        "Cell: selected epoch / epochs trained: validation NDCG@10 (%) at the selected epoch, "
        "had the run used that patience (`python -m benchmarks.study.patience`).",
        "",
        *table(runs(args.results)),
    ]
    out = os.path.join(args.results, "study", "patience.md")
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(text) + "\n")
    print("\n".join(text))


if __name__ == "__main__":
    main()
