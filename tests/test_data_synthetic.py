"""The embedded synthetic shop: deterministic, the intended size, long-tailed, text = attributes."""

from __future__ import annotations

import numpy as np

from corrkd_jax.data import load_dataset
from corrkd_jax.data.preprocess import preprocess
from corrkd_jax.data.synthetic import (
    CATALOGUE,
    COLOURS,
    SyntheticConfig,
    generate,
    make_catalogue,
)

SMALL = SyntheticConfig(num_items=300, num_users=200, seed=11)


def test_deterministic_and_seeded():
    a, b = generate(SMALL), generate(SMALL)
    np.testing.assert_array_equal(a.items, b.items)
    np.testing.assert_array_equal(a.users, b.users)
    np.testing.assert_array_equal(a.fields["title"], b.fields["title"])
    c = generate(SyntheticConfig(num_items=300, num_users=200, seed=12))
    assert len(a.items) != len(c.items) or (a.items != c.items).any()


def test_no_repeats_and_lengths():
    data = preprocess(generate(SMALL))
    lengths = [len(s) for s in data.sequences]
    assert min(lengths) >= SMALL.min_length and max(lengths) <= SMALL.max_length
    assert all(len(set(s.tolist())) == len(s) for s in data.sequences)


def test_text_reveals_the_attributes():
    cat = make_catalogue(SMALL, np.random.default_rng(0))
    categories = list(CATALOGUE)
    for i in range(SMALL.num_items):
        brand, category, subcategory, material = cat.attributes[i].split("|")
        assert category == categories[cat.category[i]]
        noun = dict(CATALOGUE[category])[subcategory]
        title = cat.titles[i]
        for word in (brand, material, noun, COLOURS[cat.colour[i]]):
            assert word in title
    assert len(set(cat.asins.tolist())) == SMALL.num_items
    assert all(len(a) == 10 for a in cat.asins)


def test_default_size_and_long_tail(tmp_path):
    """The README-sized default: ~4k users, ~3k items, ~50k interactions, many rare items."""
    data = load_dataset("builtin:synthetic", cache_dir=tmp_path)
    assert data.name == "synthetic"
    assert 3000 <= data.num_users <= 5000
    assert 2000 <= data.num_items <= 4000
    assert 40_000 <= data.num_interactions <= 60_000
    counts = np.bincount(np.concatenate(data.sequences), minlength=data.num_items + 1)[1:]
    assert counts.min() >= 1
    assert (counts < 5).mean() > 0.2  # a long tail of rare items ...
    assert np.sort(counts)[::-1][: data.num_items // 10].sum() > 0.4 * counts.sum()  # ... and hits
    assert set(data.items.fields) == {"asin", "title", "attributes"}
    assert data.items.fields["title"][0] == "" and data.items.fields["title"][1] != ""
    # The cached copy is identical.
    again = load_dataset("builtin:synthetic", cache_dir=tmp_path)
    assert all((a == b).all() for a, b in zip(data.sequences, again.sequences))
