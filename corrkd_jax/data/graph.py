"""Session-graph arrays of a batch, vectorised over rows and positions (no Python loops).

Per row of `items` (right-aligned history, 0 = padding):
- `nodes`: the distinct items, left-aligned in order of first appearance, 0-padded;
- `alias`: for each position, the index of its item in `nodes` (0 at padded positions);
- `adjacency` over nodes: out[u, v] = 1 when item u is immediately followed by item v
  somewhere in the row and u != v; adj = 4 if out & out.T, 2 if out, 3 if out.T, else 0;
  adj[u, u] = 1 for every real node. This is the released code's per-sample loop rule.
"""

from __future__ import annotations

import numpy as np

NONE, SELF, OUT, IN, BOTH = 0, 1, 2, 3, 4


def session_graph(items: np.ndarray) -> dict[str, np.ndarray]:
    """items int32 [B, L] -> {"nodes": int32 [B, L], "alias": int32 [B, L],
    "adjacency": int32 [B, L, L]}."""
    items = np.asarray(items)
    batch, length = items.shape
    real = items > 0
    # same[b, i, j]: positions i and j hold the same real item.
    same = (items[:, :, None] == items[:, None, :]) & real[:, :, None]
    first_pos = np.argmax(same, axis=2)  # first position holding the item of position i
    is_first = real & (first_pos == np.arange(length)[None, :])
    node_of_first = np.cumsum(is_first, axis=1) - 1  # node index at first occurrences
    rows = np.arange(batch)[:, None]
    alias = np.where(real, node_of_first[rows, first_pos], 0).astype(np.int32)

    nodes = np.zeros((batch, length), dtype=np.int32)
    b_idx, p_idx = np.nonzero(is_first)
    nodes[b_idx, node_of_first[b_idx, p_idx]] = items[b_idx, p_idx]

    out = np.zeros((batch, length, length), dtype=bool)
    step = real[:, :-1] & real[:, 1:]
    step &= alias[:, :-1] != alias[:, 1:]
    b_idx, p_idx = np.nonzero(step)
    out[b_idx, alias[b_idx, p_idx], alias[b_idx, p_idx + 1]] = True
    out_t = out.transpose(0, 2, 1)
    adjacency = np.select([out & out_t, out, out_t], [BOTH, OUT, IN], NONE).astype(np.int32)
    num_nodes = is_first.sum(1)
    diag = np.arange(length)
    adjacency[:, diag, diag] = np.where(diag[None, :] < num_nodes[:, None], SELF, NONE)
    return {"nodes": nodes, "alias": alias, "adjacency": adjacency}
