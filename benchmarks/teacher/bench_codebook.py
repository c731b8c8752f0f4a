"""Benchmark: teacher preparation (`fit_codebook`) time and peak memory versus catalogue size.

Each N runs in a fresh subprocess so its peak RSS (VmHWM) is its own. N = 12,101 uses the
real Beauty reduced `title` features when `.cache/features/beauty_minilm/title.reduced.npy`
exists (else synthetic); 100k and 1M are synthetic: sigmoid(normal) rows of width 128, like
the reduced stage-1 features (autoencoder with a sigmoid encoder). Defaults of `fit_codebook`
(K = 50, D = 8, cos, 2M pairs, k-means++). Writes `results.json` and `results.md` here.

    python -m benchmarks.teacher.bench_codebook [--sizes 12101 100000 1000000] [--repeats 3]

Targets (2-core CPU): <= 30 s and < 1 GiB at 12k; memory linear in N; 1M < 10 min, < 24 GiB.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.machine import machine_info
from corrkd_jax.io import write_text

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BEAUTY_TITLE = REPO / ".cache" / "features" / "beauty_minilm" / "title.reduced.npy"
DIM = 128


def _vm_hwm_mib() -> float:
    """Peak resident set size of this process (VmHWM), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def worker(n: int, repeats: int, seed: int) -> dict:
    """Runs in the subprocess: load/generate features for N items, fit `repeats` times."""
    import numpy as np

    from corrkd_jax.teacher import fit_codebook

    source = "synthetic sigmoid(normal)"
    if n == 12_101 and BEAUTY_TITLE.exists():
        features = np.load(BEAUTY_TITLE).astype(np.float32)
        source = f"real: {BEAUTY_TITLE.relative_to(REPO)}"
        if features.shape[1] != DIM:
            source += f" (d={features.shape[1]})"
    else:
        # sigmoid(z), computed in place so generation does not set the memory peak.
        features = np.random.default_rng(seed).standard_normal((n + 1, DIM), dtype=np.float32)
        np.negative(features, out=features)
        np.exp(features, out=features)
        features += 1.0
        np.reciprocal(features, out=features)
        features[0] = 0.0
    rss_before = _vm_hwm_mib()
    times, stats = [], {}
    for r in range(repeats):
        start = time.perf_counter()
        _, stats = fit_codebook(features, seed=seed + r)
        times.append(time.perf_counter() - start)
    return {
        "num_items": int(features.shape[0] - 1),
        "dim": int(features.shape[1]),
        "features": source,
        "feature_mib": features.nbytes / 2**20,
        "peak_rss_before_fit_mib": rss_before,
        "peak_rss_mib": _vm_hwm_mib(),
        "seconds_first_call": times[0],
        "seconds_each": times,
        "seconds_median": statistics.median(times[1:] if len(times) > 1 else times),
        "iterations": stats["iterations"],
        "inertia": stats["inertia"],
        "mean_quantisation_error": stats["mean_quantisation_error"],
        "dead_codes": stats["dead_codes"],
        "reseeded_codes": stats["reseeded_codes"],
        "num_pairs": stats["num_pairs"],
    }


def to_markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        "# Codebook fit (teacher preparation): time and peak memory",
        "",
        f"Machine: {m['usable_cores']} usable cores ({m['cpu_model']}), device "
        f"{m['device_kind']}; jax {m['jax']}, flax {m['flax']}, numpy {m['numpy']}.",
        f"Settings: `fit_codebook` defaults (K = 50, D = 8, cos, {result['num_pairs']:,} pairs, "
        f"k-means++), d = {DIM}. Time: median over repeats after the first (compiling) call.",
        f"Note: {result['note']} (load average 1/5/15 min at the end: "
        f"{', '.join(map(str, m.get('load_average_1_5_15min', [])))}).",
        "",
        "Targets (2-core CPU): <= 30 s and < 1 GiB at 12k; memory linear in N; 1M items "
        "< 10 min within 24 GiB. Peak RSS includes the features, the JAX runtime and the "
        "sampled pair vectors.",
        "",
        "| N items | features | fit s (median) | first call s | Lloyd iters | peak RSS MiB | "
        "RSS before fit MiB | feature MiB | mean quant. error |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["runs"]:
        lines.append(
            f"| {r['num_items']:,} | {r['features']} | {r['seconds_median']:.1f} | "
            f"{r['seconds_first_call']:.1f} | {r['iterations']} | {r['peak_rss_mib']:.0f} | "
            f"{r['peak_rss_before_fit_mib']:.0f} | {r['feature_mib']:.0f} | "
            f"{r['mean_quantisation_error']:.4f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[12_101, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--note", default="measured on a 2-core CPU shared with other jobs: times are upper bounds"
    )
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.repeats, args.seed)))
        return

    runs = []
    for n in args.sizes:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.teacher.bench_codebook",
                "--worker",
                str(n),
                "--repeats",
                str(args.repeats),
                "--seed",
                str(args.seed),
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO,
        )
        if proc.returncode != 0:
            raise SystemExit(f"worker N={n} failed:\n{proc.stderr}")
        run = json.loads(proc.stdout.strip().splitlines()[-1])
        print(json.dumps(run), flush=True)
        runs.append(run)
    result = {
        "machine": machine_info(),
        "num_pairs": runs[0]["num_pairs"],
        "repeats": args.repeats,
        "note": args.note,
        "runs": runs,
    }
    write_text(args.out / "results.json", json.dumps(result, indent=2) + "\n")
    markdown = to_markdown(result)
    write_text(args.out / "results.md", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
