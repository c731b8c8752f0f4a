"""orbax checkpoints of a run: `latest` (everything needed to resume) and `best` (by validation).

Layout under `<workdir>/checkpoints/`:

- `latest/<step>/`: `state` (`TrainState`: params, optimizer state, step, rng), `codebooks`
  (the teacher's fitted codebooks, view -> [K, D]), `loader` (the data iterator's state, JSON)
  and `progress` (JSON: epoch, step within the epoch, early-stopping state, per-epoch
  history, timing). One is kept; restarting the command restores it.
- `best/<step>/`: `params` and `summary` (JSON: epoch and validation metrics) of the epoch
  with the best validation metric; `best_fn` reads that metric, so `best_step()` is the best
  epoch and not merely the latest save.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import jax
import orbax.checkpoint as ocp

CHECKPOINT_DIR = "checkpoints"


def _abstract(tree: Any) -> Any:
    """Shape/dtype/sharding structs of a pytree (the restore target)."""
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


_STANDARD = (ocp.args.StandardSave, ocp.args.StandardRestore)
_JSON = (ocp.args.JsonSave, ocp.args.JsonRestore)


def _handlers(**items: tuple[type, ...]) -> ocp.handlers.DefaultCheckpointHandlerRegistry:
    """Every item's save/restore arguments, registered up front: reading one item of a
    fresh manager (`latest_progress`, `restore_codebooks`) then no longer logs an orbax
    warning for each item it leaves on disk."""
    registry = ocp.handlers.DefaultCheckpointHandlerRegistry()
    for name, arg_types in items.items():
        for arg_type in arg_types:
            registry.add(name, arg_type)
    return registry


def _barrier_prefix(name: str) -> ocp.options.MultiprocessingOptions:
    """Per-manager names for orbax's cross-process barriers.

    With several processes, the `best` manager's background finalize and the `latest`
    manager's next save can reach orbax's save-progress barrier at the same time; under one
    shared name the coordination service refuses the second wait ("Barrier
    ThreadSaveMultiHostValueHolder:set_value_start is already ongoing"), that process fails
    and its peer hangs until the shutdown barrier times out.
    """
    return ocp.options.MultiprocessingOptions(barrier_sync_key_prefix=f"corrkd_{name}")


class Checkpoints:
    """The two managers of a run directory."""

    def __init__(self, workdir: str, *, metric: str, read_only: bool = False):
        """Args: workdir: the run directory; metric: validation metric maximised by `best`."""
        root = os.path.join(os.path.abspath(workdir), CHECKPOINT_DIR)
        self.metric = metric
        # Read-only managers get the settings orbax would otherwise force with a warning.
        common = dict(
            max_to_keep=None if read_only else 1,
            save_interval_steps=0 if read_only else 1,
            create=not read_only,
            read_only=read_only,
        )
        self.latest = ocp.CheckpointManager(
            os.path.join(root, "latest"),
            handler_registry=_handlers(
                state=_STANDARD, codebooks=_STANDARD, loader=_JSON, progress=_JSON
            ),
            options=ocp.CheckpointManagerOptions(
                multiprocessing_options=_barrier_prefix("latest"), **common
            ),
        )
        self.best = ocp.CheckpointManager(
            os.path.join(root, "best"),
            handler_registry=_handlers(params=_STANDARD, summary=_JSON),
            options=ocp.CheckpointManagerOptions(
                best_fn=lambda summary: float(summary[metric]),
                best_mode="max",
                multiprocessing_options=_barrier_prefix("best"),
                **common,
            ),
        )

    # ------------------------------------------------------------------ latest (resume)

    def latest_step(self) -> int | None:
        """Step of the resumable checkpoint, None when the run starts from scratch."""
        return self.latest.latest_step()

    def save_latest(
        self,
        step: int,
        state: Any,
        codebooks: Mapping[str, Any],
        loader_state: Mapping[str, Any],
        progress: Mapping[str, Any],
    ) -> None:
        """Saves the resumable state at `step` (replacing the previous one once written)."""
        if step in self.latest.all_steps():
            return  # the same step was saved already (e.g. a mid-epoch save at an epoch end)
        items = dict(
            state=ocp.args.StandardSave(state),
            loader=ocp.args.JsonSave(dict(loader_state)),
            progress=ocp.args.JsonSave(dict(progress)),
        )
        if codebooks:  # orbax refuses empty trees; variants without a teacher have none
            items["codebooks"] = ocp.args.StandardSave(dict(codebooks))
        self.latest.save(step, args=ocp.args.Composite(**items))

    def restore_latest(
        self, state_template: Any, codebooks_template: Mapping[str, Any]
    ) -> tuple[Any, dict[str, Any], dict[str, Any], dict[str, Any]]:
        """Restores (state, codebooks, loader_state, progress) of the latest step.

        Args:
            state_template: a `TrainState` with the right structure, shapes and shardings.
            codebooks_template: view -> array of the codebook shapes.
        """
        step = self.latest.latest_step()
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.latest.directory}")
        items = dict(
            state=ocp.args.StandardRestore(_abstract(state_template)),
            loader=ocp.args.JsonRestore(),
            progress=ocp.args.JsonRestore(),
        )
        if codebooks_template:
            items["codebooks"] = ocp.args.StandardRestore(_abstract(dict(codebooks_template)))
        restored = self.latest.restore(step, args=ocp.args.Composite(**items))
        codebooks = dict(restored.codebooks) if codebooks_template else {}
        return restored.state, codebooks, restored.loader, restored.progress

    def latest_progress(self) -> dict[str, Any] | None:
        """The `progress` JSON of the latest checkpoint, None without one."""
        step = self.latest.latest_step()
        if step is None:
            return None
        return self.latest.restore(
            step, args=ocp.args.Composite(progress=ocp.args.JsonRestore())
        ).progress

    def restore_codebooks(self) -> dict[str, Any] | None:
        """The saved codebooks (no template needed), None without a checkpoint or codebooks."""
        step = self.latest.latest_step()
        if step is None or "codebooks" not in self.latest.item_metadata(step):
            return None
        restored = self.latest.restore(
            step, args=ocp.args.Composite(codebooks=ocp.args.StandardRestore())
        )
        return dict(restored.codebooks)

    # ------------------------------------------------------------------ best (by validation)

    def save_best(self, step: int, params: Any, summary: Mapping[str, Any]) -> None:
        """Saves the parameters of a new best epoch; `summary` holds `self.metric`."""
        if step in self.best.all_steps():
            return  # written before an interruption; the replayed epoch is identical
        summary = dict(summary)
        self.best.save(
            step,
            args=ocp.args.Composite(
                params=ocp.args.StandardSave(params), summary=ocp.args.JsonSave(summary)
            ),
            metrics=summary,
        )

    def best_step(self) -> int | None:
        """Step of the best checkpoint (by `best_fn`), None when none was saved."""
        return self.best.best_step()

    def restore_best(self, params_template: Any | None = None) -> tuple[Any, dict[str, Any]]:
        """Restores (params, summary) of the best step.

        Args:
            params_template: params with the target structure/shardings; None restores numpy
                arrays as saved (e.g. for inference on the host).
        """
        step = self.best.best_step()
        if step is None:
            raise FileNotFoundError(f"no best checkpoint in {self.best.directory}")
        params_args = (
            ocp.args.StandardRestore(_abstract(params_template))
            if params_template is not None
            else ocp.args.StandardRestore()
        )
        restored = self.best.restore(
            step, args=ocp.args.Composite(params=params_args, summary=ocp.args.JsonRestore())
        )
        return restored.params, restored.summary

    def wait(self) -> None:
        """Blocks until pending asynchronous saves are on disk."""
        self.latest.wait_until_finished()
        self.best.wait_until_finished()

    def close(self) -> None:
        """Waits for pending saves and releases the managers."""
        self.latest.close()
        self.best.close()
