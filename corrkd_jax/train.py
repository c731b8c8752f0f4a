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

import json
import logging
import os
import sys
import time
from typing import Any

import jax
import ml_collections
from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

from corrkd_jax import cli, host_memory, validate
from corrkd_jax.metrics import metric_names
from corrkd_jax.paths import repo_root
from corrkd_jax.teacher import Teacher
from corrkd_jax.trainer import sharding
from corrkd_jax.trainer.assemble import build_run
from corrkd_jax.trainer.checkpointing import Checkpoints
from corrkd_jax.trainer.early_stopping import EarlyStopping
from corrkd_jax.trainer.evaluators import build_evaluators
from corrkd_jax.trainer.loop import (
    NonFiniteLossError,
    Progress,
    Run,
    end_epoch,
    finish,
    stop_reason,
    train_epoch,
)
from corrkd_jax.trainer.metric_writer import MetricWriter
from corrkd_jax.trainer.setup import build_experiment
from corrkd_jax.trainer.steps import eval_step, train_step
from corrkd_jax.trainer.workdir import RESULTS_FILE, results_table

__all__ = ["NonFiniteLossError", "train_and_evaluate", "train_step", "eval_step"]

log = logging.getLogger("corrkd_jax.train")  # not __main__ under python -m


def _resume(
    config: ml_collections.ConfigDict, checkpoints: Checkpoints, state: Any, teacher: Teacher | None
) -> tuple[Any, Any, Progress, EarlyStopping]:
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
    stopper = (
        EarlyStopping.from_dict(progress.early_stopping)
        if progress.early_stopping
        else EarlyStopping(config.eval.metric, int(config.eval.patience))
    )
    stopper.patience = int(config.eval.patience)
    if progress.step_in_epoch == 0:  # at an epoch boundary: decide with the current limits
        progress.stop_reason = stop_reason(stopper, progress.epoch, int(config.num_epochs))
        progress.finished = bool(progress.stop_reason)
    return state, loader_state, progress, stopper


def train_and_evaluate(
    config: ml_collections.ConfigDict, workdir: str, *, host_memory_reused: bool = False
) -> dict[str, Any]:
    """Trains `config` in `workdir` (resuming when it holds a checkpoint) and evaluates it.

    `host_memory_reused` says whether this process ran `host_memory.reuse_freed_memory()`
    before JAX started (the CLI does); it is recorded in results.json's `timing`, because wall
    times on CPU differ 1.4-4x with and without it (RESULTS.md, "Compute").

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
    data = validate.prepare_run(config, workdir)
    experiment = build_experiment(config, data)  # the dataset is read once
    validate.claim_workdir(config, experiment.data, workdir)
    checkpoints = Checkpoints(workdir, metric=config.eval.metric)
    resume_step = checkpoints.latest_step()
    # A resumed run rebuilds its teacher from the saved codebooks instead of refitting.
    codebooks = (
        checkpoints.restore_codebooks()
        if resume_step is not None and experiment.variant.distills
        else None
    )
    parts = build_run(config, experiment=experiment, codebooks=codebooks)
    state, loader_state, progress, stopper = _resume(
        config, checkpoints, parts.state, parts.teacher
    )
    results_path = os.path.join(workdir, RESULTS_FILE)
    if progress.finished and os.path.exists(results_path):
        checkpoints.close()
        with open(results_path, encoding="utf-8") as f:
            return json.load(f)

    writer = MetricWriter(workdir, resume_step=resume_step, active=jax.process_index() == 0)
    evaluators = build_evaluators(
        tuple(config.eval.per_epoch),
        features=experiment.features,
        num_items=experiment.data.items.num_items,
        eval_fn=parts.eval_fn,
        test_loader=parts.test_loader,
        mesh=parts.mesh,
        metric_names=metric_names(config.eval.ks),
    )
    run = Run(
        config=config,
        workdir=workdir,
        experiment=experiment,
        mesh=parts.mesh,
        train_loader=parts.train_loader,
        valid_loader=parts.valid_loader,
        test_loader=parts.test_loader,
        train_fn=parts.train_fn,
        eval_fn=parts.eval_fn,
        teacher=parts.teacher,
        weights=parts.weights,
        checkpoints=checkpoints,
        writer=writer,
        started=started,
        evaluators=evaluators,
        host_memory_reused=host_memory_reused,
    )
    state = sharding.replicate(state, parts.mesh)
    if resume_step is None and parts.teacher_stats:
        writer.write(
            0,
            "teacher",
            {
                f"{view}/{key}": value
                for view, stats in parts.teacher_stats.items()
                for key, value in stats.items()
            },
        )
    limit = int(config.checkpoint.max_steps_per_run)
    try:
        while not progress.finished:
            state, completed = train_epoch(run, state, progress, loader_state)
            loader_state = None
            if not completed:
                return {"status": "interrupted", "step": int(state.step)}
            end_epoch(run, state, progress, stopper)
            if not progress.finished and limit and run.steps_this_process >= limit:
                return {"status": "interrupted", "step": int(state.step)}
        return finish(run, state, progress, stopper, parts.teacher_stats)
    finally:
        checkpoints.close()
        writer.close()


# ----------------------------------------------------------------------------- CLI

_CONFIG = config_flags.DEFINE_config_file(
    "config",
    None,
    "Training config file, e.g. configs/default.py or "
    "configs/beauty.py:sasrec,kdsr; override fields with --config.x.y=value.",
    lock_config=True,
)
_WORKDIR = flags.DEFINE_string(
    "workdir",
    None,
    "Run directory for checkpoints, logs and results (resumed when it holds a checkpoint).",
)
_REUSE_HOST_MEMORY = flags.DEFINE_bool(
    "reuse_host_memory",
    True,
    "Let glibc malloc reuse freed blocks (one arena, no mmap for large blocks, no trimming): "
    "on CPU it removes the page faults of XLA's per-step temporaries (a Toys KDSR epoch 134 s "
    "instead of 190 s, benchmarks/perf/host_memory.md). --noreuse_host_memory keeps glibc's "
    "defaults.",
)


def enable_compilation_cache() -> str:
    """Turns on JAX's persistent compilation cache (`$JAX_COMPILATION_CACHE_DIR`, else
    `<repo>/.cache/jax`): a rerun, a resumed run or another seed of the same config loads its
    ~12 compiled step programs (~90 s on 2 CPU cores for Beauty KDSR) instead of compiling.
    Returns the folder."""
    folder = os.environ.get("JAX_COMPILATION_CACHE_DIR") or os.path.join(
        repo_root(), ".cache", "jax"
    )
    jax.config.update("jax_compilation_cache_dir", folder)
    return folder


def main(argv: list[str]) -> None:
    """CLI entry point: parses --config/--workdir, trains, prints the best/valid/test metrics."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    # Before JAX creates its backend and worker threads.
    reused = _REUSE_HOST_MEMORY.value and host_memory.reuse_freed_memory()
    # orbax logs every save at INFO through absl: keep those quiet, ours at INFO.
    absl_logging.set_verbosity(absl_logging.WARNING)
    enable_compilation_cache()
    logging.getLogger("corrkd_jax").setLevel(logging.INFO)
    try:
        results = train_and_evaluate(_CONFIG.value, _WORKDIR.value, host_memory_reused=reused)
    except NonFiniteLossError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    # Multi-process runs leave through the coordination service's shutdown barrier here,
    # before interpreter teardown: without it process 0 can take the service down while a
    # peer is still finishing, and the peer aborts (SIGABRT; jax's own atexit hook runs
    # only after the backends are cleared).
    jax.distributed.shutdown()  # a no-op in a single process
    if results.get("status") == "interrupted":
        print(
            f"stopped at step {results['step']} (checkpoint.max_steps_per_run); rerun the "
            f"same command to continue"
        )
        return
    print(results_table(results))
    print(f"results: {os.path.join(os.path.abspath(_WORKDIR.value), RESULTS_FILE)}")


if __name__ == "__main__":
    flags.mark_flags_as_required(["config", "workdir"])
    app.run(cli.guarded(main), flags_parser=cli.flags_parser)
