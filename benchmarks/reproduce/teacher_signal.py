"""How much does the teacher know about Beauty's next items? (issue 7 investigation)

    python -m benchmarks.reproduce.teacher_signal

KDSR distils the teacher's item-item cosine into the view tables. That can only help ranking if
the teacher's similarity says something about which item comes next. This script measures it
directly on the leave-one-out **test** split (22,363 cases, full ranking over 12,101 items; the
split the study reports, used here only to describe representations, never to select a model):

1. a similarity recommender per item representation: score every item by its cosine to the
   last history item (the last item itself excluded), HR/NDCG@10/20, beside popularity;
2. consecutive training pairs (history's last item -> target) against random pairs: the mean
   cosine of each and the AUC, P(cos(consecutive) > cos(random));
3. the Pearson agreement of each learned table with the title/attr teacher over the study's
   fixed random pairs (`corrkd_jax.trainer.agreement`), e.g. how much teacher structure a
   behaviour-only `id_only` model learns by itself.

Representations: the MiniLM features (raw 384-d, PCA-128 as trained with, the released
autoencoder's 128-d) and the tables of the study's seed-0 session-graph runs (best
checkpoints in `runs/reproduce/...`; runs that are not there locally are listed as missing).
Writes `results/beauty/capped10/teacher_signal.md` and `.json`.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

from benchmarks.machine import machine_info
from corrkd_jax.metrics import metrics_from_ranks
from corrkd_jax.trainer.agreement import (
    agreement_pairs,
    correlation_agreement,
    pair_cosines,
)
from corrkd_jax.trainer.config_files import load_config_file
from corrkd_jax.trainer.setup import load_data, split_data

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

OUT = os.path.join(REPO, "results", "beauty", "capped10", "teacher_signal")
FEATURE_DIRS = {
    "PCA 128 (trained with)": ".cache/features/beauty_minilm_pca",
    "autoencoder 128 (released)": ".cache/features/beauty_minilm",
}
RUNS = os.path.join(REPO, "runs", "reproduce", "leave_one_out", "session_graph")
# (run variant, parameter name) of the learned tables to describe.
TABLES = (
    ("id_only", "item_embedding"),
    ("feature_init", "item_embedding"),
    ("feature_init", "view_title"),
    ("feature_init", "view_attr"),
    ("kdsr", "item_embedding"),
    ("kdsr", "view_title"),
    ("kdsr", "view_attr"),
)
KS = (10, 20)
NUM_PAIRS = 200_000
SEED = 0


def unit_rows(table: np.ndarray) -> np.ndarray:
    table = np.asarray(table, np.float32)
    return table / np.maximum(np.linalg.norm(table, axis=1, keepdims=True), 1e-8)


def tie_broken_ranks(
    scores: np.ndarray, targets: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """1-based ranks of `targets` in `scores` [b, N + 1], ties broken uniformly at random.

    Content features give many exact ties (items with identical attribute text have identical
    vectors; popularity counts repeat), and `1 + #{higher}` would put the target first among
    its ties, which flatters such a scorer. Random order among ties is the fair expectation.
    """
    target = scores[np.arange(len(targets)), targets][:, None]
    higher = (scores > target).sum(1)
    tied_others = (scores == target).sum(1) - 1
    return 1 + higher + rng.integers(0, tied_others + 1)


def similarity_ranks(
    table: np.ndarray,
    last: np.ndarray,
    targets: np.ndarray,
    rng: np.random.Generator,
    chunk: int = 2048,
) -> np.ndarray:
    """Rank of each target among items 1..N by cosine to the last history item (the last item
    and padding row 0 excluded)."""
    unit = unit_rows(table)
    ranks = np.empty(len(targets), np.int64)
    for start in range(0, len(targets), chunk):
        rows = slice(start, start + chunk)
        scores = unit[last[rows]] @ unit.T  # [b, N + 1]
        scores[:, 0] = -np.inf
        scores[np.arange(scores.shape[0]), last[rows]] = -np.inf
        ranks[rows] = tie_broken_ranks(scores, targets[rows], rng)
    return ranks


def popularity_ranks(
    counts: np.ndarray, targets: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    scores = np.broadcast_to(counts.astype(np.float64), (len(targets), len(counts))).copy()
    scores[:, 0] = -np.inf
    return tie_broken_ranks(scores, targets, rng)


def ranking_row(ranks: np.ndarray) -> dict[str, float]:
    metrics = metrics_from_ranks(ranks, KS)
    return {
        name: float(np.mean(metrics[name]))
        for m in ("HR", "NDCG")
        for k in KS
        for name in [f"{m}@{k}"]
    }


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(positive > negative) + P(tie) / 2: the Mann-Whitney U statistic over n1 * n2, with
    average ranks for tied values."""
    values = np.concatenate([positive, negative])
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2  # 1-based mean rank of each value
    ranks = average_rank[inverse]
    n1, n2 = len(positive), len(negative)
    return float((ranks[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n2))


def pair_row(table: np.ndarray, consecutive: np.ndarray, random: np.ndarray) -> dict[str, float]:
    near, far = pair_cosines(table, consecutive), pair_cosines(table, random)
    return {
        "cos_consecutive": float(near.mean()),
        "cos_random": float(far.mean()),
        "auc": auc(near, far),
    }


def learned_tables() -> tuple[dict[str, np.ndarray], list[str]]:
    from corrkd_jax.trainer.checkpointing import Checkpoints

    tables, missing = {}, []
    for variant, name in TABLES:
        workdir = os.path.join(RUNS, variant, "seed0")
        if not os.path.isdir(os.path.join(workdir, "checkpoints")):
            missing.append(f"{variant}/{name}")
            continue
        checkpoints = Checkpoints(workdir, metric="NDCG@10", read_only=True)
        try:
            params, _ = checkpoints.restore_best()
        finally:
            checkpoints.close()
        tables[f"{variant} run: {name} (learned)"] = np.asarray(params[name]["embedding"])
    return tables, missing


def main() -> None:
    started = time.perf_counter()
    config = load_config_file(os.path.join(REPO, "configs", "beauty.py"), "session_graph,kdsr")
    os.chdir(REPO)  # config paths are repo-relative
    data = load_data(config)
    split = split_data(config, data)
    num_items = data.items.num_items
    test_last, test_targets = split.test.histories[:, -1], split.test.targets
    train_last, train_targets = split.train.histories[:, -1], split.train.targets

    rng = np.random.default_rng(SEED)
    distinct = np.flatnonzero((train_last != train_targets) & (train_last > 0))
    pick = rng.choice(distinct, min(NUM_PAIRS, len(distinct)), replace=False)
    consecutive = np.stack([train_last[pick], train_targets[pick]], axis=1)
    random_pairs = agreement_pairs(num_items, len(consecutive), seed=SEED + 1)
    fixed_pairs = agreement_pairs(num_items)  # the pairs the trainer's agreement uses

    representations: dict[str, np.ndarray] = {}
    for view in ("title", "attr"):
        representations[f"{view}: MiniLM raw 384"] = np.load(
            os.path.join(FEATURE_DIRS["PCA 128 (trained with)"], f"{view}.npy")
        )
        for label, folder in FEATURE_DIRS.items():
            path = os.path.join(folder, f"{view}.reduced.npy")
            if os.path.exists(path):
                representations[f"{view}: MiniLM {label}"] = np.load(path)
    # The teacher of each view is the table the study trained with (loaded above).
    teachers = {
        view: representations[f"{view}: MiniLM PCA 128 (trained with)"]
        for view in ("title", "attr")
    }
    tables, missing = learned_tables()
    representations.update(tables)

    counts = np.bincount(train_targets, minlength=num_items + 1)
    rows = {
        "popularity (training targets)": ranking_row(popularity_ranks(counts, test_targets, rng))
    }
    for label, table in representations.items():
        if table.shape[0] != num_items + 1:
            raise ValueError(f"{label}: {table.shape[0]} rows, expected {num_items + 1}")
        row = ranking_row(similarity_ranks(table, test_last, test_targets, rng))
        row.update(pair_row(table, consecutive, random_pairs))
        for view, teacher in teachers.items():
            row[f"agreement_{view}"] = correlation_agreement(table, teacher, fixed_pairs)
        rows[label] = row
        print(f"{label}: {row}", flush=True)

    seconds = time.perf_counter() - started
    machine = machine_info()
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT + ".json", "w") as f:
        json.dump(
            {
                "rows": rows,
                "missing_runs": missing,
                "machine": machine,
                "test_cases": int(len(test_targets)),
                "consecutive_pairs": int(len(consecutive)),
                "seconds": seconds,
            },
            f,
            indent=1,
        )
    header = (
        "| representation | HR@10 | NDCG@10 | HR@20 | NDCG@20 | cos consecutive | "
        "cos random | AUC consecutive vs random | agreement title | agreement attr |"
    )
    lines = [
        "# Teacher signal on Beauty: does feature similarity predict the next item?",
        "",
        f"`python -m benchmarks.reproduce.teacher_signal` ({seconds:.0f} s; "
        f"{machine['usable_cores']} cores of {machine['cpu_model']}, load "
        f"{machine['load_average_1_5_15min']}).",
        "",
        f"Ranking: test split ({len(test_targets):,} cases), every item scored by its "
        "cosine to the last history item (that item excluded; exact ties, common with "
        "attribute text, broken at random), full ranking, %. Pairs: "
        f"{len(consecutive):,} consecutive training pairs (last history item -> target, "
        "distinct) vs as many random pairs. Agreement: Pearson of the table's and the "
        "teacher's (PCA-128) pair cosines over the trainer's 20,000 fixed random pairs.",
        "",
        header,
        "|---|" + "---:|" * 9,
    ]
    for label, row in rows.items():
        cells = [f"{100 * row[m]:.2f}" for m in ("HR@10", "NDCG@10", "HR@20", "NDCG@20")]
        cells += [
            f"{row[k]:.3f}" if k in row else "-"
            for k in ("cos_consecutive", "cos_random", "auc", "agreement_title", "agreement_attr")
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if missing:
        lines += ["", f"Runs not found locally (not measured): {', '.join(missing)}."]
    with open(OUT + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
