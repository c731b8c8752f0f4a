"""Profile: where the time of a KDSR train step goes, per component, on real Beauty batches.

For each backbone, one real batch per length bucket (from epoch 0 of the Beauty training
plan) runs through the trainer's jitted `train_step` under `jax.profiler.trace` (perfetto
trace). Every executed XLA op (thunk) in the trace is attributed to a component through the
`op_name` metadata of the compiled HLO (flax module paths plus the named scopes
`teacher_signals`, `holistic_term`, `code_term`, `output_layer`, `cross_entropy`,
`optimizer`); forward and backward (`transpose(...)`) are counted apart. Per bucket the op time
is averaged over the traced steps, and the epoch profile weights the buckets by their number
of batches in the epoch. Op times are summed over threads, so they can exceed the wall time
when XLA runs independent ops concurrently.

    python -m benchmarks.perf.profile_step [--backbones session_graph sasrec] [--steps 3]
        [--variant kdsr] [--name profile] [--set kd.pair_capacity=0 ...]
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import re
import tempfile
import time
from typing import Any

from benchmarks.perf import common

# (component, op_name substrings), checked in order: the first match wins.
COMPONENTS = (
    ("teacher signals", ("teacher_signals",)),
    ("KD code MLP + loss", ("code_term", "code_mlp_")),
    ("KD holistic", ("holistic_term", "hol_proj_")),
    ("KD other (masks, packing)", ("_distill", "pack_pairs")),
    ("output layer (scores over N)", ("output_layer",)),
    ("cross-entropy over N", ("cross_entropy",)),
    ("optimizer (Adam)", ("optimizer",)),
    ("backbone", ("backbone",)),
    ("embedding gathers", ("item_embedding", "view_")),
)

_INSTRUCTION = re.compile(r'^\s*(?:ROOT\s+)?%?([^\s=]+)\s*=.*?op_name="([^"]*)"')
_CONTAINER = re.compile(r"^\s*(?:ROOT\s+)?%?([^\s=]+)\s*=.*\b(while|call|conditional)\(")
CONTAINER = "<container>"  # while/call ops: their nested ops are traced on their own


def op_names(hlo_text: str) -> dict[str, str]:
    """HLO instruction name -> its `op_name` metadata (the traced source path); control-flow
    containers map to CONTAINER so that their time is not counted twice."""
    names = {}
    for line in hlo_text.splitlines():
        container = _CONTAINER.match(line)
        if container:
            names[container.group(1)] = CONTAINER
            continue
        match = _INSTRUCTION.match(line)
        if match:
            names.setdefault(match.group(1), match.group(2))
    return names


def component(op_name: str) -> str:
    """The component of an op (see COMPONENTS), with " (bwd)" for the backward pass."""
    name = next(
        (name for name, keys in COMPONENTS if any(key in op_name for key in keys)),
        "other (rng, grad norm, glue)",
    )
    return name + (" [bwd]" if "transpose(" in op_name else "")


def traced_ops(log_dir: str, module: str) -> list[tuple[str, float]]:
    """(hlo op, microseconds) of every op of `module` in the perfetto trace under log_dir."""
    files = glob.glob(f"{log_dir}/**/*.trace.json.gz", recursive=True) + glob.glob(
        f"{log_dir}/**/perfetto_trace.json.gz", recursive=True
    )
    if not files:
        raise RuntimeError(f"no perfetto trace under {log_dir}")
    with gzip.open(files[0]) as f:
        data = json.load(f)
    events = data["traceEvents"] if isinstance(data, dict) else data
    return [
        (e["args"]["hlo_op"], float(e["dur"]))
        for e in events
        if e.get("ph") == "X" and (e.get("args") or {}).get("hlo_module") == module
    ]


def profile_bucket(bench: common.Bench, index: int, steps: int) -> dict[str, Any]:
    """Traces `steps` train steps on batch `index` of epoch 0; per-component op seconds."""
    import jax

    from corrkd_jax.trainer import sharding

    batch = sharding.shard_batch(bench.train_loader.dataset(0)[index], bench.mesh)
    args = (batch, bench.teacher, bench.weights)
    compiled = bench.train_fn.lower(bench.state, *args).compile()
    names = op_names(compiled.as_text())
    state = bench.state
    for _ in range(2):  # warm-up
        state, terms = compiled(state, *args)
    jax.block_until_ready(terms)
    walls = []
    with tempfile.TemporaryDirectory() as log_dir:
        with jax.profiler.trace(log_dir, create_perfetto_trace=True):
            for _ in range(steps):
                start = time.perf_counter()
                state, terms = compiled(state, *args)
                jax.block_until_ready(terms)
                walls.append(time.perf_counter() - start)
        ops = traced_ops(log_dir, "jit_train_step")
    bench.state = state
    totals: dict[str, float] = collections.defaultdict(float)
    for op, micros in ops:
        if names.get(op) != CONTAINER:
            totals[component(names.get(op, ""))] += micros * 1e-6 / steps
    return {
        "wall_seconds": common.median(walls),
        "op_seconds": dict(totals),
        "num_ops_traced": len(ops),
    }


def profile_backbone(
    backbone: str, variant: str, steps: int, sets: dict[str, Any]
) -> dict[str, Any]:
    """Per-bucket and epoch-weighted component times of one backbone."""
    import numpy as np

    bench = common.make_bench(common.beauty_config(backbone, variant, **sets))
    lengths = bench.train_loader.plan(0).lengths
    buckets = {}
    epoch: dict[str, float] = collections.defaultdict(float)
    epoch_wall = 0.0
    for length in np.unique(lengths):
        index = int(np.flatnonzero(lengths == length)[0])
        count = int((lengths == length).sum())
        result = profile_bucket(bench, index, steps)
        result["epoch_batches"] = count
        buckets[str(int(length))] = result
        epoch_wall += count * result["wall_seconds"]
        for name, seconds in result["op_seconds"].items():
            epoch[name] += count * seconds
        print(f"  {backbone} Lb={length}: {result['wall_seconds']:.3f} s/step", flush=True)
    total = sum(epoch.values())
    shares = {
        name: seconds / total for name, seconds in sorted(epoch.items(), key=lambda kv: -kv[1])
    }
    config = bench.config
    return {
        "settings": {  # what this backbone's profile ran with (configs/beauty.py + --set)
            "batch_size": config.batch_size,
            "dim": config.model.dim,
            "train_on": config.data.train_on,
            "views": list(config.features.views) if "views" in config.features else None,
        },
        "buckets": buckets,
        "epoch_op_seconds": dict(epoch),
        "epoch_wall_seconds": epoch_wall,
        "epoch_shares": shares,
    }


def to_markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"# Profile of a `{result['variant']}` train step on Beauty",
        "",
        f"Machine: {m['usable_cores']} cores ({m['cpu_model']}), {m['device_kind']}; "
        f"jax {m['jax']}, flax {m['flax']}. {result['note']}.",
        f"Settings overridden: {result['settings'] or 'none (configs/beauty.py)'}.",
        "Method: jax.profiler perfetto trace of the trainer's jitted `train_step`, "
        f"{result['steps']} steps per length bucket on a real batch of epoch 0; each XLA op "
        "attributed to a component by its HLO `op_name` metadata; buckets weighted by "
        "their batches per epoch. Op time is summed over XLA's threads.",
        "",
    ]
    for backbone, prof in result["backbones"].items():
        used = prof.get("settings", {})
        lines += [
            f"## {backbone}",
            "",
            ", ".join(
                f"{k} {' + '.join(v) if isinstance(v, list) else v}"
                for k, v in used.items()
                if v is not None
            )
            + ".",
            "",
            "| Lb | batches/epoch | wall s/step | "
            + " | ".join(["top components (op s/step)"])
            + " |",
            "|---:|---:|---:|---|",
        ]
        for length, bucket in prof["buckets"].items():
            top = sorted(bucket["op_seconds"].items(), key=lambda kv: -kv[1])[:4]
            lines.append(
                f"| {length} | {bucket['epoch_batches']} | "
                f"{bucket['wall_seconds']:.3f} | "
                + "; ".join(f"{name} {sec:.3f}" for name, sec in top)
                + " |"
            )
        lines += [
            "",
            f"Epoch-weighted share of op time (epoch wall estimate "
            f"{prof['epoch_wall_seconds']:.0f} s):",
            "",
            "| component | share | op s/epoch |",
            "|---|---:|---:|",
        ]
        for name, share in prof["epoch_shares"].items():
            lines.append(f"| {name} | {100 * share:.1f}% | {prof['epoch_op_seconds'][name]:.1f} |")
        lines.append("")
    return "\n".join(lines)


def parse_sets(pairs: list[str]) -> dict[str, Any]:
    """`a.b=value` strings -> {dotted: value} (value parsed as JSON when possible)."""
    sets = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            sets[key] = json.loads(value)
        except json.JSONDecodeError:
            sets[key] = value
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["session_graph", "sasrec"])
    parser.add_argument("--variant", default="kdsr")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--name", default="profile")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        dest="sets",
        help="config overrides, e.g. kd.pair_capacity=0",
    )
    args = parser.parse_args()
    info = common.machine_info()
    common.print_machine(info)
    sets = parse_sets(args.sets)
    backbones = {b: profile_backbone(b, args.variant, args.steps, sets) for b in args.backbones}
    info = common.machine_info()  # load at the end
    result = {
        "machine": info,
        "note": common.load_note(info),
        "variant": args.variant,
        "steps": args.steps,
        "settings": sets,
        "backbones": backbones,
    }
    for backbone, prof in backbones.items():
        print(
            f"{backbone}: "
            + ", ".join(f"{k} {100 * v:.0f}%" for k, v in prof["epoch_shares"].items())
        )
    common.write_outputs(args.name, result, to_markdown(result))


if __name__ == "__main__":
    common.run_cli(main)
