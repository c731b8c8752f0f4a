"""Grain pipelines: coverage per epoch, bucketing, padding, seeding, sharding, checkpointing."""

from __future__ import annotations

import numpy as np
import pytest

from corrkd_jax.data.pipeline import EvalLoader, TrainLoader, check_buckets
from corrkd_jax.data.structures import Examples

BUCKETS = (4, 8, 16)


def examples(n: int = 203, max_len: int = 16, seed: int = 0) -> Examples:
    """Random right-aligned cases; target = case index + 1 so each case is identifiable."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, max_len + 1, n)
    histories = rng.integers(1, 50, (n, max_len)).astype(np.int32)
    histories[np.arange(max_len)[None, :] < (max_len - lengths)[:, None]] = 0
    return Examples(histories, np.arange(1, n + 1, dtype=np.int32), np.zeros(n, np.int32))


def real_targets(batches) -> list[int]:
    return [int(t) for b in batches for t in b["targets"][b["weights"] > 0]]


def test_each_case_once_per_epoch_with_fixed_shapes():
    ex = examples()
    loader = TrainLoader(ex, 32, BUCKETS, seed=3, shard_index=0, shard_count=1)
    batches = list(loader.iterator(epoch=0))
    assert len(batches) == loader.num_batches == 7  # ceil(203 / 32)
    assert sorted(real_targets(batches)) == list(range(1, 204))
    for b in batches:
        B, Lb = b["items"].shape
        assert B == 32 and Lb in BUCKETS
        assert b["targets"].shape == (32,) and b["weights"].dtype == np.float32
        real = b["weights"] > 0
        hist_len = (ex.histories[b["targets"][real] - 1] > 0).sum(1)
        # Lb is the smallest bucket that holds the batch's longest history.
        assert Lb == min(k for k in BUCKETS if k >= hist_len.max())
        # Items are the case's history, right-aligned, cut to Lb (nothing real is lost).
        cases = ex.histories[b["targets"][real] - 1]
        np.testing.assert_array_equal(b["items"][real], cases[:, -Lb:])
        assert not b["items"][~real].any() and not b["targets"][~real].any()
    last = batches[-1]
    assert last["weights"].sum() == 203 - 6 * 32 and last["weights"][:11].all()
    assert sum(b["weights"].sum() for b in batches[:-1]) == 6 * 32


def test_bucketing_reduces_padding():
    ex = examples(n=1000, max_len=16)
    loader = TrainLoader(ex, 32, BUCKETS, seed=0, shard_index=0, shard_count=1)
    plan = loader.plan(0)
    assert plan.lengths.mean() < 16
    assert set(plan.lengths.tolist()) == set(BUCKETS)


def test_shuffling_is_seeded_per_epoch():
    ex = examples()

    def make(seed):
        return TrainLoader(ex, 32, BUCKETS, seed=seed, shard_index=0, shard_count=1)

    a0 = real_targets(make(1).iterator(0))
    assert a0 == real_targets(make(1).iterator(0))  # same (seed, epoch): same order
    assert a0 != real_targets(make(1).iterator(1))  # next epoch: reshuffled
    assert a0 != real_targets(make(2).iterator(0))  # other seed


def test_checkpoint_resumes_mid_epoch_bit_identically():
    loader = TrainLoader(examples(), 16, BUCKETS, seed=5, graph=True, shard_index=0, shard_count=1)
    it = loader.iterator(2)
    for _ in range(4):
        next(it)
    state = it.get_state()
    rest = list(it)
    resumed = loader.iterator(2)
    resumed.set_state(state)
    again = list(resumed)
    assert len(again) == len(rest) == loader.num_batches - 4
    for a, b in zip(rest, again):
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])


def test_sharding_splits_every_global_batch():
    ex = examples()
    shards = [TrainLoader(ex, 32, BUCKETS, seed=7, shard_index=i, shard_count=4) for i in range(4)]
    per_shard = [list(s.iterator(1)) for s in shards]
    assert {len(p) for p in per_shard} == {shards[0].num_batches}
    for step in zip(*per_shard):
        assert {b["items"].shape for b in step} == {(8, step[0]["items"].shape[1])}
    union = sorted(t for p in per_shard for t in real_targets(p))
    assert union == list(range(1, 204))
    whole = TrainLoader(ex, 32, BUCKETS, seed=7, shard_index=0, shard_count=1)
    for step, global_batch in zip(zip(*per_shard), whole.iterator(1)):
        stacked = np.concatenate([b["items"] for b in step])
        np.testing.assert_array_equal(stacked, global_batch["items"])
    with pytest.raises(ValueError, match="multiple of shard_count"):
        TrainLoader(ex, 30, BUCKETS, shard_index=0, shard_count=4)


def test_graph_arrays_and_prefetch_threads():
    ex = examples()
    plain = TrainLoader(ex, 32, BUCKETS, seed=0, graph=True, shard_index=0, shard_count=1)
    threaded = TrainLoader(
        ex,
        32,
        BUCKETS,
        seed=0,
        graph=True,
        shard_index=0,
        shard_count=1,
        num_threads=2,
        prefetch_buffer_size=4,
    )
    for a, b in zip(plain.iterator(0), threaded.iterator(0), strict=True):
        B, Lb = a["items"].shape
        assert a["nodes"].shape == (B, Lb) and a["alias"].shape == (B, Lb)
        assert a["adjacency"].shape == (B, Lb, Lb)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])


def test_eval_loader_covers_each_case_once_in_fixed_order():
    ex = examples(n=100)
    loader = EvalLoader(ex, 24, BUCKETS, shard_index=0, shard_count=1)
    batches = list(loader)
    assert len(batches) == loader.num_batches == 5
    assert sorted(real_targets(batches)) == list(range(1, 101))
    assert real_targets(batches) == real_targets(loader.iterator())
    rows = loader.plan().rows
    for b, r in zip(batches, rows):
        np.testing.assert_array_equal(b["targets"][r >= 0], ex.targets[r[r >= 0]])
    assert [b["items"].shape[1] for b in batches] == sorted(b["items"].shape[1] for b in batches)


def test_bucket_larger_than_history_width_pads_left():
    ex = examples(n=10, max_len=6)
    b = next(iter(EvalLoader(ex, 16, (10,), shard_index=0, shard_count=1)))
    assert b["items"].shape == (16, 10)
    assert not b["items"][:, :4].any()
    np.testing.assert_array_equal(b["items"][:10, 4:], ex.histories)


def test_bad_buckets():
    with pytest.raises(ValueError, match="below max_len"):
        check_buckets((4, 8), 16)
    with pytest.raises(ValueError, match="increasing"):
        check_buckets((8, 4, 16), 16)
    assert check_buckets(None, 16).tolist() == [16]
