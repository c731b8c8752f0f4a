"""Preprocessing: iterative k-core, stable chronological order, id remapping, aligned item text."""

from __future__ import annotations

import numpy as np
import pytest
from test_data_readers import make_recbole, make_s3rec, write

from corrkd_jax.data.preprocess import factorize, k_core_mask, preprocess
from corrkd_jax.data.readers import RawData, read_raw


def raw_from_pairs(users, items, timestamps=None, fields=None) -> RawData:
    """RawData with string keys; table = sorted distinct items, title = 't' + key."""
    keys = np.asarray(sorted(set(items)), dtype=object)
    return RawData(
        name="t",
        users=np.asarray(users, dtype=object),
        items=np.asarray(items, dtype=object),
        timestamps=None if timestamps is None else np.asarray(timestamps, dtype=np.float64),
        item_keys=keys,
        external_ids=keys.copy(),
        fields={"title": np.asarray(["t" + k for k in keys], dtype=object)},
        files=(),
    )


def reference_k_core(pairs: list[tuple[int, int]], k: int) -> set[int]:
    """Indices of the interactions kept by the textbook loop: drop, recount, repeat."""
    kept = set(range(len(pairs)))
    while True:
        users, items = {}, {}
        for i in kept:
            users[pairs[i][0]] = users.get(pairs[i][0], 0) + 1
            items[pairs[i][1]] = items.get(pairs[i][1], 0) + 1
        new = {i for i in kept if users[pairs[i][0]] >= k and items[pairs[i][1]] >= k}
        if new == kept:
            return kept
        kept = new


def test_k_core_is_iterative():
    # One pass removes user u3 and item a; only then do u1 and item c fall below 2.
    pairs = [
        ("u1", "a"),
        ("u1", "b"),
        ("u2", "b"),
        ("u2", "c"),
        ("u2", "d"),
        ("u3", "c"),
        ("u4", "b"),
        ("u4", "d"),
    ]
    users, _ = factorize(np.asarray([p[0] for p in pairs], dtype=object))
    items, _ = factorize(np.asarray([p[1] for p in pairs], dtype=object))
    keep = k_core_mask(users, items, 2)
    kept = {pairs[i] for i in np.nonzero(keep)[0]}
    assert kept == {("u2", "b"), ("u2", "d"), ("u4", "b"), ("u4", "d")}
    assert k_core_mask(users, items, 0).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_k_core_matches_reference_loop(seed):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 40, 600)
    items = (rng.zipf(1.6, 600) - 1) % 80  # long tail: cascades happen
    pairs = list(zip(users.tolist(), items.tolist()))
    for k in (2, 3, 5):
        got = set(np.nonzero(k_core_mask(users, items, k))[0].tolist())
        assert got == reference_k_core(pairs, k)


def test_chronological_order_with_stable_ties():
    users = ["a", "b", "a", "a", "b", "a"]
    items = ["x1", "y1", "x2", "x3", "y2", "x4"]
    times = [5, 1, 3, 3, 1, 4]  # x2/x3 tie at 3, y1/y2 tie at 1: file order decides
    data = preprocess(raw_from_pairs(users, items, times))
    ids = {k: i for i, k in enumerate(data.items.external_ids.tolist())}
    assert data.user_ids.tolist() == ["a", "b"]  # order of first appearance
    assert data.sequences[0].tolist() == [ids["x2"], ids["x3"], ids["x4"], ids["x1"]]
    assert data.sequences[1].tolist() == [ids["y1"], ids["y2"]]
    assert all(s.dtype == np.int32 for s in data.sequences)


def test_recbole_remap_keeps_text_aligned(tmp_path):
    data = preprocess(read_raw(make_recbole(tmp_path)))
    assert data.num_items == 3 and data.num_users == 2 and data.num_interactions == 4
    table = data.items
    assert table.external_ids.tolist() == ["", "i7", "i8", "i9"]  # row 0 = padding
    assert table.fields["movie_title"].tolist() == ["", "Toy Story", "Heat", "Alien"]
    # u1: i7 (t=200), i8 (t=200, later in the file), i9 (t=300).
    assert data.sequences[0].tolist() == [1, 2, 3]
    assert data.sequences[1].tolist() == [1]


def test_s3rec_keeps_given_ids(tmp_path):
    data = preprocess(read_raw(make_s3rec(tmp_path)))
    assert [s.tolist() for s in data.sequences] == [[1, 2, 3], [3, 2], [4, 1]]
    assert data.items.external_ids.tolist() == ["", "B001", "B002", "B003", "B004"]
    assert data.items.fields["title"][1] == "Blue Nail Polish"


def test_s3rec_filtering_remaps_and_realigns(tmp_path):
    write(tmp_path / "sequences.txt", "1 1 2 3\n2 1 3\n3 3 1 4\n")
    write(tmp_path / "items.tsv", "id\ttitle\n1\tone\n2\ttwo\n3\tthree\n4\tfour\n")
    data = preprocess(read_raw(tmp_path), min_core=2)
    # Items 2 and 4 occur once and go; 1 and 3 become ids 1 and 2.
    assert data.items.fields["title"].tolist() == ["", "one", "three"]
    assert data.items.external_ids.tolist() == ["", "1", "3"]
    assert [s.tolist() for s in data.sequences] == [[1, 2], [1, 2], [2, 1]]


def test_unused_table_rows_are_dropped():
    raw = raw_from_pairs(["u", "u"], ["b", "d"])
    raw = RawData(
        **{
            **raw.__dict__,
            "item_keys": np.asarray(["a", "b", "c", "d"], dtype=object),
            "external_ids": np.asarray(["a", "b", "c", "d"], dtype=object),
            "fields": {"title": np.asarray(["A", "B", "C", "D"], dtype=object)},
        }
    )
    data = preprocess(raw)
    assert data.items.fields["title"].tolist() == ["", "B", "D"]
    assert data.sequences[0].tolist() == [1, 2]


def test_everything_filtered_is_an_error():
    with pytest.raises(ValueError, match="no interaction survives"):
        preprocess(raw_from_pairs(["u1", "u2"], ["a", "b"]), min_core=2)
