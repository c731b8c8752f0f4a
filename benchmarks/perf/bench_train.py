"""Benchmark 1: training throughput on Beauty, per backbone x variant, after compilation.

Beauty leave-one-out training, `configs/beauty.py:<backbone>,<variant>` as users run it (plus
`--set` overrides; each row states its training mode, batch and width): prefixes are 131,413
cases per epoch, whole sequences 22,512 windows holding the same 131,413 targets; max_len 50,
length buckets (10, 20, 30, 50), views `title` + `attr` (MiniLM, PCA to d). For each backbone x
variant the trainer's jitted
`train_step` (state donated) runs a sample of real batches of epoch 0 with the epoch's bucket
mix (`--sample` batches, stratified by length bucket), each step timed alone including
building the batch (as the trainer does without prefetch); the epoch time is extrapolated
from the per-bucket median step times and the epoch's batches per bucket.
Compilation (every batch shape the sample needs) is timed separately. `--single-bucket`
repeats each configuration with one bucket of 50 (no length bucketing): the bucketing
speed-up of issue 2.

    python -m benchmarks.perf.bench_train [--backbones session_graph sasrec gru4rec]
        [--variants id_only kdsr] [--sample 60] [--repeats 3] [--single-bucket]
        [--set kd.pack_pairs=false ...] [--name train]

Writes `<name>.json` and `<name>.md` here. The teacher codebooks are fitted on 200k pairs
(step time does not depend on their values).
"""

from __future__ import annotations

import argparse
import gc
from typing import Any

from benchmarks.perf import common
from benchmarks.perf.profile_step import parse_sets


def run_one(
    backbone: str, variant: str, sets: dict[str, Any], sample: int, repeats: int
) -> dict[str, Any]:
    """Throughput of one configuration (see the module docstring)."""
    config = common.beauty_config(backbone, variant, **sets)
    bench = common.make_bench(config)
    ids = common.stratified_batches(bench.train_loader.plan(0).lengths, sample)
    result = common.time_steps(bench, ids, repeats=repeats)
    result.update(
        {
            "backbone": backbone,
            "variant": variant,
            "train_on": config.data.train_on,
            "batch_size": int(config.batch_size),
            "dim": int(config.model.dim),
            "steps_per_epoch": bench.train_loader.num_batches,
            "length_buckets": list(config.data.length_buckets),
            "pack_pairs": bench.train_loader.packs_pairs,
            "setup_seconds": bench.setup_seconds,
            "teacher_seconds_200k_pairs": bench.teacher_seconds,
        }
    )
    print(
        f"{backbone:>13} {variant:>8} buckets {result['length_buckets']}: "
        f"{result['epoch_seconds']:7.1f} s/epoch, {result['sequences_per_second']:6.0f} seq/s,"
        f" compile {result['compile_seconds']:.1f} s ({result['compiled_shapes_in_sample']} "
        f"shapes; epoch needs {result['epoch_shapes']})",
        flush=True,
    )
    del bench
    gc.collect()
    return result


def to_markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# Training throughput on Beauty (benchmark 1)",
        "",
        f"Machine: {m['usable_cores']} cores ({m['cpu_model']}), {m['device_count']} x "
        f"{m['device_kind']}; jax {m['jax']}, flax {m['flax']}, optax {m['optax']}, numpy "
        f"{m['numpy']}. {result['note']}.",
        f"Settings: configs/beauty.py:<backbone>,<variant> (max_len 50, views title + attr, "
        f"131,413 training targets per epoch; training mode, batch and width per row); "
        f"overrides: {result['settings'] or 'none'}.",
        f"Method: {result['sample']} real batches of epoch 0 sampled with the epoch's bucket "
        f"mix, {result['repeats']} repeats; each step timed alone (batch building "
        "included, no prefetch); epoch = sum over buckets of (batches in the epoch x median "
        "step of the bucket), i.e. extrapolated from the sample to the epoch's steps. Compile = "
        "every batch shape of the sample, once (the epoch needs `shapes` compiles).",
        "",
        "| backbone | variant | trains on | B | d | steps | buckets | s/epoch | cases/s "
        "| ms/step Lb 10 / 20 / 30 / 50 | compile s | shapes |",
        "|---|---|---|---:|---:|---:|---|---:|---:|---|---:|---:|",
    ]
    for r in result["runs"]:
        steps = r["step_seconds_median_per_bucket"]
        per = " / ".join(f"{1000 * steps[k]:.0f}" for k in ("10", "20", "30", "50") if k in steps)
        lines.append(
            f"| {r['backbone']} | {r['variant']} | {r.get('train_on', 'prefixes')} | "
            f"{r.get('batch_size', 256)} | {r.get('dim', 128)} | "
            f"{r.get('steps_per_epoch', 514)} | {','.join(map(str, r['length_buckets']))}"
            f" | {r['epoch_seconds']:.1f} | {r['sequences_per_second']:.0f} | {per} | "
            f"{r['compile_seconds']:.1f} | {r['epoch_shapes']} |"
        )
    speedups = result.get("bucketing_speedup", {})
    if speedups:
        lines += [
            "",
            "Length bucketing (10, 20, 30, 50) vs one bucket of 50, epoch time ratio:",
            "",
        ]
        lines += [f"- {key}: {value:.2f}x" for key, value in speedups.items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["session_graph", "sasrec", "gru4rec"])
    parser.add_argument("--variants", nargs="+", default=["id_only", "kdsr"])
    parser.add_argument("--sample", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--single-bucket",
        action="store_true",
        help="also time each configuration with one bucket of 50",
    )
    parser.add_argument("--single-bucket-sample", type=int, default=15)
    parser.add_argument("--single-bucket-repeats", type=int, default=1)
    parser.add_argument("--set", nargs="*", default=[], dest="sets")
    parser.add_argument("--name", default="train")
    args = parser.parse_args()
    common.print_machine(common.machine_info())
    sets = parse_sets(args.sets)
    runs, speedups = [], {}
    for backbone in args.backbones:
        for variant in args.variants:
            bucketed = run_one(backbone, variant, sets, args.sample, args.repeats)
            runs.append(bucketed)
            if args.single_bucket:
                single = run_one(
                    backbone,
                    variant,
                    {**sets, "data.length_buckets": (50,)},
                    args.single_bucket_sample,
                    args.single_bucket_repeats,
                )
                runs.append(single)
                speedups[f"{backbone} {variant}"] = (
                    single["epoch_seconds"] / bucketed["epoch_seconds"]
                )
    info = common.machine_info()
    result = {
        "machine": info,
        "note": common.load_note(info),
        "settings": sets,
        "sample": args.sample,
        "repeats": args.repeats,
        "runs": runs,
        "bucketing_speedup": speedups,
    }
    common.write_outputs(args.name, result, to_markdown(result))


if __name__ == "__main__":
    common.run_cli(main)
