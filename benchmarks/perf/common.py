"""Shared helpers of the performance benchmarks: machine info, the Beauty set-up, timing.

The benchmarks build exactly what `corrkd_jax.train` builds (`build_experiment`, the loaders,
`train_step` / `eval_step` jitted with the trainer's options) from `configs/beauty.py`, so
their figures are the trainer's. The teacher codebooks are fitted on fewer pairs than the
config's 2M (`--codebook-pairs`): step time does not depend on the codebook's values.
"""

from __future__ import annotations

import dataclasses
import functools
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
    print(f"machine: {info['usable_cores']} cores ({info['cpu_model']}), "
          f"{info['device_count']} x {info['device_kind']} ({info['platform']}); "
          f"jax {info['jax']}, flax {info['flax']}, optax {info['optax']}, "
          f"numpy {info['numpy']}; load {info['load_average_1_5_15min']}", flush=True)


def load_note(info: Mapping[str, Any]) -> str:
    """A label for the figures: quiet machine or shared with other jobs."""
    load = info["load_average_1_5_15min"][0]
    if load > info["usable_cores"] * 0.75 + 0.5:
        return (f"taken while other jobs ran (1-min load {load:.2f} on "
                f"{info['usable_cores']} cores, this job included): times are upper bounds")
    return f"machine quiet apart from this job (1-min load {load:.2f})"


def vm_hwm_mib() -> float:
    """Peak resident set size of this process (VmHWM), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def write_outputs(name: str, result: Mapping[str, Any], markdown: str) -> None:
    """`HERE/<name>.json` and `HERE/<name>.md`, each written atomically."""
    for path, text in ((HERE / f"{name}.json", json.dumps(result, indent=2) + "\n"),
                       (HERE / f"{name}.md", markdown.rstrip() + "\n")):
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
    """What one benchmark configuration trains with (mirrors `corrkd_jax.train`)."""

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


def pair_options(config, experiment) -> dict[str, Any]:
    """TrainLoader pair-packing arguments, as `corrkd_jax.train` derives them."""
    pack = bool(config.kd.get("pack_pairs", True)) and experiment.variant.codes
    return {"pairs": pack, "pair_growth": float(config.kd.get("pair_growth", 2.0))}


def make_bench(config, *, codebook_pairs: int = 200_000, experiment=None) -> Bench:
    """The trainer's objects for `config`: model, state, jitted steps, teacher, loader."""
    import jax
    import jax.numpy as jnp

    from corrkd_jax import optim
    from corrkd_jax.data import TrainLoader
    from corrkd_jax.models import init_params
    from corrkd_jax.teacher import build_teacher
    from corrkd_jax.trainer import sharding
    from corrkd_jax.trainer.setup import build_experiment
    from corrkd_jax.trainer.steps import (create_train_state, eval_step, loss_weights,
                                          train_step)

    start = time.perf_counter()
    if experiment is None:
        experiment = build_experiment(config)
    mesh = sharding.make_mesh()
    data_config = config.data
    loader = TrainLoader(experiment.split.train, int(config.batch_size),
                         tuple(data_config.length_buckets), seed=int(config.seed),
                         graph=experiment.graph, **pair_options(config, experiment))
    init_key, dropout_key = jax.random.split(jax.random.key(int(config.seed)))
    params = init_params(experiment.model, loader.dataset(0)[0], init_key)
    tx = optim.make_optimizer(config.optim, params, table_group=experiment.variant.table_group,
                              steps_per_epoch=loader.num_batches)
    setup_seconds = time.perf_counter() - start
    teacher, teacher_seconds = None, 0.0
    if experiment.variant.distills:
        start = time.perf_counter()
        kd = config.kd
        teacher, _ = build_teacher(experiment.features, num_codes=int(kd.num_codes),
                                   num_chunks=int(kd.num_chunks), kind=kd.corr_kind,
                                   num_pairs=codebook_pairs, seed=int(config.seed),
                                   num_iters=int(kd.kmeans_iters))
        teacher_seconds = time.perf_counter() - start
    weights = loss_weights(config.kd, experiment.model.views,
                           holistic=experiment.variant.holistic, codes=experiment.variant.codes)
    replicated = sharding.replicated(mesh)
    train_fn = jax.jit(functools.partial(train_step, apply_fn=experiment.model.apply, tx=tx,
                                         backbone=config.model.backbone),
                       donate_argnums=(0,), out_shardings=(replicated, replicated))
    eval_fn = jax.jit(functools.partial(eval_step, apply_fn=experiment.model.apply,
                                        ks=tuple(int(k) for k in config.eval.ks)),
                      out_shardings=replicated)
    state = sharding.replicate(create_train_state(params, tx, dropout_key), mesh)
    return Bench(config=config, experiment=experiment, mesh=mesh, train_loader=loader,
                 state=state, train_fn=train_fn, eval_fn=eval_fn,
                 teacher=sharding.replicate(teacher, mesh),
                 weights=sharding.replicate({k: jnp.float32(v) for k, v in weights.items()},
                                            mesh),
                 setup_seconds=setup_seconds, teacher_seconds=teacher_seconds)


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


def time_steps(bench: Bench, batch_ids: Sequence[int], *, epoch: int = 0, repeats: int = 3,
               include_loader: bool = True) -> dict[str, Any]:
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
                    state, sharding.shard_batch(host_batch, bench.mesh), *args)
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
    loss = {key: float(value) for key, value in jax.device_get(terms).items()
            if key.startswith("loss/")}
    return {
            "sample_batches": len(batch_ids),
            "repeats": repeats,
            "epoch_batches": int(len(lengths)),
            "batches_per_bucket": {str(k): v for k, v in sorted(counts.items())},
            "sample_per_bucket": {str(k): len(v) // repeats
                                  for k, v in sorted(per_bucket.items())},
            "step_seconds_median_per_bucket": {str(k): v for k, v in sorted(step_median.items())},
            "loader_seconds_median_per_bucket": {str(k): median(v) for k, v in
                                                 sorted(loader_seconds.items())},
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
    columns = [plan.lengths.tolist()] + [packing.capacities(plan).tolist()
                                         for packing in bench.train_loader.packings]
    return len(set(zip(*columns)))


def fmt(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


def run_cli(main: Callable[[], None]) -> None:
    """Runs `main` with JAX's CPU warnings quiet."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
