"""Data parallelism over the mesh of `corrkd_jax.mesh`: multi-process start-up, batch-size
checks, batches split over "data", state replicated."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from corrkd_jax.mesh import batch_sharding, make_mesh, replicated

__all__ = [
    "batch_sharding",
    "check_batch_size",
    "make_mesh",
    "maybe_initialize_distributed",
    "multi_process_environment",
    "replicate",
    "replicated",
    "shard_batch",
]

# Set by the usual launchers (SLURM, Open MPI) to the number of processes of the job.
_PROCESS_COUNT_ENV = ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE")


def multi_process_environment() -> bool:
    """True when JAX's coordinator variable is set or a launcher started several processes."""
    if os.environ.get("JAX_COORDINATOR_ADDRESS"):
        return True
    return any(int(os.environ.get(name) or 1) > 1 for name in _PROCESS_COUNT_ENV)


def maybe_initialize_distributed() -> bool:
    """Calls `jax.distributed.initialize()` in a multi-process job.

    Settings are auto-detected (SLURM, Open MPI, Cloud TPU pod slices, ...); a manual launch
    sets `JAX_COORDINATOR_ADDRESS=host:port` plus `JAX_NUM_PROCESSES` and `JAX_PROCESS_ID`
    (0..n-1) in every process. Returns True when it initialised. Must run before anything
    touches the devices.
    """
    if not multi_process_environment() or jax.distributed.is_initialized():
        return False
    kwargs = {}
    for name, key in (("JAX_NUM_PROCESSES", "num_processes"), ("JAX_PROCESS_ID", "process_id")):
        if os.environ.get(name):
            kwargs[key] = int(os.environ[name])
    jax.distributed.initialize(**kwargs)
    return True


def check_batch_size(batch_size: int, name: str = "batch_size") -> None:
    """Global batch sizes must split evenly over the devices and the processes."""
    devices, processes = jax.device_count(), jax.process_count()
    if batch_size % devices or batch_size % processes:
        raise ValueError(
            f"config.{name}={batch_size} must be divisible by the number of "
            f"devices ({devices}) and processes ({processes})"
        )


def shard_batch(batch: Mapping[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Global arrays from this process's rows of a batch (its slice of the global batch).

    Args:
        batch: numpy arrays with the process-local leading dimension B / process_count.

    Returns:
        jax Arrays of global leading dimension B, sharded over "data".
    """
    sharding = batch_sharding(mesh)
    return {
        key: jax.make_array_from_process_local_data(sharding, np.asarray(value))
        for key, value in batch.items()
    }


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Places every leaf of `tree` (arrays, None allowed) on all devices.

    In a multi-process job the leaves go through host memory first: `device_put` of an
    array committed to one local device onto a mesh spanning processes makes an array
    whose shards cannot be read back (orbax then fails to save it). Every process holds
    the same values (same seed, same data), as a replicated array requires.
    """
    if jax.process_count() > 1:
        tree = jax.tree.map(np.asarray, tree)
    return jax.device_put(tree, replicated(mesh))
