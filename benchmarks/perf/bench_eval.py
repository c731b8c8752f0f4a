"""Benchmark 3: full-ranking evaluation of the 22,363 Beauty test cases, seconds.

The trainer's `evaluate` (trainer/evaluation.py) with its jitted `eval_step` over the test
split's `EvalLoader` (length-bucketed batches, graph arrays for the session graph), every
case ranked against all 12,101 items, for each backbone of `configs/beauty.py` (variant
`kdsr`: ID + two view tables; parameters at initialisation, the time does not depend on their
values). Compile time (one per bucket) is reported apart; the time is the median of
`--repeats` full passes after compilation. `--item-chunk` adds the chunked-scoring option
(`eval.item_chunk`) for comparison.

    python -m benchmarks.perf.bench_eval [--backbones ...] [--batch-sizes 256 1024]
        [--item-chunk 4096] [--repeats 3]

Target (2-core CPU): <= 10 s.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from benchmarks.perf import common


def time_eval(
    backbone: str, batch_size: int, item_chunk: int, repeats: int, experiment: Any = None
) -> tuple[dict[str, Any], Any]:
    """Seconds of a full test-split evaluation (median of repeats), compile apart."""
    from corrkd_jax.models import init_params
    from corrkd_jax.trainer import sharding
    from corrkd_jax.trainer.assemble import compile_steps, make_loaders
    from corrkd_jax.trainer.evaluation import evaluate
    from corrkd_jax.trainer.setup import build_experiment

    config = common.beauty_config(
        backbone, "kdsr", eval_batch_size=batch_size, **{"eval.item_chunk": item_chunk}
    )
    if experiment is None:
        experiment = build_experiment(config)
    mesh = sharding.make_mesh()
    _, _, loader = make_loaders(config, experiment)  # the trainer's test loader
    params = sharding.replicate(init_params(experiment.model, loader.dataset()[0], 0), mesh)
    _, eval_fn = compile_steps(config, experiment, None, mesh)  # the trainer's eval step
    start = time.perf_counter()
    metrics = evaluate(eval_fn, params, loader, mesh)  # compiles every bucket once
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        evaluate(eval_fn, params, loader, mesh)
        times.append(time.perf_counter() - start)
    seconds = common.median(times)
    result = {
        "backbone": backbone,
        "eval_batch_size": batch_size,
        "item_chunk": item_chunk,
        "cases": len(experiment.split.test),
        "batches": loader.num_batches,
        "num_items": experiment.data.items.num_items,
        "seconds": seconds,
        "seconds_each": times,
        "cases_per_second": len(experiment.split.test) / seconds,
        "compile_seconds": eval_fn.compile_seconds,
        "first_pass_seconds": first,
        "NDCG@10_at_init": metrics["NDCG@10"],
    }
    print(
        f"{backbone:>13} B {batch_size:5d} chunk {item_chunk:5d}: {seconds:6.2f} s "
        f"({result['cases_per_second']:.0f} cases/s), compile {eval_fn.compile_seconds:.1f} s",
        flush=True,
    )
    return result, experiment


def to_markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# Full-ranking evaluation of the Beauty test split (benchmark 3)",
        "",
        f"Machine: {m['usable_cores']} cores ({m['cpu_model']}), {m['device_kind']}; jax "
        f"{m['jax']}, flax {m['flax']}. {result['note']}.",
        "22,363 test cases, each ranked against all 12,101 items (exact full ranking), "
        "trainer's `evaluate` + jitted `eval_step`, variant kdsr, median of "
        f"{result['repeats']} passes after compilation. Target: <= 10 s.",
        "",
        "| backbone | eval batch | item chunk | seconds | cases/s | compile s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in result["runs"]:
        chunk = r["item_chunk"] or "all"
        lines.append(
            f"| {r['backbone']} | {r['eval_batch_size']} | {chunk} | "
            f"{r['seconds']:.2f} | {r['cases_per_second']:.0f} | "
            f"{r['compile_seconds']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["session_graph", "sasrec", "gru4rec"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[256, 1024])
    parser.add_argument("--item-chunk", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--name", default="eval")
    args = parser.parse_args()
    common.print_machine(common.machine_info())
    runs = []
    for backbone in args.backbones:
        experiment = None
        for batch_size in args.batch_sizes:
            result, experiment = time_eval(backbone, batch_size, 0, args.repeats, experiment)
            runs.append(result)
        if args.item_chunk:
            result, _ = time_eval(
                backbone, args.batch_sizes[0], args.item_chunk, args.repeats, experiment
            )
            runs.append(result)
    info = common.machine_info()
    result = {
        "machine": info,
        "note": common.load_note(info),
        "repeats": args.repeats,
        "runs": runs,
    }
    common.write_outputs(args.name, result, to_markdown(result))


if __name__ == "__main__":
    common.run_cli(main)
