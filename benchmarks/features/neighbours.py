"""Sanity check of stage-1 features: nearest items by cosine, and the cosine spread.

For `--num_queries` random items, lists the `--k` nearest items by cosine of the reduced view
(title + brand shown, so agreement is visible). Also reports, for the autoencoder features on
disk and a PCA reduction of the same raw features, the mean/std of the cosine of random item
pairs and the top-10 neighbour overlap with the raw features. Writes <out>.md and <out>.json.

    python -m benchmarks.features.neighbours --features .cache/features/beauty_minilm \\
        --out benchmarks/features/beauty_neighbours
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from corrkd_jax.features.items import load_items
from corrkd_jax.features.reduce import cosine_spread, reduce_features


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def nearest(x: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Top-k rows by cosine for each query row of x [N + 1, d] (self and row 0 excluded)."""
    sims = _unit(x[queries]) @ _unit(x).T
    sims[np.arange(len(queries)), queries] = -np.inf
    sims[:, 0] = -np.inf
    return np.argsort(-sims, axis=1)[:, :k]


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Mean fraction of shared entries between rows of two [q, k] index arrays."""
    return float(np.mean([len(set(x) & set(y)) / len(x) for x, y in zip(a, b, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", default=".cache/features/beauty_minilm")
    parser.add_argument("--root", default="../shared/data/amazon-beauty")
    parser.add_argument("--view", default="title")
    parser.add_argument("--num_queries", type=int, default=5)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/features/beauty_neighbours")
    args = parser.parse_args()

    items = load_items(args.root)
    raw = np.load(os.path.join(args.features, f"{args.view}.npy"))
    reduced = np.load(os.path.join(args.features, f"{args.view}.reduced.npy"))
    pca, pca_stats = reduce_features(raw, "pca", reduced.shape[1], seed=args.seed)
    rng = np.random.default_rng(args.seed)
    queries = rng.choice(np.arange(1, items.num_items + 1), args.num_queries, replace=False)
    title = items.fields.get("title", items.fields.get("idgenrec_text"))
    attrs = items.fields.get("attributes")

    def label(i: int) -> str:
        brand = f" [{attrs[i].split('|')[0]}]" if attrs is not None and attrs[i] else ""
        return f"{i}: {title[i] or '(no title)'}{brand}"

    lines = [
        f"# Nearest items by cosine of the reduced `{args.view}` view\n",
        f"Features: `{args.features}`; {args.num_queries} random items (seed {args.seed}),"
        f" {args.k} nearest each; in brackets the first `attributes` entry"
        " (the brand, or the top category when the brand is unknown).\n",
    ]
    for q, row in zip(queries, nearest(reduced, queries, args.k), strict=True):
        lines.append(f"- **{label(q)}**")
        lines.extend(f"  - {label(i)}" for i in row)
    probe = rng.choice(np.arange(1, items.num_items + 1), 500, replace=False)
    truth = nearest(raw, probe, 10)
    spread = {
        name: {
            **cosine_spread(x, seed=args.seed),
            "top10_overlap_with_raw": overlap(truth, nearest(x, probe, 10)),
        }
        for name, x in (("raw", raw), ("autoencoder", reduced), ("pca", pca))
    }
    lines.append("\n## Cosine of random item pairs (20k pairs) and neighbour agreement\n")
    lines.append("| features | dim | cos mean | cos std | top-10 overlap with raw (500 items) |")
    lines.append("|---|---|---|---|---|")
    for name, x in (("raw", raw), ("autoencoder", reduced), ("pca", pca)):
        s = spread[name]
        lines.append(
            f"| {name} | {x.shape[1]} | {s['mean']:.3f} | {s['std']:.4f} | "
            f"{s['top10_overlap_with_raw']:.2f} |"
        )
    lines.append(
        f"\nPCA relative reconstruction error at this dim: {pca_stats['relative_error']:.3f}."
    )
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.out + ".md", "w") as handle:
        handle.write(text)
    with open(args.out + ".json", "w") as handle:
        json.dump(
            {
                "queries": queries.tolist(),
                "spread": spread,
                "pca_relative_error": pca_stats["relative_error"],
            },
            handle,
            indent=2,
        )


if __name__ == "__main__":
    main()
