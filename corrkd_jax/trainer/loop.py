"""The epoch loop of `corrkd_jax.train`: steps, logging, validation, checkpoints, results.

`Run` holds what is fixed while one process trains; `Progress` is the host-side loop state
saved (as JSON) with every checkpoint, so a restarted process continues exactly where the
last save left off. `train_epoch` runs the rest of the current epoch, `end_epoch` validates
and checkpoints, `finish` scores the test split once with the best parameters.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import Mapping
from typing import Any

import jax
import ml_collections
import numpy as np
from tqdm import tqdm

from corrkd_jax.data import EvalLoader, TrainLoader
from corrkd_jax.io import save_npy, write_json, write_text
from corrkd_jax.metrics import metric_names, metrics_from_ranks
from corrkd_jax.teacher import Teacher
from corrkd_jax.trainer import sharding
from corrkd_jax.trainer.checkpointing import Checkpoints
from corrkd_jax.trainer.early_stopping import EarlyStopping
from corrkd_jax.trainer.evaluation import RANKS_KEY, UNSEEN_RANKS_KEY, evaluate
from corrkd_jax.trainer.evaluators import Evaluator
from corrkd_jax.trainer.metric_writer import MetricWriter
from corrkd_jax.trainer.plots import plot_curves
from corrkd_jax.trainer.setup import Experiment
from corrkd_jax.trainer.steps import CompiledPerShape, TrainState
from corrkd_jax.trainer.workdir import (
    CURVES_FILE,
    RESULTS_FILE,
    RESULTS_TABLE_FILE,
    TEST_RANKS_FILE,
    dataset_summary,
    json_config,
    results_table,
    run_versions,
)
from corrkd_jax.validate import nan_advice

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN or infinite; the last checkpoint before it is intact."""


@dataclasses.dataclass
class Progress:
    """Host-side loop state, saved as JSON with every checkpoint."""

    epoch: int = 0  # current epoch (0-based); at an epoch boundary = epochs completed
    step_in_epoch: int = 0  # optimizer steps done in the current epoch
    epoch_sums: dict[str, float] = dataclasses.field(default_factory=dict)  # loss sums
    epoch_steps: int = 0  # steps summed in epoch_sums
    rates: dict[str, float] = dataclasses.field(default_factory=dict)  # latest lr per group
    epoch_seconds: float = 0.0  # wall time spent in the current epoch so far
    epoch_compile_seconds: float = 0.0  # of which compiling (first batch of each shape)
    early_stopping: dict[str, Any] = dataclasses.field(default_factory=dict)
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # epoch records
    compile_seconds: float = 0.0  # compile time of earlier processes of this run
    seconds: float = 0.0  # wall time of earlier processes of this run (up to their last save)
    finished: bool = False  # training is over (early stop or num_epochs)
    stop_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> Progress:
        return cls(**state)


@dataclasses.dataclass
class Run:
    """Everything fixed for the duration of one process's part of a run."""

    config: ml_collections.ConfigDict
    workdir: str
    experiment: Experiment
    mesh: jax.sharding.Mesh
    train_loader: TrainLoader
    valid_loader: EvalLoader
    test_loader: EvalLoader
    train_fn: CompiledPerShape
    eval_fn: CompiledPerShape
    teacher: Teacher | None
    weights: dict[str, jax.Array]
    checkpoints: Checkpoints
    writer: MetricWriter
    started: float
    evaluators: list[Evaluator] = dataclasses.field(default_factory=list)  # eval.per_epoch
    steps_this_process: int = 0
    host_memory_reused: bool = False  # corrkd_jax.host_memory applied in this process

    @property
    def steps_per_epoch(self) -> int:
        return self.train_loader.num_batches

    @property
    def primary(self) -> bool:
        return jax.process_index() == 0

    def compiled_here(self) -> float:
        """Seconds this process spent compiling steps so far."""
        return self.train_fn.compile_seconds + self.eval_fn.compile_seconds

    def compile_seconds(self, progress: Progress) -> float:
        """Compile seconds of the whole run (earlier processes included)."""
        return progress.compile_seconds + self.compiled_here()

    def save_latest(
        self, step: int, state: TrainState, progress: Progress, loader_state: Mapping[str, Any]
    ) -> None:
        """Saves the resumable checkpoint; timing fields include this process's time so far."""
        saved = dataclasses.replace(
            progress,
            compile_seconds=self.compile_seconds(progress),
            seconds=progress.seconds + time.perf_counter() - self.started,
        )
        codebooks = dict(self.teacher.codebooks) if self.teacher is not None else {}
        self.checkpoints.save_latest(step, state, codebooks, loader_state, saved.to_dict())


def _add_sums(
    total: dict[str, jax.Array] | None, terms: dict[str, jax.Array]
) -> dict[str, jax.Array]:
    """Running sums of a step's terms; learning rates are kept as the latest value."""
    if total is None:
        return dict(terms)
    return {
        key: value if key.startswith("lr/") else total[key] + value for key, value in terms.items()
    }


def flush(
    run: Run,
    progress: Progress,
    interval: dict[str, jax.Array] | None,
    count: int,
    step: int,
    seconds: float,
) -> dict[str, float]:
    """Moves the interval's sums to the host, checks them, logs means; returns the means."""
    if interval is None or count == 0:
        return {}
    sums = {key: float(value) for key, value in jax.device_get(interval).items()}
    bad = [key for key, value in sums.items() if not math.isfinite(value)]
    if bad:
        # Loss terms first: they name the cause; grad_norm follows from them.
        bad.sort(key=lambda key: (not key.startswith("loss/"), key))
        last = run.checkpoints.latest_step()
        saved = (
            f"the last good checkpoint (step {last}) in {run.checkpoints.latest.directory} "
            f"is intact"
            if last is not None
            else "no checkpoint had been saved yet"
        )
        message = (
            f"{bad[0]} became {sums[bad[0]]} between steps {step - count + 1} and "
            f"{step} (epoch {progress.epoch + 1}); non-finite: {bad}. Training stopped; "
            f"{saved}. " + nan_advice(run.config, run.workdir, bad[0], last)
        )
        run.writer.write(step, "error", {"message": message})
        raise NonFiniteLossError(message)
    means = {key: value if key.startswith("lr/") else value / count for key, value in sums.items()}
    for key, value in sums.items():
        if key.startswith("lr/"):
            progress.rates[key] = value
        else:
            progress.epoch_sums[key] = progress.epoch_sums.get(key, 0.0) + value
    progress.epoch_steps += count
    run.writer.write(
        step,
        "train",
        {"epoch": progress.epoch, **means, "steps_per_second": count / max(seconds, 1e-9)},
    )
    return means


def stop_reason(stopper: EarlyStopping, epochs_done: int, num_epochs: int) -> str:
    """Why training is over after `epochs_done` epochs ("" = it is not)."""
    if stopper.should_stop:
        return f"early stopping: no {stopper.metric} improvement for {stopper.patience} epochs"
    if epochs_done >= num_epochs:
        return f"num_epochs={num_epochs} reached"
    return ""


def train_epoch(
    run: Run, state: TrainState, progress: Progress, loader_state: Mapping[str, Any] | None
) -> tuple[TrainState, bool]:
    """Runs the rest of the current epoch; returns (state, False) when the process must stop
    early (`checkpoint.max_steps_per_run`), after saving a resumable checkpoint."""
    config, spe = run.config, run.steps_per_epoch
    log_every = max(1, int(config.log_every_steps))
    save_every = int(config.checkpoint.every_steps)
    max_steps = int(config.checkpoint.max_steps_per_run)
    iterator = run.train_loader.iterator(progress.epoch)
    if loader_state:
        iterator.set_state(dict(loader_state))
    # Users read epochs counted from 1 (files keep the 0-based index `epoch`).
    bar = tqdm(
        total=spe,
        initial=progress.step_in_epoch,
        desc=f"epoch {progress.epoch + 1}/{config.num_epochs}",
        unit="step",
        dynamic_ncols=True,
        leave=False,
        disable=not (config.progress and run.primary),
    )
    interval, count, tick = None, 0, time.perf_counter()
    epoch_start, compiled_start = time.perf_counter(), run.compiled_here()

    def account_time() -> None:
        nonlocal epoch_start, compiled_start
        progress.epoch_seconds += time.perf_counter() - epoch_start
        progress.epoch_compile_seconds += run.compiled_here() - compiled_start
        epoch_start, compiled_start = time.perf_counter(), run.compiled_here()

    try:
        for batch in iterator:
            state, terms = run.train_fn(
                state, sharding.shard_batch(batch, run.mesh), run.teacher, run.weights
            )
            interval, count = _add_sums(interval, terms), count + 1
            progress.step_in_epoch += 1
            run.steps_this_process += 1
            step = progress.epoch * spe + progress.step_in_epoch
            bar.update(1)
            end_of_epoch = progress.step_in_epoch == spe
            save_now = save_every > 0 and step % save_every == 0 and not end_of_epoch
            stop_now = max_steps > 0 and run.steps_this_process >= max_steps and not end_of_epoch
            if step % log_every == 0 or end_of_epoch or save_now or stop_now:
                now = time.perf_counter()
                means = flush(run, progress, interval, count, step, now - tick)
                interval, count, tick = None, 0, now
                bar.set_postfix(
                    {
                        k.removeprefix("loss/"): f"{v:.4f}"
                        for k, v in means.items()
                        if k.startswith("loss/")
                    }
                )
            if save_now or stop_now:
                account_time()
                run.save_latest(step, state, progress, iterator.get_state())
            if stop_now:
                return state, False
    finally:
        bar.close()
    account_time()
    return state, True


def end_epoch(run: Run, state: TrainState, progress: Progress, stopper: EarlyStopping) -> None:
    """Validation, early stopping, best checkpoint, epoch record, latest checkpoint, plot."""
    config, epoch = run.config, progress.epoch
    step = (epoch + 1) * run.steps_per_epoch
    start, compiled_start = time.perf_counter(), run.compiled_here()
    valid = evaluate(run.eval_fn, state.params, run.valid_loader, run.mesh)
    improved = stopper.update(epoch, valid)
    if improved:
        run.checkpoints.save_best(step, state.params, {"epoch": epoch, **valid})
    seconds = progress.epoch_seconds + time.perf_counter() - start
    compile_seconds = progress.epoch_compile_seconds + run.compiled_here() - compiled_start
    record = {"epoch": epoch}
    record.update(
        {key: value / max(progress.epoch_steps, 1) for key, value in progress.epoch_sums.items()}
    )
    record.update(progress.rates)
    record.update({f"valid/{key}": value for key, value in valid.items()})
    for evaluator in run.evaluators:  # never used for selection (trainer/evaluators.py)
        record.update(evaluator(state.params))
    record.update(
        {"best_epoch": stopper.best_epoch, "seconds": seconds, "compile_seconds": compile_seconds}
    )
    run.writer.write(step, "epoch", record)
    progress.history.append(record)
    log.info(
        "epoch %d: loss %.4f, valid %s %.4f (best %.4f at epoch %d), %.1fs",
        epoch + 1,
        record.get("loss/total", float("nan")),
        stopper.metric,
        valid[stopper.metric],
        stopper.best_value,
        stopper.best_epoch + 1,
        seconds,
    )
    progress.epoch += 1
    progress.step_in_epoch = progress.epoch_steps = 0
    progress.epoch_sums, progress.epoch_seconds, progress.epoch_compile_seconds = {}, 0.0, 0.0
    progress.early_stopping = stopper.to_dict()
    progress.stop_reason = stop_reason(stopper, progress.epoch, int(config.num_epochs))
    progress.finished = bool(progress.stop_reason)
    run.save_latest(step, state, progress, {})
    if run.primary:
        plot_curves(progress.history, os.path.join(run.workdir, CURVES_FILE), metric=stopper.metric)


def finish(
    run: Run,
    state: TrainState,
    progress: Progress,
    stopper: EarlyStopping,
    teacher_stats: Mapping[str, Any],
) -> dict[str, Any]:
    """Scores the test split once with the best validation parameters; writes results.json."""
    params, summary = run.checkpoints.restore_best(state.params)
    test, ranks = evaluate(run.eval_fn, params, run.test_loader, run.mesh, return_ranks=True)
    test_ranks = ranks[RANKS_KEY]
    experiment = run.experiment
    names = metric_names(run.config.eval.ks)
    # Every case weighs 1 in the test split, so the mean over cases is the split's metric.
    unseen = metrics_from_ranks(ranks[UNSEEN_RANKS_KEY], tuple(run.config.eval.ks))
    results = {
        "config": json_config(run.config),
        "best_epoch": int(summary["epoch"]),
        "valid": {name: summary[name] for name in names},
        "test": {name: test[name] for name in names},
        # The same checkpoint with the user's history items never candidates (many papers'
        # protocol; equal to "test" when eval.exclude_history is on). Never used for selection.
        "test_excluding_history": {name: float(np.mean(unseen[name])) for name in names},
        "stop_reason": progress.stop_reason,
        "epochs_trained": progress.epoch,
        "steps": int(progress.epoch * run.steps_per_epoch),
        "data": {
            **dataset_summary(experiment.data),
            "train_cases": len(experiment.split.train.targets),
            "train_targets": experiment.split.train.num_targets,
            "valid_cases": len(experiment.split.valid.targets),
            "test_cases": len(experiment.split.test.targets),
        },
        "teacher": dict(teacher_stats),
        "timing": {
            # Wall time per epoch (training + validation), and the same without the
            # one-off compilation (first epoch mostly).
            "epoch_seconds": [r["seconds"] for r in progress.history],
            "epoch_seconds_excluding_compile": [
                r["seconds"] - r["compile_seconds"] for r in progress.history
            ],
            "mean_epoch_seconds_excluding_compile": float(
                np.mean([r["seconds"] - r["compile_seconds"] for r in progress.history])
            ),
            "compile_seconds": run.compile_seconds(progress),
            "total_seconds": progress.seconds + time.perf_counter() - run.started,
            # Whether glibc malloc reused freed blocks (`corrkd_jax.host_memory`) in the
            # process that finished the run: CPU epochs took 1.4-4x as long without it.
            "host_memory_reused": run.host_memory_reused,
        },
        "versions": run_versions(),
    }
    for evaluator in run.evaluators:
        results.update(evaluator.summary(progress.history))
    if run.primary:
        # Per-case ranks first: results.json marks the run finished.
        save_npy(os.path.join(run.workdir, TEST_RANKS_FILE), test_ranks)
        write_json(os.path.join(run.workdir, RESULTS_FILE), results)
        write_text(os.path.join(run.workdir, RESULTS_TABLE_FILE), results_table(results))
        plot_curves(progress.history, os.path.join(run.workdir, CURVES_FILE), metric=stopper.metric)
    run.writer.write(int(state.step), "test", {f"test/{k}": v for k, v in test.items()})
    log.info(
        "test at best epoch %d: %s",
        results["best_epoch"] + 1,
        ", ".join(f"{k} {v:.4f}" for k, v in results["test"].items()),
    )
    return results
