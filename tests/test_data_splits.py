"""Split protocols on a hand-made dataset: counts, exact histories, right alignment, truncation."""

from __future__ import annotations

import numpy as np
import pytest

from corrkd_jax.data.splits import concat_ranges, make_split
from corrkd_jax.data.structures import InteractionData, ItemTable


def dataset(lengths: list[int], seed: int = 0) -> InteractionData:
    rng = np.random.default_rng(seed)
    sequences = [rng.integers(1, 30, n).astype(np.int32) for n in lengths]
    table = ItemTable(
        external_ids=np.asarray([""] + [str(i) for i in range(1, 30)], dtype=object),
        fields={},
        num_items=29,
    )
    return InteractionData("hand", sequences, np.arange(len(lengths)).astype(str), table)


def cases(examples) -> set[tuple[int, tuple[int, ...], int]]:
    """(user, real history, target) of every case."""
    return {
        (int(u), tuple(int(x) for x in h[h > 0]), int(t))
        for u, h, t in zip(examples.users, examples.histories, examples.targets)
    }


def expected(data, user, positions) -> set:
    s = data.sequences[user]
    return {(user, tuple(s[:p].tolist()), int(s[p])) for p in positions}


def test_concat_ranges():
    got = concat_ranges(np.array([0, 5, 7, 2]), np.array([3, 5, 9, 1]))
    assert got.tolist() == [0, 1, 2, 7, 8]


def test_leave_one_out_counts_and_cases():
    lengths = [1, 2, 3, 4, 7, 9]
    data = dataset(lengths)
    split = make_split(data, "leave_one_out", max_len=50)
    assert len(split.train) == sum(max(n - 3, 0) for n in lengths)  # n - 3 per user
    assert len(split.valid) == sum(n >= 3 for n in lengths)
    assert len(split.test) == sum(n >= 2 for n in lengths)
    for u, n in enumerate(lengths):
        mine = lambda ex: {c for c in cases(ex) if c[0] == u}  # noqa: E731, B023 (used at once)
        assert mine(split.test) == (expected(data, u, [n - 1]) if n >= 2 else set())
        assert mine(split.valid) == (expected(data, u, [n - 2]) if n >= 3 else set())
        assert mine(split.train) == expected(data, u, range(1, n - 2))


def test_histories_are_right_aligned_and_truncated():
    data = dataset([12])
    split = make_split(data, "leave_one_out", max_len=5)
    s = data.sequences[0]
    assert split.test.histories.shape == (1, 5)
    assert split.test.histories[0].tolist() == s[6:11].tolist()  # last 5 before the target
    first = split.train.histories[0]  # target at position 1: history = s[:1]
    assert first.tolist() == [0, 0, 0, 0, int(s[0])]
    assert split.train.lengths.tolist()[:5] == [1, 2, 3, 4, 5]
    assert split.train.histories.dtype == np.int32 and split.train.targets.dtype == np.int32


@pytest.mark.parametrize("valid_fraction", [0.1, 0.5])
def test_ratio_protocol(valid_fraction):
    lengths = [1, 2, 3, 4, 5, 9, 10, 23, 40]
    data = dataset(lengths, seed=1)
    split = make_split(data, "ratio", max_len=50, valid_fraction=valid_fraction)
    for u, n in enumerate(lengths):
        t = int(np.floor(0.2 * n))
        m = n - t
        v = min(max(1, int(np.floor(valid_fraction * m))), m - 2) if m >= 3 else 0
        mine = lambda ex: {c for c in cases(ex) if c[0] == u}  # noqa: E731, B023 (used at once)
        # Test targets: the last floor(0.2 n) items, each with its full preceding history.
        assert mine(split.test) == expected(data, u, range(m, n))
        assert mine(split.valid) == expected(data, u, range(m - v, m))
        assert mine(split.train) == expected(data, u, range(1, m - v))
        assert len(mine(split.train)) >= (1 if n >= 3 else 0)
    # Every position >= 1 is the target of exactly one case.
    assert len(split.train) + len(split.valid) + len(split.test) == sum(n - 1 for n in lengths)


def test_default_ratio_validation_is_last_training_target():
    data = dataset([10])  # t = 2 test targets, m = 8, v = 1
    split = make_split(data, "ratio")
    s = data.sequences[0]
    assert split.valid.targets.tolist() == [s[7]]
    assert split.test.targets.tolist() == s[8:].tolist()
    assert split.train.targets.tolist() == s[1:7].tolist()


def test_unknown_protocol():
    with pytest.raises(ValueError, match="unknown protocol"):
        make_split(dataset([3]), "random")
