"""Data-parallel forward passes: params replicated, batches sharded over all local devices."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import jax
import numpy as np
import tqdm
from jax.sharding import Mesh

from corrkd_jax.mesh import batch_sharding, make_mesh, replicated


def local_mesh() -> Mesh:
    """The stage-1 mesh: this process's local devices (each process encodes its own rows)."""
    return make_mesh(jax.local_devices())


def global_batch_size(batch_size: int, mesh: Mesh) -> int:
    """`batch_size` rounded up to a multiple of the number of devices on the mesh."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = mesh.devices.size
    return math.ceil(batch_size / n) * n


class ShardedForward:
    """`fn(params, *arrays) -> [B, d]` jitted once per input shape, batch dim sharded."""

    def __init__(self, fn: Callable[..., jax.Array], params: Any, mesh: Mesh) -> None:
        self._batch = batch_sharding(mesh)
        self._params = jax.device_put(params, replicated(mesh))
        self._fn = jax.jit(fn, out_shardings=self._batch)

    def __call__(self, *arrays: np.ndarray) -> jax.Array:
        """arrays: numpy [B, ...] with B a multiple of the device count -> [B, d] (async)."""
        sharded = [jax.device_put(a, self._batch) for a in arrays]
        return self._fn(self._params, *sharded)


def pad_rows(array: np.ndarray, rows: int) -> np.ndarray:
    """array [n, ...] zero-padded at the end to [rows, ...] (rows >= n)."""
    if array.shape[0] == rows:
        return array
    pad = [(0, rows - array.shape[0])] + [(0, 0)] * (array.ndim - 1)
    return np.pad(array, pad)


def run_batches(
    forward: ShardedForward,
    batches: Iterable[tuple[np.ndarray, tuple[np.ndarray, ...]]],
    num_rows: int,
    *,
    progress: bool = True,
    desc: str = "",
    total: int | None = None,
) -> np.ndarray:
    """(rows int [b], arrays [B, ...]) batches -> float32 [num_rows, d], row r = result of r.

    `rows` are the output rows of the batch's first b entries; the padded entries beyond b are
    dropped. One batch stays in flight while the host prepares the next (async dispatch).
    Rows that occur in no batch stay zero. `total`: rows the progress bar expects
    (default num_rows).
    """
    if num_rows < 1:
        raise ValueError("nothing to encode (0 inputs)")
    bar = tqdm.tqdm(
        total=num_rows if total is None else total,
        desc=desc,
        unit="item",
        disable=not progress,
        dynamic_ncols=True,
        mininterval=1.0,
    )
    out: np.ndarray | None = None
    pending: tuple[np.ndarray, jax.Array] | None = None

    def collect(rows: np.ndarray, result: jax.Array) -> None:
        nonlocal out
        values = np.asarray(jax.device_get(result), dtype=np.float32)
        if out is None:
            out = np.zeros((num_rows,) + values.shape[1:], np.float32)
        out[rows] = values[: len(rows)]
        bar.update(len(rows))

    try:
        for rows, arrays in batches:
            result = forward(*arrays)
            if pending is not None:
                collect(*pending)
            pending = (rows, result)
        if pending is not None:
            collect(*pending)
    finally:
        bar.close()
    if out is None:
        raise ValueError(f"no batches were produced for {num_rows} inputs")
    return out
