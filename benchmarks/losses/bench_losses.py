"""Benchmark: one jitted forward + backward of both KDSR losses for two views.

B = 256 sequences of L = 50 (right-aligned, random lengths 1..L), d = 128, K = 50, D = 8,
N = 12,101 items, synthetic sigmoid(normal) teacher features. The student side follows
method.md with plain jnp dense layers: holistic `h = E[x] W1 W2`, `S = corr(h)`; code logits
`Dense_K(relu(Dense_d(|E[x_i] - E[x_j]|)))`. Timed separately (median over repeats, after
compilation):

- `teacher_signals`: teacher correlations and codes of both views for the batch;
- `student fwd+bwd`: value and gradient w.r.t. the student parameters of
  `sum_v 4 * L_hol_v + 0.5 * L_code_v` (includes the code MLP, the dominant cost);
- `losses only`: value and gradient of the two loss functions alone, w.r.t. their inputs
  (`h` `[B, L, d]` and code logits `[B, L, L, K]`), i.e. the cost of `corrkd_jax.losses`;
- `full step`: teacher signals + student fwd+bwd in one jit.

Also reports XLA's compiled temporary memory of each. Writes `results.json` / `results.md`.

    python -m benchmarks.losses.bench_losses [--kinds cos dot euc man] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.machine import machine_info
from corrkd_jax.io import write_text
from corrkd_jax.losses import (
    correlation_code_loss,
    holistic_correlation_loss,
    pairwise_correlation,
)
from corrkd_jax.teacher import build_teacher, teacher_signals

HERE = Path(__file__).resolve().parent
VIEWS = ("title", "attr")
LAMBDA_HOL, LAMBDA_CODE, TAU = 4.0, 0.5, 1.5


def make_problem(args: argparse.Namespace, kind: str):
    """Teacher, student parameters and a padded batch of item ids [B, L]."""
    rng = np.random.default_rng(args.seed)
    d, k = args.dim, args.num_codes
    features = {}
    for view in VIEWS:
        z = rng.standard_normal((args.num_items + 1, d), dtype=np.float32)
        features[view] = 1.0 / (1.0 + np.exp(-z))
        features[view][0] = 0.0
    teacher, _ = build_teacher(
        features,
        num_codes=k,
        num_chunks=args.num_chunks,
        kind=kind,
        num_pairs=100_000,
        seed=args.seed,
    )

    def dense(shape):
        return jnp.asarray(rng.normal(size=shape).astype(np.float32) / np.sqrt(shape[0]))

    params = {
        view: {
            "table": jnp.asarray(features[view]),
            "hol_1": dense((d, d)),
            "hol_2": dense((d, d)),
            "code_1": dense((d, d)),
            "code_1_bias": jnp.zeros(d),
            "code_2": dense((d, k)),
            "code_2_bias": jnp.zeros(k),
        }
        for view in VIEWS
    }
    lengths = rng.integers(1, args.seq_len + 1, size=args.batch_size)
    items = rng.integers(1, args.num_items + 1, size=(args.batch_size, args.seq_len))
    items[np.arange(args.seq_len)[None, :] < (args.seq_len - lengths)[:, None]] = 0
    return teacher, params, jnp.asarray(items, jnp.int32)


def student_loss(params, signals, items, kind: str):
    """sum_v lambda_hol * L_hol_v + lambda_code * L_code_v for a batch [B, L]."""
    real = (items > 0).astype(jnp.float32)
    mask = real[:, :, None] * real[:, None, :]
    total = 0.0
    for view in VIEWS:
        p = params[view]
        e = p["table"][items]  # [B, L, d]
        h = e @ p["hol_1"] @ p["hol_2"]
        hol = holistic_correlation_loss(
            pairwise_correlation(h, kind), signals[view].corr, mask, TAU
        )
        diff = jnp.abs(e[:, :, None, :] - e[:, None, :, :])  # [B, L, L, d]
        logits = jax.nn.relu(diff @ p["code_1"] + p["code_1_bias"]) @ p["code_2"] + p["code_2_bias"]
        code = correlation_code_loss(logits, signals[view].codes, mask)
        total = total + LAMBDA_HOL * hol + LAMBDA_CODE * code
    return total


def losses_only(h, logits, signals, mask, kind: str):
    """The two loss functions alone, for both views, on given h and code logits."""
    total = 0.0
    for view in VIEWS:
        total = total + holistic_correlation_loss(
            pairwise_correlation(h[view], kind), signals[view].corr, mask, TAU
        )
        total = total + correlation_code_loss(logits[view], signals[view].codes, mask)
    return total


def time_jitted(fn, args_, repeats: int) -> dict:
    """Compile, warm up once, then time `repeats` calls -> seconds and XLA temp memory."""
    compiled = jax.jit(fn).lower(*args_).compile()
    mem = compiled.memory_analysis()
    temp_mib = None if mem is None else mem.temp_size_in_bytes / 2**20
    jax.block_until_ready(compiled(*args_))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args_))
        times.append(time.perf_counter() - start)
    return {
        "median_ms": 1e3 * statistics.median(times),
        "min_ms": 1e3 * min(times),
        "repeats": repeats,
        "xla_temp_mib": temp_mib,
    }


def bench_kind(args: argparse.Namespace, kind: str) -> dict:
    teacher, params, items = make_problem(args, kind)
    signals = jax.jit(teacher_signals)(teacher, items)
    real = (items > 0).astype(jnp.float32)
    mask = real[:, :, None] * real[:, None, :]
    rng = np.random.default_rng(args.seed + 1)
    h = {
        v: jnp.asarray(rng.normal(size=(*items.shape, args.dim)).astype(np.float32)) for v in VIEWS
    }
    logits = {
        v: jnp.asarray(
            rng.normal(size=(*items.shape, items.shape[1], args.num_codes)).astype(np.float32)
        )
        for v in VIEWS
    }

    def student_step(params, signals, items):
        return jax.value_and_grad(student_loss)(params, signals, items, kind)

    def full_step(params, teacher, items):
        return student_step(params, teacher_signals(teacher, items), items)

    def losses_step(h, logits, signals, mask):
        return jax.value_and_grad(losses_only, argnums=(0, 1))(h, logits, signals, mask, kind)

    result = {"kind": kind}
    result["teacher_signals"] = time_jitted(teacher_signals, (teacher, items), args.repeats)
    result["losses_only_fwd_bwd"] = time_jitted(
        losses_step, (h, logits, signals, mask), args.repeats
    )
    result["student_fwd_bwd"] = time_jitted(student_step, (params, signals, items), args.repeats)
    result["full_step"] = time_jitted(full_step, (params, teacher, items), args.repeats)
    return result


def to_markdown(result: dict) -> str:
    m, s = result["machine"], result["settings"]
    lines = [
        "# Correlation losses: one jitted forward + backward, two views",
        "",
        f"Machine: {m['usable_cores']} usable cores ({m['cpu_model']}), device "
        f"{m['device_kind']}; jax {m['jax']}, flax {m['flax']}, optax {m['optax']}.",
        f"Settings: B = {s['batch_size']}, L = {s['seq_len']}, d = {s['dim']}, "
        f"K = {s['num_codes']}, D = {s['num_chunks']}, N = {s['num_items']:,}, views "
        f"{', '.join(VIEWS)}; median over {s['repeats']} calls after compilation.",
        f"Note: {result['note']} (load average 1/5/15 min at the end: "
        f"{', '.join(map(str, m.get('load_average_1_5_15min', [])))}).",
        "",
        "| kind | part | median ms | min ms | XLA temp MiB |",
        "|---|---|---:|---:|---:|",
    ]
    for r in result["runs"]:
        for part in ("teacher_signals", "losses_only_fwd_bwd", "student_fwd_bwd", "full_step"):
            t = r[part]
            temp = "-" if t["xla_temp_mib"] is None else f"{t['xla_temp_mib']:.0f}"
            lines.append(
                f"| {r['kind']} | {part} | {t['median_ms']:.1f} | {t['min_ms']:.1f} | {temp} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="+", default=["cos", "dot", "euc", "man"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seq-len", type=int, default=50)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--num-codes", type=int, default=50)
    parser.add_argument("--num-chunks", type=int, default=8)
    parser.add_argument("--num-items", type=int, default=12_101)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--note", default="measured on a 2-core CPU shared with other jobs: times are upper bounds"
    )
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()

    runs = []
    for kind in args.kinds:
        run = bench_kind(args, kind)
        print(json.dumps(run), flush=True)
        runs.append(run)
    settings = {
        k: getattr(args, k)
        for k in (
            "batch_size",
            "seq_len",
            "dim",
            "num_codes",
            "num_chunks",
            "num_items",
            "repeats",
            "seed",
        )
    }
    result = {"machine": machine_info(), "settings": settings, "note": args.note, "runs": runs}
    write_text(args.out / "results.json", json.dumps(result, indent=2) + "\n")
    markdown = to_markdown(result)
    write_text(args.out / "results.md", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
