"""Stage 2: train and evaluate a sequential recommender (KDSR and its baselines).

    python -m corrkd_jax.train --config configs/default.py --workdir runs/default
    python -m corrkd_jax.train --config configs/beauty.py:sasrec,kdsr --workdir runs/beauty \\
        --config.num_epochs=3

Flow of `train_and_evaluate(config, workdir)`: dataset -> split -> stage-1 features (computed
and cached when missing) -> teacher codebooks (fitted once, then saved with the checkpoint) ->
model -> optimizer -> epochs of `train_step` with validation after each, early stopping on
`config.eval.metric` -> the test split scored once with the best validation parameters.

Outputs in `workdir`: `config.json`, `dataset.json`, `metrics.jsonl` (train records every
`log_every_steps` steps, one epoch record per epoch), TensorBoard events in `tb/`,
`checkpoints/{latest,best}`, `curves.png` and `results.json`. Restarting the same command in
the same workdir resumes from `checkpoints/latest` (bit-identical to an uninterrupted run).
Data parallel over all devices (and processes, when launched as a multi-process job).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

from corrkd_jax import cli, optim, validate
from corrkd_jax.data import EvalLoader, TrainLoader
from corrkd_jax.models import init_params
from corrkd_jax.teacher import Teacher, build_teacher
from corrkd_jax.trainer import sharding
from corrkd_jax.trainer.checkpointing import Checkpoints
from corrkd_jax.trainer.early_stopping import EarlyStopping
from corrkd_jax.trainer.loop import (
    NonFiniteLossError,
    Progress,
    Run,
    end_epoch,
    finish,
    stop_reason,
    train_epoch,
)
from corrkd_jax.trainer.agreement import agreement_pairs
from corrkd_jax.trainer.metric_writer import MetricWriter
from corrkd_jax.trainer.setup import Experiment, build_experiment, repo_root
from corrkd_jax.trainer.steps import (
    CompiledPerShape,
    create_train_state,
    eval_step,
    loss_weights,
    train_step,
)
from corrkd_jax.trainer.workdir import RESULTS_FILE, results_table

__all__ = ["NonFiniteLossError", "train_and_evaluate", "train_step", "eval_step"]

log = logging.getLogger("corrkd_jax.train")  # not __main__ under python -m


def _teacher(config: ml_collections.ConfigDict, experiment: Experiment,
             checkpoints: Checkpoints) -> tuple[Teacher | None, dict[str, Any]]:
    """The teacher of distilling variants: codebooks from the checkpoint, else fitted."""
    if not experiment.variant.distills:
        return None, {}
    kd = config.kd
    saved = checkpoints.restore_codebooks() if checkpoints.latest_step() is not None else None
    teacher, stats = build_teacher(
            experiment.features, num_codes=int(kd.num_codes), num_chunks=int(kd.num_chunks),
            kind=kd.corr_kind, num_pairs=int(kd.num_pairs), seed=int(config.seed),
            codebooks=saved, num_iters=int(kd.kmeans_iters))
    summary = {view: {key: value for key, value in view_stats.items() if key != "code_usage"}
               for view, view_stats in stats.items() if view_stats}
    for view, view_stats in summary.items():
        log.info("codebook %s: mean quantisation error %.4f, %d dead codes, %d iterations, %.1fs",
                 view, view_stats["mean_quantisation_error"], view_stats["dead_codes"],
                 view_stats["iterations"], view_stats["seconds"])
    return teacher, summary


def _loaders(config: ml_collections.ConfigDict, experiment: Experiment
             ) -> tuple[TrainLoader, EvalLoader, EvalLoader]:
    """Train/valid/test loaders of this process's shard (length-bucketed batches)."""
    data_config = config.data
    buckets = tuple(data_config.length_buckets)
    options = dict(graph=experiment.graph, num_threads=int(data_config.get("num_threads", 0)),
                   prefetch_buffer_size=int(data_config.get("prefetch", 0)))
    # The code-distillation term runs over the batch's listed real node pairs (same loss).
    pairs = experiment.variant.codes and bool(config.kd.get("pack_pairs", True))
    # Whole sequences: the output layer scores only the listed real positions (same loss).
    pack_targets = experiment.split.train.targets.ndim == 2
    train = TrainLoader(experiment.split.train, int(config.batch_size), buckets,
                        seed=int(config.seed), pairs=pairs,
                        pair_growth=float(config.kd.get("pair_growth", 2.0)),
                        pack_targets=pack_targets, **options)
    valid, test = (EvalLoader(examples, int(config.eval_batch_size), buckets, **options)
                   for examples in (experiment.split.valid, experiment.split.test))
    return train, valid, test


def _compiled_steps(config: ml_collections.ConfigDict, experiment: Experiment,
                    tx: Any, mesh: jax.sharding.Mesh) -> tuple[CompiledPerShape, CompiledPerShape]:
    """`train_step` (state donated) and `eval_step`, compiled once per batch shape."""
    replicated = sharding.replicated(mesh)
    train_fn = CompiledPerShape(jax.jit(
            functools.partial(train_step, apply_fn=experiment.model.apply, tx=tx,
                              backbone=config.model.backbone,
                              num_negatives=int(config.get("num_negatives", 0))),
            donate_argnums=(0,), out_shardings=(replicated, replicated)))
    eval_fn = CompiledPerShape(jax.jit(
            functools.partial(eval_step, apply_fn=experiment.model.apply,
                              ks=tuple(int(k) for k in config.eval.ks),
                              item_chunk=int(config.eval.get("item_chunk", 0))),
            out_shardings=replicated))
    return train_fn, eval_fn


def _resume(config: ml_collections.ConfigDict, checkpoints: Checkpoints, state: Any,
            teacher: Teacher | None) -> tuple[Any, Any, Progress, EarlyStopping]:
    """(state, loader state, progress, early stopping) from the latest checkpoint, if any.

    `num_epochs` and `eval.patience` come from the current config, so a finished run can be
    extended by rerunning it with larger values.
    """
    progress, loader_state = Progress(), None
    step = checkpoints.latest_step()
    if step is not None:
        codebooks = dict(teacher.codebooks) if teacher is not None else {}
        state, _, loader_state, saved = checkpoints.restore_latest(state, codebooks)
        progress = Progress.from_dict(saved)
        log.info("resuming from step %d (epoch %d)", step, progress.epoch)
    stopper = (EarlyStopping.from_dict(progress.early_stopping) if progress.early_stopping
               else EarlyStopping(config.eval.metric, int(config.eval.patience)))
    stopper.patience = int(config.eval.patience)
    if progress.step_in_epoch == 0:  # at an epoch boundary: decide with the current limits
        progress.stop_reason = stop_reason(stopper, progress.epoch, int(config.num_epochs))
        progress.finished = bool(progress.stop_reason)
    return state, loader_state, progress, stopper


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains `config` in `workdir` (resuming when it holds a checkpoint) and evaluates it.

    Returns:
        The results (as written to `workdir/results.json`): `config`, `best_epoch`, `valid`
        and `test` metrics (HR/NDCG/MRR at `config.eval.ks`), `timing`, `versions`, ...; or
        `{"status": "interrupted", "step": s}` when `checkpoint.max_steps_per_run` stopped
        this process first (rerun to continue). Rerunning a finished run returns its results.

    Raises:
        NonFiniteLossError: a loss term became NaN/Inf (named in the message).
        ConfigError / DataFormatError / WorkdirError (ValueErrors, `corrkd_jax.errors`): a
            bad config field, bad data (file and line), or a workdir that belongs to another
            config or dataset; raised before stage 1 and before anything is written.
    """
    started = time.perf_counter()
    sharding.maybe_initialize_distributed()
    workdir = os.path.abspath(workdir)
    # Config, data, views and run directory are checked before stage 1 and before anything
    # is written to `workdir` (a refused run leaves it as it was).
    validate.prepare_run(config, workdir)
    experiment = build_experiment(config)
    validate.claim_workdir(config, experiment.data, workdir)
    mesh = sharding.make_mesh()
    sharding.check_batch_size(int(config.batch_size))
    sharding.check_batch_size(int(config.eval_batch_size), "eval_batch_size")
    train_loader, valid_loader, test_loader = _loaders(config, experiment)

    init_key, dropout_key = jax.random.split(jax.random.key(int(config.seed)))
    params = init_params(experiment.model, train_loader.dataset(0)[0], init_key)
    tx = optim.make_optimizer(config.optim, params, table_group=experiment.variant.table_group,
                              steps_per_epoch=train_loader.num_batches)
    checkpoints = Checkpoints(workdir, metric=config.eval.metric)
    teacher, teacher_stats = _teacher(config, experiment, checkpoints)
    resume_step = checkpoints.latest_step()
    state, loader_state, progress, stopper = _resume(
            config, checkpoints, create_train_state(params, tx, dropout_key), teacher)
    results_path = os.path.join(workdir, RESULTS_FILE)
    if progress.finished and os.path.exists(results_path):
        checkpoints.close()
        with open(results_path, encoding="utf-8") as f:
            return json.load(f)

    weights = loss_weights(config.kd, experiment.model.views,
                           holistic=experiment.variant.holistic, codes=experiment.variant.codes)
    train_fn, eval_fn = _compiled_steps(config, experiment, tx, mesh)
    writer = MetricWriter(workdir, resume_step=resume_step, active=jax.process_index() == 0)
    run = Run(config=config, workdir=workdir, experiment=experiment, mesh=mesh,
              train_loader=train_loader, valid_loader=valid_loader, test_loader=test_loader,
              train_fn=train_fn, eval_fn=eval_fn, teacher=sharding.replicate(teacher, mesh),
              weights=sharding.replicate({k: jnp.float32(v) for k, v in weights.items()}, mesh),
              checkpoints=checkpoints, writer=writer, started=started,
              agreement_pairs=agreement_pairs(experiment.data.items.num_items))
    state = sharding.replicate(state, mesh)
    if resume_step is None and teacher_stats:
        writer.write(0, "teacher", {f"{view}/{key}": value
                                    for view, stats in teacher_stats.items()
                                    for key, value in stats.items()})
    limit = int(config.checkpoint.get("max_steps_per_run", 0))
    try:
        while not progress.finished:
            state, completed = train_epoch(run, state, progress, loader_state)
            loader_state = None
            if not completed:
                return {"status": "interrupted", "step": int(state.step)}
            end_epoch(run, state, progress, stopper)
            if not progress.finished and limit and run.steps_this_process >= limit:
                return {"status": "interrupted", "step": int(state.step)}
        return finish(run, state, progress, stopper, teacher_stats)
    finally:
        checkpoints.close()
        writer.close()


# ----------------------------------------------------------------------------- CLI

_CONFIG = config_flags.DEFINE_config_file(
        "config", None, "Training config file, e.g. configs/default.py or "
        "configs/beauty.py:sasrec,kdsr; override fields with --config.x.y=value.",
        lock_config=True)
_WORKDIR = flags.DEFINE_string(
        "workdir", None, "Run directory for checkpoints, logs and results (resumed when it "
        "holds a checkpoint).")


def enable_compilation_cache() -> str:
    """Turns on JAX's persistent compilation cache (`$JAX_COMPILATION_CACHE_DIR`, else
    `<repo>/.cache/jax`): a rerun, a resumed run or another seed of the same config loads its
    ~12 compiled step programs (~90 s on 2 CPU cores for Beauty KDSR) instead of compiling.
    Returns the folder."""
    folder = os.environ.get("JAX_COMPILATION_CACHE_DIR") or os.path.join(
            repo_root(), ".cache", "jax")
    jax.config.update("jax_compilation_cache_dir", folder)
    return folder


def main(argv: list[str]) -> None:
    """CLI entry point: parses --config/--workdir, trains, prints the best/valid/test metrics."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    # orbax logs every save at INFO through absl: keep those quiet, ours at INFO.
    absl_logging.set_verbosity(absl_logging.WARNING)
    enable_compilation_cache()
    logging.getLogger("corrkd_jax").setLevel(logging.INFO)
    try:
        results = train_and_evaluate(_CONFIG.value, _WORKDIR.value)
    except NonFiniteLossError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    if results.get("status") == "interrupted":
        print(f"stopped at step {results['step']} (checkpoint.max_steps_per_run); rerun the "
              f"same command to continue")
        return
    print(results_table(results))
    print(f"results: {os.path.join(os.path.abspath(_WORKDIR.value), RESULTS_FILE)}")


if __name__ == "__main__":
    flags.mark_flags_as_required(["config", "workdir"])
    app.run(cli.guarded(main), flags_parser=cli.flags_parser)
