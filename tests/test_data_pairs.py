"""Packed node pairs: counts, the capacity ladder, packing, and the loaders' pair arrays."""

from __future__ import annotations

import numpy as np
import pytest

from corrkd_jax.data.pairs import node_counts, pack_pairs, pair_capacity, pair_counts
from corrkd_jax.data.pipeline import TrainLoader
from corrkd_jax.data.structures import Examples


def test_node_counts_distinct_items_or_positions():
    histories = np.asarray([[0, 0, 5, 3, 5], [0, 0, 0, 0, 0], [7, 7, 7, 7, 7], [1, 2, 3, 4, 6]])
    np.testing.assert_array_equal(node_counts(histories, distinct=True), [2, 0, 1, 5])
    np.testing.assert_array_equal(node_counts(histories, distinct=False), [3, 0, 5, 5])
    np.testing.assert_array_equal(pair_counts([0, 1, 2, 5]), [0, 0, 1, 10])


def test_pair_capacity_is_a_short_ladder_above_the_count():
    counts = np.arange(0, 40_000, 37)
    capacities = [pair_capacity(int(c), 10**9) for c in counts]
    assert all(cap >= c for cap, c in zip(capacities, counts))
    assert all(cap <= max(2 * c, 64) for cap, c in zip(capacities, counts))
    assert len(set(capacities)) <= 11  # 64 * 2^k up to 40k
    assert pair_capacity(5_000, 3_000) == 3_000  # never above the dense slot count
    finer = {pair_capacity(int(c), 10**9, growth=1.25) for c in counts}
    assert len(finer) > len(set(capacities))
    with pytest.raises(ValueError, match="growth"):
        pair_capacity(10, 100, growth=1.0)


def test_pack_pairs_lists_exactly_the_real_pairs_per_group():
    rng = np.random.default_rng(0)
    nodes = rng.integers(0, 3, (6, 5)).astype(np.int32)  # 0 = padding anywhere
    nodes[4] = 0  # an empty row
    real = nodes > 0
    per_row = [int(np.triu(np.outer(r, r), 1).sum()) for r in real]
    capacity = max(per_row[0] + per_row[1], per_row[2] + per_row[3], per_row[5]) + 2
    packed = pack_pairs(nodes, groups=3, capacity=capacity)
    assert packed["pairs"].shape == (3, capacity, 3) and packed["pairs"].dtype == np.int32
    assert packed["pair_weights"].shape == (3, capacity)
    for g in range(3):
        listed = {
            (2 * g + int(r), int(i), int(j))
            for (r, i, j), w in zip(packed["pairs"][g], packed["pair_weights"][g])
            if w > 0
        }
        expected = {
            (b, i, j)
            for b in (2 * g, 2 * g + 1)
            for i in range(5)
            for j in range(5)
            if i < j and nodes[b, i] > 0 and nodes[b, j] > 0
        }
        assert listed == expected
        # Padding slots are (0, 0, 0) with weight 0, after the listed pairs.
        pad = packed["pair_weights"][g] == 0
        assert not packed["pairs"][g][pad].any()
        assert np.all(np.diff(packed["pair_weights"][g]) <= 0)


def test_pack_pairs_errors():
    nodes = np.ones((4, 3), np.int32)  # 3 pairs per row
    with pytest.raises(ValueError, match="divide"):
        pack_pairs(nodes, groups=3, capacity=99)
    with pytest.raises(ValueError, match="capacity"):
        pack_pairs(nodes, groups=1, capacity=11)


def _examples(n: int = 300, max_len: int = 12, seed: int = 0) -> Examples:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, max_len + 1, n)
    histories = rng.integers(1, 6, (n, max_len)).astype(np.int32)  # many repeated items
    histories[np.arange(max_len)[None, :] < (max_len - lengths)[:, None]] = 0
    return Examples(histories, np.arange(1, n + 1, dtype=np.int32), np.zeros(n, np.int32))


@pytest.mark.parametrize("graph", [True, False])
def test_train_loader_pairs_cover_every_real_pair_and_shards_agree(graph):
    ex = _examples()
    kwargs = dict(graph=graph, pairs=True, pair_groups=4, shard_count=2)
    shards = [TrainLoader(ex, 32, (4, 8, 12), seed=1, shard_index=i, **kwargs) for i in (0, 1)]
    for batches in zip(*(loader.dataset(0) for loader in shards)):
        assert batches[0]["pairs"].shape == batches[1]["pairs"].shape  # same C everywhere
        # The capacity is on the ladder above the largest of the global batch's 4 groups.
        largest = max(b["pair_weights"].sum(1).max() for b in batches)
        assert largest <= batches[0]["pairs"].shape[1] <= max(2 * largest, 64)
        for batch in batches:
            node_items = batch["nodes"] if graph else batch["items"]
            real = node_items > 0
            expected = int(sum(np.triu(np.outer(r, r), 1).sum() for r in real))
            assert batch["pairs"].shape[0] == 2 and batch["pair_weights"].sum() == expected
            listed = batch["pairs"][batch["pair_weights"] > 0]
            rows = listed[:, 0] + 8 * np.repeat([0, 1], batch["pair_weights"].sum(1).astype(int))
            assert real[rows, listed[:, 1]].all() and real[rows, listed[:, 2]].all()
            assert (listed[:, 1] < listed[:, 2]).all()


def test_train_loader_pair_groups_must_fit_the_batch():
    with pytest.raises(ValueError, match="pair_groups"):
        TrainLoader(_examples(), 30, (12,), pairs=True, pair_groups=4, shard_index=0, shard_count=1)
