"""Shared helpers of the performance benchmarks: machine info, the Beauty set-up, timing.

The benchmarks build exactly what `corrkd_jax.train` builds (`trainer.assemble.build_run`)
from `configs/beauty.py`, so their figures are the trainer's. The teacher codebooks are fitted on fewer pairs than the
config's 2M (`--codebook-pairs`): step time does not depend on the codebook's values.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.machine import machine_info  # noqa: F401  (re-exported)

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def print_machine(info: Mapping[str, Any]) -> None:
    print(
        f"machine: {info['usable_cores']} cores ({info['cpu_model']}), "
        f"{info['device_count']} x {info['device_kind']} ({info['platform']}); "
        f"jax {info['jax']}, flax {info['flax']}, optax {info['optax']}, "
        f"numpy {info['numpy']}; load {info['load_average_1_5_15min']}",
        flush=True,
    )


def machine_line(result: Mapping[str, Any]) -> str:
    """The markdown reports' "Machine: ..." sentence from a result's `machine` and `note`."""
    m = result["machine"]
    return (
        f"Machine: {m['usable_cores']} cores ({m['cpu_model']}), {m['device_kind']}; jax "
        f"{m['jax']}. {result['note']}."
    )


def load_note(info: Mapping[str, Any]) -> str:
    """A label for the figures: quiet machine or shared with other jobs."""
    load = info["load_average_1_5_15min"][0]
    if load > info["usable_cores"] * 0.75 + 0.5:
        return (
            f"taken while other jobs ran (1-min load {load:.2f} on "
            f"{info['usable_cores']} cores, this job included): times are upper bounds"
        )
    return f"machine quiet apart from this job (1-min load {load:.2f})"


def vm_hwm_mib() -> float:
    """Peak resident set size of this process (VmHWM), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def write_outputs(name: str, result: Mapping[str, Any], markdown: str) -> None:
    """`HERE/<name>.json` and `HERE/<name>.md`, each written atomically."""
    for path, text in (
        (HERE / f"{name}.json", json.dumps(result, indent=2) + "\n"),
        (HERE / f"{name}.md", markdown.rstrip() + "\n"),
    ):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    print(f"wrote {HERE / name}.json and .md")


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


# ----------------------------------------------------------------------------- Beauty set-up


def beauty_config(backbone: str, variant: str, **overrides: Any):
    """`configs/beauty.py:<backbone>,<variant>` with dotted overrides, e.g.
    `beauty_config("sasrec", "kdsr", **{"data.length_buckets": (50,)})`."""
    from corrkd_jax.trainer.config_files import load_config_file

    config = load_config_file(str(REPO / "configs" / "beauty.py"), f"{backbone},{variant}")
    config.progress = False
    config.update_from_flattened_dict(dict(overrides))
    return config


@dataclasses.dataclass
class Bench:
    """What one benchmark configuration trains with (`build_run`'s parts, state replicated)."""

    config: Any
    experiment: Any
    mesh: Any
    train_loader: Any
    state: Any
    train_fn: Any  # jax.jit(train_step, donate_argnums=0)
    eval_fn: Any  # jax.jit(eval_step)
    teacher: Any
    weights: dict[str, Any]
    setup_seconds: float
    teacher_seconds: float


def make_bench(config, *, codebook_pairs: int = 200_000, experiment=None) -> Bench:
    """The trainer's own objects for `config` (`corrkd_jax.trainer.assemble.build_run`):
    model, state, jitted steps, teacher (fitted on `codebook_pairs` pairs), loader."""
    from corrkd_jax.trainer import sharding
    from corrkd_jax.trainer.assemble import build_run

    start = time.perf_counter()
    parts = build_run(config, experiment=experiment, codebook_pairs=codebook_pairs)
    total = time.perf_counter() - start
    teacher_seconds = sum(stats["seconds"] for stats in parts.teacher_stats.values())
    return Bench(
        config=config,
        experiment=parts.experiment,
        mesh=parts.mesh,
        train_loader=parts.train_loader,
        state=sharding.replicate(parts.state, parts.mesh),
        train_fn=parts.train_fn.jitted,
        eval_fn=parts.eval_fn.jitted,
        teacher=parts.teacher,
        weights=parts.weights,
        setup_seconds=total - teacher_seconds,
        teacher_seconds=teacher_seconds,
    )


def stratified_batches(plan_lengths: Sequence[int], sample: int) -> list[int]:
    """Indices of `sample` batches of an epoch plan with the epoch's bucket mix.

    Per bucket, round(sample * share) batches (at least 1), the first ones of the bucket in
    the (shuffled) plan order, so the sample is a random draw with the real proportions.
    """
    import numpy as np

    lengths = np.asarray(plan_lengths)
    picked: list[int] = []
    for length in np.unique(lengths):
        where = np.flatnonzero(lengths == length)
        count = max(1, int(round(sample * len(where) / len(lengths))))
        picked.extend(int(i) for i in where[:count])
    return sorted(picked)


def shape_key(batch: Mapping[str, Any]) -> tuple:
    """The batch's array shapes: one compiled executable per key (as CompiledPerShape)."""
    return tuple(sorted((name, tuple(value.shape)) for name, value in batch.items()))


def time_steps(
    bench: Bench,
    batch_ids: Sequence[int],
    *,
    epoch: int = 0,
    repeats: int = 3,
    include_loader: bool = True,
) -> dict[str, Any]:
    """Compiles once per batch shape, then times the sampled steps; extrapolates to the epoch.

    Each step is timed alone (`block_until_ready`), including building the batch from the
    examples (`include_loader`), as the trainer does with `data.prefetch = 0`. Epoch seconds
    = sum over length buckets of (the epoch's batches in that bucket x the bucket's median
    sampled step). Compile time counts every shape the sample needs (length bucket x pair
    capacity); `epoch_shapes` is the number of shapes the whole epoch needs.

    Returns: per-bucket step medians, compile seconds, epoch estimate, sequences/s.
    """
    import jax
    import numpy as np

    from corrkd_jax.trainer import sharding

    dataset = bench.train_loader.dataset(epoch)
    plan = bench.train_loader.plan(epoch)
    lengths = plan.lengths
    state = bench.state
    args = (bench.teacher, bench.weights)
    host = {index: dataset[index] for index in batch_ids}
    compiled: dict[tuple, Any] = {}
    compile_seconds = 0.0
    for index in batch_ids:  # AOT-compile each shape once, as CompiledPerShape does
        key = shape_key(host[index])
        if key not in compiled:
            batch = sharding.shard_batch(host[index], bench.mesh)
            start = time.perf_counter()
            compiled[key] = bench.train_fn.lower(state, batch, *args).compile()
            compile_seconds += time.perf_counter() - start
            state, terms = compiled[key](state, batch, *args)  # first call: allocations
    jax.block_until_ready(state)
    per_bucket: dict[int, list[float]] = {int(lengths[i]): [] for i in batch_ids}
    loader_seconds: dict[int, list[float]] = {int(lengths[i]): [] for i in batch_ids}
    sample_seconds = []
    for _ in range(repeats):
        total = 0.0
        for index in batch_ids:
            length = int(lengths[index])
            start = time.perf_counter()
            host_batch = dataset[index]
            built = time.perf_counter()
            state, terms = compiled[shape_key(host_batch)](
                state, sharding.shard_batch(host_batch, bench.mesh), *args
            )
            jax.block_until_ready(terms)
            end = time.perf_counter()
            per_bucket[length].append(end - start if include_loader else end - built)
            loader_seconds[length].append(built - start)
            total += end - start
        sample_seconds.append(total)
    bench.state = state
    counts = {length: int((lengths == length).sum()) for length in per_bucket}
    step_median = {length: median(times) for length, times in per_bucket.items()}
    epoch_seconds = sum(counts[length] * step_median[length] for length in counts)
    num_cases = len(bench.train_loader.examples)
    loss = {
        key: float(value) for key, value in jax.device_get(terms).items() if key.startswith("loss/")
    }
    return {
        "sample_batches": len(batch_ids),
        "repeats": repeats,
        "epoch_batches": int(len(lengths)),
        "batches_per_bucket": {str(k): v for k, v in sorted(counts.items())},
        "sample_per_bucket": {str(k): len(v) // repeats for k, v in sorted(per_bucket.items())},
        "step_seconds_median_per_bucket": {str(k): v for k, v in sorted(step_median.items())},
        "loader_seconds_median_per_bucket": {
            str(k): median(v) for k, v in sorted(loader_seconds.items())
        },
        "sample_seconds_per_repeat": sample_seconds,
        "compiled_shapes_in_sample": len(compiled),
        "epoch_shapes": epoch_shapes(bench, epoch),
        "compile_seconds": float(compile_seconds),
        "epoch_seconds": float(epoch_seconds),
        "mean_step_seconds": float(epoch_seconds / len(lengths)),
        "sequences_per_second": float(num_cases / epoch_seconds),
        "last_loss": loss,
        "mean_padded_length": float(np.mean(lengths)),
    }


def epoch_shapes(bench: Bench, epoch: int = 0) -> int:
    """How many distinct batch shapes (= compiles) the epoch's plan needs."""
    plan = bench.train_loader.plan(epoch)
    columns = [plan.lengths.tolist()] + [
        packing.capacities(plan).tolist() for packing in bench.train_loader.packings
    ]
    return len(set(zip(*columns)))


def fmt(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


def run_cli(main: Callable[[], None]) -> None:
    """Runs `main` with JAX's CPU warnings quiet."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
