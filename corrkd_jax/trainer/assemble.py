"""`build_run(config)`: every object a training run needs, assembled in one place.

`corrkd_jax.train` trains with it and the benchmarks time exactly it, so a benchmark never
measures a trainer that users do not run. The flow is one way:

    config -> experiment (data, split, features, model)            `setup.build_experiment`
           -> loaders (train / valid / test, this process's shard)  `make_loaders`
           -> initial parameters, optimizer, train state
           -> teacher (codebooks given, e.g. from a checkpoint, else fitted)  `make_teacher`
           -> KD loss weights and the compiled `train_step` / `eval_step`
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from corrkd_jax import optim
from corrkd_jax.data import EvalLoader, TrainLoader
from corrkd_jax.models import init_params
from corrkd_jax.teacher import Teacher, build_teacher
from corrkd_jax.trainer import sharding
from corrkd_jax.trainer.setup import Experiment, build_experiment
from corrkd_jax.trainer.steps import (
    CompiledPerShape,
    TrainState,
    create_train_state,
    eval_step,
    loss_weights,
    train_step,
)

log = logging.getLogger(__name__)


@dataclasses.dataclass
class RunParts:
    """What `build_run` assembles (the state is on the host: restore or replicate it)."""

    config: ml_collections.ConfigDict
    experiment: Experiment
    mesh: jax.sharding.Mesh
    train_loader: TrainLoader
    valid_loader: EvalLoader
    test_loader: EvalLoader
    tx: optax.GradientTransformation
    state: TrainState  # step 0: initial parameters, fresh optimizer state, the dropout key
    teacher: Teacher | None  # replicated; None for variants without distillation
    teacher_stats: dict[str, Any]  # codebook fit statistics per view ({} when given)
    weights: dict[str, jax.Array]  # KD term -> replicated float32 weight
    train_fn: CompiledPerShape  # train_step, state donated, compiled per batch shape
    eval_fn: CompiledPerShape  # eval_step, compiled per batch shape


def make_loaders(
    config: ml_collections.ConfigDict, experiment: Experiment
) -> tuple[TrainLoader, EvalLoader, EvalLoader]:
    """Train/valid/test loaders of this process's shard (length-bucketed batches)."""
    data = config.data
    buckets = tuple(data.length_buckets)
    options = dict(
        graph=experiment.graph,
        num_threads=int(data.num_threads),
        prefetch_buffer_size=int(data.prefetch),
    )
    train = TrainLoader(
        experiment.split.train,
        int(config.batch_size),
        buckets,
        seed=int(config.seed),
        # The code term runs over the batch's listed real node pairs (same loss), and
        # whole-sequence batches list their real targets for the output layer.
        pairs=experiment.variant.codes and bool(config.kd.pack_pairs),
        pair_growth=float(config.kd.pair_growth),
        pack_targets=experiment.split.train.targets.ndim == 2,
        **options,
    )
    valid, test = (
        EvalLoader(examples, int(config.eval_batch_size), buckets, **options)
        for examples in (experiment.split.valid, experiment.split.test)
    )
    return train, valid, test


def make_teacher(
    config: ml_collections.ConfigDict,
    experiment: Experiment,
    codebooks: Mapping[str, Any] | None = None,
    num_pairs: int | None = None,
) -> tuple[Teacher | None, dict[str, Any]]:
    """The teacher of distilling variants (None otherwise): the given codebooks, else fitted
    on `num_pairs` sampled pairs (default `kd.num_pairs`); and the fit statistics."""
    if not experiment.variant.distills:
        return None, {}
    kd = config.kd
    teacher, stats = build_teacher(
        experiment.features,
        num_codes=int(kd.num_codes),
        num_chunks=int(kd.num_chunks),
        kind=kd.corr_kind,
        num_pairs=int(num_pairs or kd.num_pairs),
        seed=int(config.seed),
        codebooks=codebooks,
        num_iters=int(kd.kmeans_iters),
    )
    summary = {
        view: {key: value for key, value in view_stats.items() if key != "code_usage"}
        for view, view_stats in stats.items()
        if view_stats
    }
    for view, view_stats in summary.items():
        log.info(
            "codebook %s: mean quantisation error %.4f, %d dead codes, %d iterations, %.1fs",
            view,
            view_stats["mean_quantisation_error"],
            view_stats["dead_codes"],
            view_stats["iterations"],
            view_stats["seconds"],
        )
    return teacher, summary


def compile_steps(
    config: ml_collections.ConfigDict,
    experiment: Experiment,
    tx: optax.GradientTransformation,
    mesh: jax.sharding.Mesh,
) -> tuple[CompiledPerShape, CompiledPerShape]:
    """`train_step` (state donated) and `eval_step`, compiled once per batch shape."""
    replicated = sharding.replicated(mesh)
    train_fn = CompiledPerShape(
        jax.jit(
            functools.partial(
                train_step,
                apply_fn=experiment.model.apply,
                tx=tx,
                backbone=config.model.backbone,
                num_negatives=int(config.num_negatives),
            ),
            donate_argnums=(0,),
            out_shardings=(replicated, replicated),
        )
    )
    eval_fn = CompiledPerShape(
        jax.jit(
            functools.partial(
                eval_step,
                apply_fn=experiment.model.apply,
                ks=tuple(int(k) for k in config.eval.ks),
                item_chunk=int(config.eval.item_chunk),
                exclude_history=bool(config.eval.exclude_history),
            ),
            out_shardings=replicated,
        )
    )
    return train_fn, eval_fn


def build_run(
    config: ml_collections.ConfigDict,
    *,
    experiment: Experiment | None = None,
    codebooks: Mapping[str, Any] | None = None,
    codebook_pairs: int | None = None,
) -> RunParts:
    """Assembles the run of `config` (module docstring).

    Args:
        config: a training config (derived from configs/default.py).
        experiment: an already built `setup.build_experiment(config)` (rebuilt when None).
        codebooks: view -> codebook to rebuild the teacher from (a resumed run's), else the
            codebooks are fitted.
        codebook_pairs: pairs sampled per codebook fit (default `kd.num_pairs`; benchmarks
            use fewer: step time does not depend on the codebook's values).
    """
    experiment = experiment or build_experiment(config)
    mesh = sharding.make_mesh()
    sharding.check_batch_size(int(config.batch_size))
    sharding.check_batch_size(int(config.eval_batch_size), "eval_batch_size")
    train_loader, valid_loader, test_loader = make_loaders(config, experiment)
    init_key, dropout_key = jax.random.split(jax.random.key(int(config.seed)))
    params = init_params(experiment.model, train_loader.dataset(0)[0], init_key)
    tx = optim.make_optimizer(
        config.optim,
        params,
        table_group=experiment.variant.table_group,
        steps_per_epoch=train_loader.num_batches,
    )
    teacher, teacher_stats = make_teacher(config, experiment, codebooks, codebook_pairs)
    weights = loss_weights(
        config.kd,
        experiment.model.views,
        holistic=experiment.variant.holistic,
        codes=experiment.variant.codes,
    )
    train_fn, eval_fn = compile_steps(config, experiment, tx, mesh)
    return RunParts(
        config=config,
        experiment=experiment,
        mesh=mesh,
        train_loader=train_loader,
        valid_loader=valid_loader,
        test_loader=test_loader,
        tx=tx,
        state=create_train_state(params, tx, dropout_key),
        teacher=sharding.replicate(teacher, mesh),
        teacher_stats=teacher_stats,
        weights=sharding.replicate({k: jnp.float32(v) for k, v in weights.items()}, mesh),
        train_fn=train_fn,
        eval_fn=eval_fn,
    )
