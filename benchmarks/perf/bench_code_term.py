"""Lever benchmark: the correlation-code term of one view, forward + backward, per layout.

The code MLP over node pairs dominated the KDSR step (profile_before.md). This times
`value_and_grad` (w.r.t. the MLP parameters and the student rows) of one view's code term on
a synthetic batch shaped like Beauty's (B 256, d 128, K 50; history lengths uniform in
[Lb - 15, Lb] for Lb >= 20, [1, Lb] below) for each layout:

- `dense`: `code_term`, the MLP over the B x Lb (Lb - 1) / 2 slots i < j (before this work);
- `packed, one pass`: `packed_code_term(chunk=0)`, the listed real pairs at the ladder
  capacity, all at once;
- `packed, chunk c`: the same in a loop over chunks of c pairs with value + gradient per
  chunk (the default, c = 1024);
- `packed, bf16 MLP`: the default with `pair_dtype = bfloat16` (changes results; an option
  for accelerators).

    python -m benchmarks.perf.bench_code_term [--lengths 10 50] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from benchmarks.perf import common


def make_case(length: int, seed: int = 0) -> dict[str, Any]:
    """Rows, codes, node ids, packed pairs of a Beauty-like batch with padded length Lb."""
    import numpy as np

    from corrkd_jax.data.pairs import pack_pairs, pair_capacity, pair_counts

    batch, dim, num_codes = 256, 128, 50
    rng = np.random.default_rng(seed)
    low = max(1, length - 15) if length >= 20 else 1
    lengths = rng.integers(low, length + 1, batch)
    nodes = rng.integers(1, 12_000, (batch, length)).astype(np.int32)
    nodes[np.arange(length)[None, :] < (length - lengths)[:, None]] = 0
    real_pairs = int(pair_counts(lengths).sum())
    capacity = pair_capacity(real_pairs, int(batch * pair_counts(length)))
    return {
        "rows": rng.normal(size=(batch, length, dim)).astype(np.float32),
        "codes": rng.integers(0, num_codes, (batch, length, length)).astype(np.int32),
        "nodes": nodes,
        "packed": pack_pairs(nodes, 1, capacity),
        "real_pairs": real_pairs,
        "capacity": capacity,
        "dense_slots": int(batch * pair_counts(length)),
        "dim": dim,
        "K": num_codes,
    }


def time_layout(
    case: dict[str, Any], layout: str, chunk: int, dtype: str, repeats: int
) -> dict[str, float]:
    """Median seconds of one jitted value_and_grad of the view's code term."""
    import jax
    import jax.numpy as jnp

    from corrkd_jax.models.student import CodeMLP, code_term, packed_code_term, pair_mask

    rows = jnp.asarray(case["rows"])
    codes = jnp.asarray(case["codes"])
    nodes = jnp.asarray(case["nodes"])
    pairs = jnp.asarray(case["packed"]["pairs"])
    weights = jnp.asarray(case["packed"]["pair_weights"])
    mlp = CodeMLP(case["dim"], case["K"], dtype=jnp.dtype(dtype))
    params = mlp.init(jax.random.key(0), rows[:, :1])

    def loss(
        p: Any,
        x: jax.Array,
        codes: jax.Array,
        nodes: jax.Array,
        pairs: jax.Array,
        weights: jax.Array,
    ) -> jax.Array:
        def term(m: CodeMLP, x: jax.Array) -> jax.Array:
            if layout == "dense":
                return code_term(m, x, codes, pair_mask(nodes))
            return packed_code_term(
                m, x, codes, (nodes > 0).astype(jnp.float32), pairs, weights, chunk=chunk
            )

        return mlp.apply(p, x, method=term)

    # Batch arrays are arguments (as in the train step), not constants folded at compile time.
    args = (params, rows, codes, nodes, pairs, weights)
    fn = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    start = time.perf_counter()
    compiled = fn.lower(*args).compile()
    compile_seconds = time.perf_counter() - start
    jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
    memory = compiled.memory_analysis()
    return {
        "seconds": common.median(times),
        "compile_seconds": compile_seconds,
        "temp_mib": memory.temp_size_in_bytes / 2**20 if memory else float("nan"),
    }


LAYOUTS = (
    ("dense", "dense", 0, "float32"),
    ("packed, one pass", "packed", 0, "float32"),
    ("packed, chunk 512", "packed", 512, "float32"),
    ("packed, chunk 1024 (default)", "packed", 1024, "float32"),
    ("packed, chunk 2048", "packed", 2048, "float32"),
    ("packed, chunk 4096", "packed", 4096, "float32"),
    ("packed, chunk 1024, bf16 MLP", "packed", 1024, "bfloat16"),
)


def to_markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# Code term of one view, forward + backward, by layout",
        "",
        f"Machine: {m['usable_cores']} cores ({m['cpu_model']}), {m['device_kind']}; jax "
        f"{m['jax']}. {result['note']}.",
        "B 256, d 128, K 50; synthetic rows and codes; median of "
        f"{result['repeats']} calls after compilation. temp = XLA's temporary buffers.",
        "",
        "| Lb | real pairs | slots (dense / packed) | layout | ms | speed-up vs dense | temp MiB |",
        "|---:|---:|---|---|---:|---:|---:|",
    ]
    for case in result["cases"]:
        dense = case["layouts"]["dense"]["seconds"]
        for name, r in case["layouts"].items():
            lines.append(
                f"| {case['length']} | {case['real_pairs']:,} | "
                f"{case['dense_slots']:,} / {case['capacity']:,} | {name} | "
                f"{1000 * r['seconds']:.1f} | {dense / r['seconds']:.2f}x | "
                f"{r['temp_mib']:.0f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", nargs="+", type=int, default=[10, 50])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--name", default="code_term")
    args = parser.parse_args()
    common.print_machine(common.machine_info())
    cases = []
    for length in args.lengths:
        case = make_case(length)
        layouts = {}
        for name, layout, chunk, dtype in LAYOUTS:
            layouts[name] = time_layout(case, layout, chunk, dtype, args.repeats)
            print(
                f"Lb {length:2d} {name:>30}: {1000 * layouts[name]['seconds']:8.1f} ms, "
                f"temp {layouts[name]['temp_mib']:.0f} MiB",
                flush=True,
            )
        cases.append(
            {
                "length": length,
                "real_pairs": case["real_pairs"],
                "capacity": case["capacity"],
                "dense_slots": case["dense_slots"],
                "layouts": layouts,
            }
        )
    info = common.machine_info()
    result = {
        "machine": info,
        "note": common.load_note(info),
        "repeats": args.repeats,
        "cases": cases,
    }
    common.write_outputs(args.name, result, to_markdown(result))


if __name__ == "__main__":
    common.run_cli(main)
