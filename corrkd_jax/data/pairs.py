"""Packed node pairs of a batch for the KDSR pair terms (host side, vectorised numpy).

The correlation-code term runs an MLP over every pair (i < j) of real nodes of every row. A
dense `[B, Lb, Lb]` layout pays for padding: on Beauty, batches of the `Lb = 10` bucket have
~1,850 real pairs but 256 x 45 = 11,520 slots. Instead the pipeline lists the real pairs
of each batch and pads the list to a capacity taken from a short geometric ladder
(`pair_capacity`), so the jitted step compiles once per (length bucket, capacity) and the
MLP runs on at most `growth` x the real pairs. The loss is a mean over real pairs, so the
result is the same as the dense form.

Layout (shard-friendly): the batch's rows are cut into `G` groups of `B / G` consecutive rows
(G = the number of devices, so each device holds whole groups); every group lists its pairs
with row indices local to the group:

    pairs         int32 [G, C, 3]   (row in group, i, j), i < j, both real nodes; padding (0, 0, 0)
    pair_weights  float32 [G, C]    1 for a listed pair, 0 for padding

`C` is the same for every group of the global batch (the ladder value of the largest group's
count), so all processes step with the same shapes.
"""

from __future__ import annotations

import math

import numpy as np

PAIR_KEYS = ("pairs", "pair_weights")


def node_counts(histories: np.ndarray, distinct: bool) -> np.ndarray:
    """Real nodes per case: distinct items (session graph) or real positions.

    Args: histories int [n, L] (0 = padding); distinct: count distinct items.

    Returns: int64 [n].
    """
    histories = np.asarray(histories)
    if not distinct:
        return (histories > 0).sum(1).astype(np.int64)
    ordered = np.sort(histories, axis=1)
    new = np.ones_like(ordered, dtype=bool)
    new[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    return (new & (ordered > 0)).sum(1).astype(np.int64)


def pair_counts(nodes: np.ndarray) -> np.ndarray:
    """Pairs i < j of `nodes` real nodes: int64 [...] = n (n - 1) / 2."""
    nodes = np.asarray(nodes, dtype=np.int64)
    return nodes * (nodes - 1) // 2


def pair_capacity(
    count: int, max_count: int, *, growth: float = 2.0, min_capacity: int = 64
) -> int:
    """The ladder value for `count` pairs: the smallest `min_capacity * growth^k >= count`
    (rounded up to a multiple of 8), at most `max_count` (the dense number of pair slots).

    A short ladder keeps the compiled shapes few; `growth` bounds the padding (at most
    `growth` x the real pairs, ~1.2x on average for growth 2 on Beauty).
    """
    if growth <= 1.0:
        raise ValueError(f"pair capacity growth must be > 1, got {growth}")
    if count <= min_capacity:
        capacity = min_capacity
    else:
        steps = math.ceil(math.log(count / min_capacity) / math.log(growth) - 1e-9)
        capacity = int(math.ceil(min_capacity * growth**steps / 8.0) * 8)
    return max(1, min(capacity, max(int(max_count), 1)))


def pack_pairs(node_items: np.ndarray, groups: int, capacity: int) -> dict[str, np.ndarray]:
    """Lists the real pairs (i < j) of every row, grouped and padded to `capacity`.

    Args:
        node_items: int [B, Ln] node ids of the pair terms (0 = padding): `nodes` for the
            session graph, `items` (positions) otherwise.
        groups: G, a divisor of B.
        capacity: C, at least the largest group's pair count.

    Returns: {"pairs": int32 [G, C, 3], "pair_weights": float32 [G, C]} (module docstring).
    """
    node_items = np.asarray(node_items)
    batch, length = node_items.shape
    if groups < 1 or batch % groups:
        raise ValueError(f"pair groups {groups} must divide the batch size {batch}")
    rows_per_group = batch // groups
    real = node_items > 0
    upper = np.triu(np.ones((length, length), dtype=bool), k=1)
    rows, left, right = np.nonzero(real[:, :, None] & real[:, None, :] & upper)  # row-major
    group = rows // rows_per_group
    per_group = np.bincount(group, minlength=groups)
    if per_group.max(initial=0) > capacity:
        raise ValueError(f"a group has {per_group.max()} pairs, above the capacity {capacity}")
    # Slot of each pair inside its group: pairs come sorted by row, hence by group.
    starts = np.concatenate([[0], np.cumsum(per_group)[:-1]])
    slot = np.arange(len(rows)) - starts[group]
    pairs = np.zeros((groups, capacity, 3), dtype=np.int32)
    pairs[group, slot] = np.stack([rows % rows_per_group, left, right], axis=-1)
    weights = np.zeros((groups, capacity), dtype=np.float32)
    weights[group, slot] = 1.0
    return {"pairs": pairs, "pair_weights": weights}
