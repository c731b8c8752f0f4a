"""Full-ranking evaluation of a split: per-batch sums on device, one division on the host."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from corrkd_jax import metrics as metrics_lib
from corrkd_jax.data import EvalLoader
from corrkd_jax.trainer.sharding import shard_batch


def evaluate(
        eval_fn: Callable[[Any, dict[str, jax.Array]], dict[str, jax.Array]],
        params: Any,
        loader: EvalLoader,
        mesh: Mesh,
) -> dict[str, float]:
    """Mean metrics over every case of `loader` (exact: padded rows carry weight 0).

    Args:
        eval_fn: (params, sharded batch) -> dict of float32 sums incl. `count` (`eval_step`).
        params: replicated model parameters.
        loader: the split's `EvalLoader` (this process's shard of every batch).
        mesh: the data-parallel mesh.

    Returns:
        metric name -> mean over the split's cases (`HR@k`, `NDCG@k`, `MRR@k`, `loss/ce`).
    """
    totals = None
    for batch in loader.iterator():
        sums = eval_fn(params, shard_batch(batch, mesh))
        totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
    if totals is None:
        raise ValueError("evaluation split is empty")
    return metrics_lib.finalize(jax.device_get(totals))
