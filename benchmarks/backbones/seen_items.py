"""How much of the gap to published Beauty numbers is an evaluation convention: seen items.

    python -m benchmarks.backbones.seen_items runs/backbones/sasrec-recbole/seed1 [...]

Our evaluation (and RecBole's for sequential models) ranks the target among ALL items; many
papers instead drop the items the user has already interacted with from the candidates. On
Amazon Beauty (S3-Rec 5-core) no user ever repeats an item (checked below), so the filtered
protocol only removes items that can never be the target and can only raise HR/NDCG. This
script restores a finished run's best checkpoint, recomputes its test ranks both ways on the
same test users, checks that the unfiltered ranks match the run's `test_ranks.npy`, and writes
`results/beauty/backbones/seen_items.md` (one row per workdir; rows of other workdirs kept).
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from benchmarks.runner import REPO
from corrkd_jax import metrics
from corrkd_jax.data import make_split
from corrkd_jax.recommend import load_predictor

OUTPUT = os.path.join(REPO, "results", "beauty", "backbones", "seen_items.md")
BATCH = 1024  # test users scored at a time ([BATCH, N] float32 scores)
KS = (10, 20)
METRICS = ("HR@10", "NDCG@10", "HR@20", "NDCG@20")
HEADER = [
    "| run | test users | targets seen before | top-1 item already seen (% of users) | "
    + " | ".join(f"{m}: all items -> unseen only" for m in METRICS)
    + " |",
    "|---|---:|---:|---:|" + "---:|" * len(METRICS),
]


def test_ranks(workdir: str) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(ranks among all items, ranks among items the user has not seen, repeat targets,
    cases whose top-scored item is one the user has seen)."""
    predictor = load_predictor(workdir)
    config, data = predictor.config, predictor.data
    test = make_split(data, config.data.protocol, max_len=int(config.data.max_len)).test
    full, unseen, repeats, seen_first = [], [], 0, 0
    for start in range(0, len(test), BATCH):
        rows = range(start, min(start + BATCH, len(test)))
        histories = [h[h > 0] for h in test.histories[rows.start : rows.stop]]
        scores = predictor.scores(histories)
        targets = test.targets[rows.start : rows.stop] - 1
        full.append(np.asarray(metrics.target_ranks(scores, targets)))
        pasts = [
            data.sequences[u][: len(data.sequences[u]) - 1]
            for u in test.users[rows.start : rows.stop]
        ]
        repeats += int(sum(t + 1 in past for t, past in zip(targets, pasts)))
        top = scores.argmax(axis=1) + 1
        seen_first += int(sum(item in past for item, past in zip(top, pasts)))
        mask_seen(scores, targets, pasts)
        unseen.append(np.asarray(metrics.target_ranks(scores, targets)))
    return np.concatenate(full), np.concatenate(unseen), repeats, seen_first


def mask_seen(scores: np.ndarray, targets: np.ndarray, pasts: list[np.ndarray]) -> None:
    """Sets, in place, the score of every item of a case's past to -inf, except its target.

    scores: float [B, N] (column j = item j + 1); targets: [B] columns; pasts: per case, the
    item ids (1..N) the user interacted with before the target (the whole past, not only the
    model's max_len window).
    """
    for row, (target, past) in enumerate(zip(targets, pasts)):
        scores[row, past[past != target + 1] - 1] = -np.inf


def summary(ranks: np.ndarray) -> dict[str, float]:
    values = metrics.metrics_from_ranks(ranks, KS)
    return {name: 100 * float(np.mean(value)) for name, value in values.items()}


def row(workdir: str) -> str:
    full, unseen, repeats, seen_first = test_ranks(workdir)
    committed = os.path.join(workdir, "test_ranks.npy")
    if os.path.exists(committed):
        # The run scored test batches padded to their length bucket, this script to max_len:
        # float rounding may move a near-tie by one place, nothing more.
        differ = np.abs(np.load(committed).astype(np.int64) - full)
        if differ.max() > 1 or np.mean(differ > 0) > 1e-3:
            raise SystemExit(f"{workdir}: recomputed ranks differ from test_ranks.npy")
    a, b = summary(full), summary(unseen)
    with open(os.path.join(workdir, "config.json"), encoding="utf-8") as f:
        seed = json.load(f)["seed"]
    name = os.path.relpath(os.path.abspath(workdir), os.path.join(REPO, "runs"))
    cells = [f"{a[m]:.2f} -> {b[m]:.2f} ({100 * (b[m] / a[m] - 1):+.1f}%)" for m in METRICS]
    share = 100 * seen_first / len(full)
    head = f"| {name} (seed {seed}) | {len(full)} | {repeats} | {share:.1f} | "
    return head + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdirs", nargs="+", help="finished training runs (under runs/)")
    args = parser.parse_args()
    rows = {}
    if os.path.exists(OUTPUT):
        with open(OUTPUT, encoding="utf-8") as f:
            lines = [line.rstrip("\n") for line in f if line.startswith("| ")]
        rows = {line.split(" | ")[0]: line for line in lines if line != HEADER[0]}
    for workdir in args.workdirs:
        line = row(workdir)
        rows[line.split(" | ")[0]] = line
        print(line, flush=True)
    text = [
        "# Test metrics with and without the user's seen items among the candidates (%)",
        "",
        "Generated by `python -m benchmarks.backbones.seen_items WORKDIR...` (module docstring).",
        "",
        *HEADER,
        *sorted(rows.values()),
    ]
    with open(OUTPUT + ".partial", "w", encoding="utf-8") as f:
        f.write("\n".join(text) + "\n")
    os.replace(OUTPUT + ".partial", OUTPUT)


if __name__ == "__main__":
    main()
