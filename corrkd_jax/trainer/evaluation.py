"""Full-ranking evaluation of a split: per-batch sums on device, one division on the host.

`chunked_ranks` scores the items chunk by chunk for catalogues too large for a `[B, N]` score
matrix (the `eval.item_chunk` option of `eval_step`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from corrkd_jax import metrics as metrics_lib
from corrkd_jax.data import EvalLoader
from corrkd_jax.trainer.sharding import shard_batch

RANKS_KEY = "ranks"  # `eval_step`'s per-case output (trainer/steps.py)
# The same ranks with the case's history items removed from the candidates (the other
# protocol when `eval.exclude_history` is off; equal to RANKS_KEY when it is on).
UNSEEN_RANKS_KEY = "ranks_excluding_history"
PER_CASE_KEYS = (RANKS_KEY, UNSEEN_RANKS_KEY)


def evaluate(
    eval_fn: Callable[[Any, dict[str, jax.Array]], dict[str, jax.Array]],
    params: Any,
    loader: EvalLoader,
    mesh: Mesh,
    return_ranks: bool = False,
) -> dict[str, float] | tuple[dict[str, float], dict[str, np.ndarray]]:
    """Mean metrics over every case of `loader` (exact: padded rows carry weight 0).

    Args:
        eval_fn: (params, sharded batch) -> dict of float32 sums incl. `count`, and the
            per-case ranks [B] under `PER_CASE_KEYS` (`eval_step`, with replicated outputs).
        params: replicated model parameters.
        loader: the split's `EvalLoader` (this process's shard of every batch).
        mesh: the data-parallel mesh.
        return_ranks: also return each case's target ranks.

    Returns:
        metric name -> mean over the split's cases (`HR@k`, `NDCG@k`, `MRR@k`, `loss/ce`);
        with `return_ranks` also, per key of `PER_CASE_KEYS` that `eval_fn` returns, int32
        [num_cases]: the rank of case i's target (case order of the split, e.g. one test
        case per user in user order for leave-one-out).
    """
    totals, ranks = None, {key: [] for key in PER_CASE_KEYS}
    for batch in loader.iterator():
        sums = dict(eval_fn(params, shard_batch(batch, mesh)))
        for key in PER_CASE_KEYS:
            ranks[key].append(sums.pop(key, None))
        totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
    if totals is None:
        raise ValueError("evaluation split is empty")
    metrics = metrics_lib.finalize(jax.device_get(totals))
    if not return_ranks:
        return metrics
    rows = loader.plan().rows.reshape(-1)  # global batch rows -> case index (-1 = padding)
    case_ranks = {}
    for key, batches in ranks.items():
        if any(r is None for r in batches):
            continue
        per_row = np.concatenate([np.asarray(jax.device_get(r)).reshape(-1) for r in batches])
        case_ranks[key] = np.zeros(len(loader.examples), np.int32)
        case_ranks[key][rows[rows >= 0]] = per_row[rows >= 0]
    return metrics, case_ranks


def chunked_ranks(
    sequence: jax.Array, table: jax.Array, targets: jax.Array, chunk: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Target ranks and softmax normaliser over all items without a `[B, N]` score matrix.

    The items are scored `chunk` at a time (`[B, chunk]` scores) in a `lax.scan` that counts
    the items scoring strictly above the target and keeps an online log-sum-exp. The target's
    own score is the row-wise dot product, and its own column is not counted, so the rank
    matches `metrics.target_ranks` on the full scores up to float rounding of exact ties.

    Args:
        sequence: float32 [B, d] sequence vectors.
        table: float32 [N, d] item vectors (row j = item j + 1, padding excluded).
        targets: int32 [B] target columns in [0, N).
        chunk: items per scan step (static, >= 1).

    Returns:
        ranks int32 [B] (1 + items scoring above the target; int32 max for a NaN target score),
        logsumexp float32 [B] over all N scores, target scores float32 [B].
    """
    num_items, dim = table.shape
    chunk = max(1, min(int(chunk), num_items))
    steps = -(-num_items // chunk)
    padded = jnp.pad(table, ((0, steps * chunk - num_items), (0, 0)))
    target_scores = jnp.einsum("bd,bd->b", sequence, table[targets])
    columns = jnp.arange(chunk)

    def body(carry, step):
        above, running_max, running_sum = carry
        block = jax.lax.dynamic_slice_in_dim(padded, step * chunk, chunk)  # [chunk, d]
        scores = sequence @ block.T  # [B, chunk]
        column = step * chunk + columns
        valid = (column < num_items)[None, :]
        counted = valid & (column[None, :] != targets[:, None])
        above = above + jnp.sum(counted & (scores > target_scores[:, None]), 1, dtype=jnp.int32)
        scores = jnp.where(valid, scores, -jnp.inf)
        new_max = jnp.maximum(running_max, scores.max(1))
        running_sum = running_sum * jnp.exp(running_max - new_max) + jnp.exp(
            scores - new_max[:, None]
        ).sum(1)
        return (above, new_max, running_sum), None

    batch = sequence.shape[0]
    init = (
        jnp.zeros((batch,), jnp.int32),
        jnp.full((batch,), -jnp.inf, jnp.float32),
        jnp.zeros((batch,), jnp.float32),
    )
    (above, running_max, running_sum), _ = jax.lax.scan(body, init, jnp.arange(steps))
    ranks = jnp.where(jnp.isnan(target_scores), jnp.iinfo(jnp.int32).max, 1 + above)
    return ranks, running_max + jnp.log(running_sum), target_scores
