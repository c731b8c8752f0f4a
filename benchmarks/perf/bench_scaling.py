"""Benchmark 4: step time versus batch size, padded length and catalogue size.

1. Batch size (64 .. 1024) at padded length Lb = 10 (the most common Beauty bucket) and
2. padded length (10 .. 50, buckets (10, 20, 30, 40, 50)) at B = 256: one real Beauty batch
   per point (histories of the bucket, i.e. real lengths in (Lb - 10, Lb]), the trainer's
   jitted `train_step`, median of `--repeats` steps after compilation; backbones session_graph
   and sasrec, variants id_only and kdsr.
3. Catalogue size N = 12,101 (Beauty), 100k and 1M items: `sasrec` with N items and random
   view features [N + 1, 128], Beauty batches of the Lb = 10 bucket with the item ids mapped
   by a seeded random injection into 1..N. Per N and variant (fresh subprocess each, so its
   peak RSS is its own): the train step with the full softmax (the method) and with the
   sampled-softmax option (`num_negatives`, S shared uniform negatives), and the eval step
   scoring all N items at once vs `eval.item_chunk` items at a time; the full Beauty test
   evaluation time is extrapolated from one batch (88 batches of 256).

    python -m benchmarks.perf.bench_scaling [--parts batch length catalogue]
        [--catalogue 12101 100000 1000000] [--negatives 8192] [--item-chunk 65536]
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import time
from typing import Any

from benchmarks.perf import common
from benchmarks.perf.profile_step import parse_sets

BEAUTY_TEST_BATCHES = 88  # ceil(22,363 / 256)
# The setting these scaling curves measure (and scaling.md reports): prefix batches of 256
# at d 128, whatever the current configs/beauty.py defaults of a backbone are.
PREFIX_SETTINGS = {"data.train_on": "prefixes", "batch_size": 256, "model.dim": 128}


def time_compiled(fn: Any, args: tuple, repeats: int, carry_state: bool) -> dict[str, float]:
    """Compile once, then the median of `repeats` calls (`carry_state`: args[0] is the
    donated train state, threaded through the calls)."""
    import jax

    start = time.perf_counter()
    compiled = fn.lower(*args).compile()
    compile_seconds = time.perf_counter() - start
    memory = compiled.memory_analysis()
    args = list(args)
    out = compiled(*args)
    if carry_state:
        args[0] = out[0]
    jax.block_until_ready(out)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = compiled(*args)
        jax.block_until_ready(out)
        times.append(time.perf_counter() - start)
        if carry_state:
            args[0] = out[0]
    return {
        "seconds": common.median(times),
        "compile_seconds": compile_seconds,
        "temp_mib": memory.temp_size_in_bytes / 2**20 if memory else float("nan"),
    }


def first_batch(loader: Any, length: int) -> dict[str, Any]:
    """The first full batch of epoch 0 with padded length `length`."""
    import numpy as np

    plan = loader.plan(0)
    full = (plan.rows >= 0).all(1)
    index = int(np.flatnonzero((plan.lengths == length) & full)[0])
    return loader.dataset(0)[index]


def step_point(
    backbone: str,
    variant: str,
    batch_size: int,
    length: int,
    buckets: tuple,
    repeats: int,
    sets: dict[str, Any],
) -> dict[str, Any]:
    """ms/step of one (B, Lb) point on a real Beauty batch."""
    from corrkd_jax.trainer import sharding

    config = common.beauty_config(
        backbone,
        variant,
        **{**PREFIX_SETTINGS, "batch_size": batch_size, "data.length_buckets": buckets},
        **sets,
    )
    bench = common.make_bench(config, codebook_pairs=50_000)
    batch = sharding.shard_batch(first_batch(bench.train_loader, length), bench.mesh)
    timing = time_compiled(
        bench.train_fn,
        (bench.state, batch, bench.teacher, bench.weights),
        repeats,
        carry_state=True,
    )
    result = {
        "backbone": backbone,
        "variant": variant,
        "batch_size": batch_size,
        "length": length,
        **timing,
        "sequences_per_second": batch_size / timing["seconds"],
    }
    print(
        f"{backbone:>13} {variant:>8} B {batch_size:5d} Lb {length:2d}: "
        f"{1000 * timing['seconds']:8.1f} ms/step, {result['sequences_per_second']:6.0f} seq/s",
        flush=True,
    )
    return result


def catalogue_worker(
    num_items: int, variant: str, negatives: int, item_chunk: int, repeats: int
) -> dict[str, Any]:
    """Runs in a subprocess: train/eval step times of sasrec with `num_items` items."""
    import dataclasses

    import jax
    import jax.numpy as jnp
    import numpy as np

    from corrkd_jax.models import build_model
    from corrkd_jax.trainer import sharding
    from corrkd_jax.trainer.assemble import build_run, compile_steps
    from corrkd_jax.trainer.setup import Experiment, load_data, split_data
    from corrkd_jax.trainer.steps import create_train_state
    from corrkd_jax.variants import get_variant

    config = common.beauty_config("sasrec", variant, **PREFIX_SETTINGS, **{"kd.kmeans_iters": 10})
    data = load_data(config)
    split = split_data(config, data)
    rng = np.random.default_rng(0)
    # Beauty ids 1..12,101 -> distinct random ids in 1..N (0 stays padding).
    mapping = np.zeros(data.items.num_items + 1, np.int32)
    mapping[1:] = rng.choice(num_items, data.items.num_items, replace=False) + 1
    train = dataclasses.replace(
        split.train, histories=mapping[split.train.histories], targets=mapping[split.train.targets]
    )
    features = {}
    for view in tuple(config.model.views) if variant != "id_only" else ():
        table = rng.standard_normal((num_items + 1, int(config.model.dim)), dtype=np.float32)
        table[0] = 0.0
        features[view] = table
    # The trainer's own assembly over the remapped catalogue of N items.
    experiment = Experiment(
        data=data,
        split=dataclasses.replace(split, train=train),
        variant=get_variant(variant),
        features=features,
        model=build_model(config, num_items, features),
    )
    parts = build_run(config, experiment=experiment, codebook_pairs=20_000)
    batch = sharding.shard_batch(first_batch(parts.train_loader, 10), parts.mesh)
    params = parts.state.params
    result = {
        "num_items": num_items,
        "variant": variant,
        "negatives": negatives,
        "item_chunk": item_chunk,
    }

    def steps_with(**overrides: Any) -> tuple[Any, Any]:
        """The trainer's compiled steps with `overrides` (num_negatives, eval.item_chunk)."""
        changed = copy.deepcopy(config)
        changed.update_from_flattened_dict(overrides)
        train_fn, eval_fn = compile_steps(changed, experiment, parts.tx, parts.mesh)
        return train_fn.jitted, eval_fn.jitted

    for name, s in (("train_full_softmax", 0), ("train_sampled_softmax", negatives)):
        # A copy: the step donates its state, and `params` is used again below.
        state = create_train_state(jax.tree.map(jnp.copy, params), parts.tx, jax.random.key(1))
        fn, _ = steps_with(num_negatives=s)
        args = (state, batch, parts.teacher, parts.weights)
        result[name] = time_compiled(fn, args, repeats, True)
        print(
            f"  N {num_items:8d} {variant:>8} {name}: {1000 * result[name]['seconds']:.0f} ms/step",
            file=sys.stderr,
            flush=True,
        )
    for name, chunk in (("eval_all_items", 0), ("eval_item_chunks", item_chunk)):
        _, fn = steps_with(**{"eval.item_chunk": chunk})
        result[name] = time_compiled(fn, (params, batch), repeats, False)
        result[name]["beauty_test_seconds"] = BEAUTY_TEST_BATCHES * result[name]["seconds"]
    result["peak_rss_mib"] = common.vm_hwm_mib()
    return result


def catalogue_point(
    num_items: int, variant: str, negatives: int, item_chunk: int, repeats: int
) -> dict[str, Any]:
    """catalogue_worker in a fresh subprocess (own peak RSS); its JSON result."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.perf.bench_scaling",
        "--worker",
        str(num_items),
        variant,
        "--negatives",
        str(negatives),
        "--item-chunk",
        str(item_chunk),
        "--repeats",
        str(repeats),
    ]
    out = subprocess.run(
        command, check=True, capture_output=True, text=True, cwd=common.REPO
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    print(
        f"N {num_items:8d} {variant:>8}: train full {result['train_full_softmax']['seconds']:.2f}"
        f" s, sampled {result['train_sampled_softmax']['seconds']:.2f} s; eval batch all "
        f"{result['eval_all_items']['seconds']:.3f} s, chunked "
        f"{result['eval_item_chunks']['seconds']:.3f} s; peak RSS "
        f"{result['peak_rss_mib']:.0f} MiB",
        flush=True,
    )
    return result


def to_markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# Scaling: step time vs batch size, padded length and catalogue size (benchmark 4)",
        "",
        f"Machine: {m['usable_cores']} cores ({m['cpu_model']}), {m['device_kind']}; "
        f"jax {m['jax']}, flax {m['flax']}. {result['note']}.",
        f"Median of {result['repeats']} steps after compilation; real Beauty batches "
        "(d 128, two views for kdsr).",
        "",
    ]
    if result.get("batch"):
        lines += [
            "## Batch size (Lb = 10)",
            "",
            "| backbone | variant | B | ms/step | seq/s |",
            "|---|---|---:|---:|---:|",
        ]
        lines += [
            f"| {r['backbone']} | {r['variant']} | {r['batch_size']} | "
            f"{1000 * r['seconds']:.1f} | {r['sequences_per_second']:.0f} |"
            for r in result["batch"]
        ]
        lines.append("")
    if result.get("length"):
        lines += [
            "## Padded length (B = 256)",
            "",
            "| backbone | variant | Lb | ms/step | seq/s |",
            "|---|---|---:|---:|---:|",
        ]
        lines += [
            f"| {r['backbone']} | {r['variant']} | {r['length']} | "
            f"{1000 * r['seconds']:.1f} | {r['sequences_per_second']:.0f} |"
            for r in result["length"]
        ]
        lines.append("")
    if result.get("catalogue"):
        lines += [
            "## Catalogue size (sasrec, B = 256, Lb = 10)",
            "",
            "Train step: full softmax over N (the method) vs sampled softmax "
            f"(`num_negatives` = {result['negatives']}, an option that changes results). "
            "Eval: one batch of 256 ranked against all N items, all scores at once vs "
            f"`eval.item_chunk` = {result['item_chunk']} items at a time (same ranks); "
            "Beauty test = 88 such batches. temp = XLA temporaries of the step.",
            "",
            "| N | variant | train full s | temp MiB | train sampled s | temp MiB | "
            "eval batch all s | temp MiB | eval chunked s | temp MiB | test eval s "
            "(all / chunked) | peak RSS MiB |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
        ]
        for r in result["catalogue"]:
            t, s = r["train_full_softmax"], r["train_sampled_softmax"]
            a, c = r["eval_all_items"], r["eval_item_chunks"]
            lines.append(
                f"| {r['num_items']:,} | {r['variant']} | {t['seconds']:.3f} | "
                f"{t['temp_mib']:.0f} | {s['seconds']:.3f} | {s['temp_mib']:.0f} | "
                f"{a['seconds']:.3f} | {a['temp_mib']:.0f} | {c['seconds']:.3f} | "
                f"{c['temp_mib']:.0f} | {a['beauty_test_seconds']:.1f} / "
                f"{c['beauty_test_seconds']:.1f} | {r['peak_rss_mib']:.0f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["batch", "length", "catalogue"])
    parser.add_argument("--backbones", nargs="+", default=["session_graph", "sasrec"])
    parser.add_argument("--variants", nargs="+", default=["id_only", "kdsr"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[64, 128, 256, 512, 1024])
    parser.add_argument("--lengths", nargs="+", type=int, default=[10, 20, 30, 40, 50])
    parser.add_argument("--catalogue", nargs="+", type=int, default=[12_101, 100_000, 1_000_000])
    parser.add_argument("--negatives", type=int, default=8192)
    parser.add_argument("--item-chunk", type=int, default=65536)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--set", nargs="*", default=[], dest="sets")
    parser.add_argument("--name", default="scaling")
    parser.add_argument("--worker", nargs=2, metavar=("N", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = catalogue_worker(
            int(args.worker[0]), args.worker[1], args.negatives, args.item_chunk, args.repeats
        )
        print(json.dumps(result))
        return
    common.print_machine(common.machine_info())
    sets = parse_sets(args.sets)
    result: dict[str, Any] = {
        "repeats": args.repeats,
        "negatives": args.negatives,
        "item_chunk": args.item_chunk,
        "settings": sets,
    }
    if "batch" in args.parts:
        result["batch"] = [
            step_point(b, v, size, 10, (10, 20, 30, 50), args.repeats, sets)
            for b in args.backbones
            for v in args.variants
            for size in args.batch_sizes
        ]
    if "length" in args.parts:
        result["length"] = [
            step_point(b, v, 256, length, (10, 20, 30, 40, 50), args.repeats, sets)
            for b in args.backbones
            for v in args.variants
            for length in args.lengths
        ]
    if "catalogue" in args.parts:
        result["catalogue"] = [
            catalogue_point(n, v, args.negatives, args.item_chunk, args.repeats)
            for n in args.catalogue
            for v in args.variants
        ]
    info = common.machine_info()
    result.update({"machine": info, "note": common.load_note(info)})
    common.write_outputs(args.name, result, to_markdown(result))


if __name__ == "__main__":
    common.run_cli(main)
