"""Stage-1 text throughput: items/s of `encode_texts` on real Beauty titles.

Compares batch sizes and length bucketing (sorted + a few padded lengths vs. one padded
length = max_length) for a text encoder, timing a warm pass (compile excluded) and the first
pass (compile included). Writes <out>.json and <out>.md.

    python -m benchmarks.features.throughput --num_items 2048 --out benchmarks/features/cpu
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
import numpy as np
import transformers

from corrkd_jax.features.encoders import load_encoder
from corrkd_jax.features.items import load_items, view_texts
from corrkd_jax.features.text import bucket_edges, encode_texts
from corrkd_jax.io import library_versions


def _time(texts, encoder, **kwargs) -> tuple[float, float]:
    """(first-pass seconds incl. compile, warm-pass seconds)."""
    start = time.perf_counter()
    encode_texts(texts, encoder, progress=False, **kwargs)
    first = time.perf_counter() - start
    start = time.perf_counter()
    encode_texts(texts, encoder, progress=False, **kwargs)
    return first, time.perf_counter() - start


def token_efficiency(lengths: np.ndarray, buckets, batch_size: int, max_length: int) -> float:
    """Real tokens / tokens the forward passes process (padding and padded rows included)."""
    edges = bucket_edges(buckets, max_length)
    per_bucket = np.bincount(np.searchsorted(edges, lengths), minlength=len(edges))
    processed = sum(
        -(-int(n) // batch_size) * batch_size * e for n, e in zip(per_bucket, edges, strict=True)
    )
    return float(lengths.sum() / processed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="../shared/data/amazon-beauty")
    parser.add_argument("--fields", default="title,idgenrec_text")
    parser.add_argument("--encoder", default="packaged:all-MiniLM-L6-v2")
    parser.add_argument("--num_items", type=int, default=2048, help="first N items (0 = all)")
    parser.add_argument("--batch_sizes", default="32,64,128")
    parser.add_argument("--buckets", default="16,32,64,128")
    parser.add_argument("--max_length", type=int, default=128)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--out", default="benchmarks/features/cpu")
    args = parser.parse_args()
    transformers.logging.set_verbosity_error()

    items = load_items(args.root)
    texts, _ = view_texts(items, tuple(args.fields.split(",")))
    texts = [t for t in texts[1:] if t]
    texts = texts[: args.num_items] if args.num_items else texts
    encoder = load_encoder(args.encoder, "text", dtype=args.dtype)
    lengths = np.array(
        [
            len(ids)
            for ids in encoder.preprocessor(texts, truncation=True, max_length=args.max_length)[
                "input_ids"
            ]
        ]
    )
    buckets = tuple(int(b) for b in args.buckets.split(","))
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    # Bucketed for every batch size; one padded length for the first only (it is slow).
    runs = [(b, "bucketed", buckets) for b in batch_sizes]
    runs.append((batch_sizes[0], "single", (args.max_length,)))
    rows = []
    for batch_size, name, edges in runs:
        first, warm = _time(
            texts, encoder, batch_size=batch_size, length_buckets=edges, max_length=args.max_length
        )
        rows.append(
            {
                "batch_size": batch_size,
                "bucketing": name,
                "buckets": list(edges),
                "token_efficiency": token_efficiency(lengths, edges, batch_size, args.max_length),
                "first_pass_s": first,
                "warm_pass_s": warm,
                "items_per_s": len(texts) / warm,
            }
        )
        print(json.dumps(rows[-1]))
    result = {
        "encoder": args.encoder,
        "dtype": args.dtype,
        "num_texts": len(texts),
        "token_length": {
            "mean": float(lengths.mean()),
            "p50": float(np.median(lengths)),
            "p95": float(np.percentile(lengths, 95)),
            "max": int(lengths.max()),
        },
        "devices": [str(d) for d in jax.devices()],
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "machine": platform.platform(),
        "versions": library_versions(),
        "rows": rows,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + ".json", "w") as handle:
        json.dump(result, handle, indent=2)
    with open(args.out + ".md", "w") as handle:
        handle.write(
            f"# Stage-1 text throughput ({args.encoder}, {args.dtype})\n\n"
            f"{len(texts)} texts from {args.root} ({args.fields}); token length mean "
            f"{lengths.mean():.1f}, p95 {np.percentile(lengths, 95):.0f}, max "
            f"{lengths.max()}. Devices: {result['devices']}; {os.cpu_count()} CPUs, "
            f"1-min load average {result['load_average_1min']:.1f} at the end "
            f"(shared machine: figures are indicative).\n\n"
            "Token efficiency = real tokens / tokens processed (padding to the bucket "
            "length and the padded rows of each bucket's last batch included).\n\n"
            "| batch | bucketing | token efficiency | first pass (s, incl. compile) | "
            "warm pass (s) | items/s (warm) |\n|---|---|---|---|---|---|\n"
        )
        for r in rows:
            handle.write(
                f"| {r['batch_size']} | {r['bucketing']} {tuple(r['buckets'])} | "
                f"{r['token_efficiency']:.2f} | "
                f"{r['first_pass_s']:.1f} | {r['warm_pass_s']:.1f} | "
                f"{r['items_per_s']:.0f} |\n"
            )
    print(f"wrote {args.out}.json and {args.out}.md")


if __name__ == "__main__":
    main()
