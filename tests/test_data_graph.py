"""Session-graph arrays against a straightforward loop over each row (the released rule)."""

from __future__ import annotations

import numpy as np
import pytest

from corrkd_jax.data.graph import session_graph


def loop_graph(row: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The per-sample loop of the released code, for one right-aligned row."""
    length = len(row)
    nodes: list[int] = []
    for x in row:
        if x > 0 and x not in nodes:
            nodes.append(int(x))
    alias = np.array([nodes.index(x) if x > 0 else 0 for x in row])
    adj = np.zeros((length, length), dtype=int)
    for u in range(len(nodes)):
        adj[u, u] = 1
    real = [x for x in row if x > 0]
    for a, b in zip(real[:-1], real[1:]):
        u, v = nodes.index(a), nodes.index(b)
        if u == v or adj[u, v] == 4:
            continue
        if adj[v, u] == 2:
            adj[u, v] = adj[v, u] = 4
        else:
            adj[u, v], adj[v, u] = 2, 3
    padded = np.zeros(length, dtype=int)
    padded[: len(nodes)] = nodes
    return padded, alias, adj


def test_hand_example():
    items = np.array([[0, 0, 5, 7, 5, 9, 9]])
    g = session_graph(items)
    assert g["nodes"][0].tolist() == [5, 7, 9, 0, 0, 0, 0]
    assert g["alias"][0].tolist() == [0, 0, 0, 1, 0, 2, 2]
    expected = np.zeros((7, 7), dtype=int)
    expected[0, 0] = expected[1, 1] = expected[2, 2] = 1  # self loops of the 3 real nodes
    expected[0, 1] = expected[1, 0] = 4  # 5 -> 7 and 7 -> 5
    expected[0, 2], expected[2, 0] = 2, 3  # 5 -> 9 only; 9 -> 9 adds nothing
    np.testing.assert_array_equal(g["adjacency"][0], expected)
    assert all(v.dtype == np.int32 for v in g.values())


@pytest.mark.parametrize("seed", range(4))
def test_matches_loop_on_random_batches(seed):
    rng = np.random.default_rng(seed)
    batch, length = 64, 12
    items = rng.integers(1, 6, (batch, length))  # few distinct items: many repeats
    lengths = rng.integers(0, length + 1, batch)
    items[np.arange(length)[None, :] < (length - lengths)[:, None]] = 0  # right-aligned
    g = session_graph(items)
    for b in range(batch):
        nodes, alias, adj = loop_graph(items[b])
        np.testing.assert_array_equal(g["nodes"][b], nodes)
        np.testing.assert_array_equal(g["alias"][b], alias)
        np.testing.assert_array_equal(g["adjacency"][b], adj)
    assert g["adjacency"].shape == (batch, length, length)


def test_empty_row():
    g = session_graph(np.zeros((2, 4), dtype=np.int32))
    assert not g["nodes"].any() and not g["alias"].any() and not g["adjacency"].any()
