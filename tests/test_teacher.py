"""corrkd_jax.teacher: per-batch teacher signals and the k-means codebook fit."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from corrkd_jax.teacher import (
    Teacher,
    TeacherSignals,
    build_teacher,
    fit_codebook,
    teacher_signals,
)
from support.references import np_corr


def random_features(seed: int, n: int, d: int) -> np.ndarray:
    feats = np.random.default_rng(seed).normal(size=(n + 1, d)).astype(np.float32)
    feats[0] = 0.0
    return feats


def planted_features(n: int, num_chunks: int, noise: float, seed: int) -> np.ndarray:
    """Features whose pair correlation vectors (cos) form 2^D well-separated clusters.

    Item t has, in chunk k, the basis vector e_{bit_k(t)} (+ noise), so r(a, c)[k] is ~1 when
    bit k of a and c agree and ~0 otherwise: the corners of {0, 1}^D, all equally likely.
    """
    rng = np.random.default_rng(seed)
    types = rng.integers(0, 2**num_chunks, size=n + 1)
    chunk_width = 4
    feats = np.zeros((n + 1, num_chunks, chunk_width), np.float32)
    for k in range(num_chunks):
        feats[np.arange(n + 1), k, (types >> k) & 1] = 1.0
    feats += rng.normal(size=feats.shape).astype(np.float32) * noise
    feats = feats.reshape(n + 1, -1)
    feats[0] = 0.0
    return feats


def corners(num_chunks: int) -> np.ndarray:
    return np.array(list(itertools.product([0.0, 1.0], repeat=num_chunks)), np.float32)


# ------------------------------------------------------------------------- teacher signals


@pytest.mark.parametrize("kind", ["cos", "dot", "euc", "man"])
def test_teacher_signals_equal_numpy_on_gathered_rows(kind):
    feats = {"title": random_features(0, 30, 12), "attr": random_features(1, 30, 12)}
    rng = np.random.default_rng(2)
    books = {v: rng.normal(size=(5, 3)).astype(np.float32) for v in feats}
    teacher, stats = build_teacher(feats, num_codes=5, num_chunks=3, kind=kind, codebooks=books)
    assert stats == {"title": {}, "attr": {}}
    items = rng.integers(1, 31, size=(4, 6)).astype(np.int32)
    items[1, 4:] = 0  # padding
    items[2, 3] = items[2, 0]  # a repeated item
    items[3] = 0  # an empty row

    signals = jax.jit(teacher_signals)(teacher, jnp.asarray(items))
    assert set(signals) == {"title", "attr"}
    for view, sig in signals.items():
        assert isinstance(sig, TeacherSignals)
        assert sig.corr.shape == (4, 6, 6) and sig.corr.dtype == jnp.float32
        assert sig.codes.shape == (4, 6, 6) and sig.codes.dtype == jnp.int32
        rows = feats[view][items]  # [B, L, d]
        for b, i, j in np.ndindex(4, 6, 6):
            np.testing.assert_allclose(
                float(sig.corr[b, i, j]),
                np_corr(rows[b, i], rows[b, j], kind),
                rtol=1e-4,
                atol=1e-4,
            )
            vec = np.array(
                [
                    np_corr(rows[b, i, 4 * q : 4 * q + 4], rows[b, j, 4 * q : 4 * q + 4], kind)
                    for q in range(3)
                ]
            )
            dist = ((vec[None] - books[view]) ** 2).sum(-1)
            assert dist[int(sig.codes[b, i, j])] <= dist.min() + 1e-4


def test_teacher_is_a_pytree_with_static_kind_and_chunks():
    teacher = Teacher(
        features={"v": jnp.zeros((3, 4))},
        codebooks={"v": jnp.zeros((2, 2))},
        kind="euc",
        num_chunks=2,
    )
    leaves, treedef = jax.tree_util.tree_flatten(teacher)
    assert len(leaves) == 2
    rebuilt = jax.tree_util.tree_unflatten(treedef, leaves)
    assert rebuilt.kind == "euc" and rebuilt.num_chunks == 2


def test_teacher_signals_missing_codebook_is_an_error():
    teacher = Teacher(features={"v": jnp.zeros((3, 4))}, codebooks={}, kind="cos", num_chunks=2)
    with pytest.raises(ValueError, match="no codebook"):
        teacher_signals(teacher, jnp.ones((1, 2), jnp.int32))


# ---------------------------------------------------------------------------- fit_codebook


def test_fit_codebook_recovers_planted_clusters():
    feats = planted_features(2000, 3, noise=0.03, seed=0)
    book, stats = fit_codebook(feats, num_codes=8, num_chunks=3, num_pairs=20_000, seed=0)
    assert book.shape == (8, 3) and book.dtype == np.float32
    truth = corners(3)
    dist = np.sqrt(((book[:, None] - truth[None]) ** 2).sum(-1))  # [K, 8]
    # Every planted corner has exactly one centroid close to it.
    assert np.all(dist.min(0) < 0.05)
    assert sorted(dist.argmin(1).tolist()) == list(range(8))
    usage = np.asarray(stats["code_usage"])
    assert usage.sum() == 20_000 and np.all(usage > 20_000 / 8 * 0.8)
    assert stats["dead_codes"] == 0
    assert stats["mean_quantisation_error"] < 0.1
    np.testing.assert_allclose(stats["mean_squared_error"], stats["inertia"] / 20_000)
    assert 1 <= stats["iterations"] <= 100 and stats["seconds"] > 0


def test_fit_codebook_is_deterministic_per_seed():
    feats = random_features(3, 500, 16)
    kwargs = dict(num_codes=6, num_chunks=4, num_pairs=5000, num_iters=20)
    a, stats_a = fit_codebook(feats, seed=1, **kwargs)
    b, stats_b = fit_codebook(feats, seed=1, **kwargs)
    c, _ = fit_codebook(feats, seed=2, **kwargs)
    np.testing.assert_array_equal(a, b)
    assert stats_a["code_usage"] == stats_b["code_usage"]
    assert not np.array_equal(a, c)
    assert stats_a["iterations"] <= 20
    _, one = fit_codebook(feats, seed=1, **{**kwargs, "num_iters": 1})
    assert one["iterations"] == 1


def test_fit_codebook_reseeds_dead_codes():
    # Without noise the pair vectors take only the 8 corner values, so a random init of 8
    # points almost surely duplicates one: duplicated centroids tie, the later one gets no
    # point and must be re-seeded.
    feats = planted_features(2000, 3, noise=0.0, seed=1)
    book, stats = fit_codebook(
        feats, num_codes=8, num_chunks=3, num_pairs=8000, seed=0, init="random"
    )
    assert stats["reseeded_codes"] > 0
    assert stats["dead_codes"] == 0
    assert np.all(np.asarray(stats["code_usage"]) > 0)
    # ... and the re-seeded codes end up on the corners that were missed at init.
    assert sorted(map(tuple, book.round(4))) == sorted(map(tuple, corners(3)))


def test_fit_codebook_excludes_padding_row():
    # Row 0 is an outlier: if it were drawn, its pairs would form their own cluster.
    feats = planted_features(500, 2, noise=0.0, seed=2)
    feats[0] = 100.0
    book, stats = fit_codebook(feats, num_codes=4, num_chunks=2, kind="euc", num_pairs=5000)
    assert book.max() < 2.0  # euc distances between real items are <= sqrt(2)


def test_fit_codebook_memory_is_not_quadratic_in_items():
    """N = 200k items: an N x N matrix would need 160 GB; the fit must still be quick."""
    feats = random_features(4, 200_000, 16)
    book, stats = fit_codebook(feats, num_codes=4, num_chunks=4, num_pairs=4000, num_iters=5)
    assert book.shape == (4, 4) and np.all(np.isfinite(book))
    assert sum(stats["code_usage"]) == 4000


@pytest.mark.parametrize("kind", ["dot", "euc", "man"])
def test_fit_codebook_other_kinds_give_codes_of_their_vectors(kind):
    feats = random_features(5, 300, 8)
    book, stats = fit_codebook(
        feats, num_codes=3, num_chunks=2, kind=kind, num_pairs=3000, num_iters=10
    )
    assert book.shape == (3, 2) and np.all(np.isfinite(book))
    if kind != "dot":
        assert np.all(book >= 0)  # distances are non-negative, so are their means


def test_fit_codebook_rejects_bad_input():
    feats = random_features(6, 50, 12)
    with pytest.raises(ValueError, match=r"d=12.*num_chunks=5"):
        fit_codebook(feats, num_chunks=5, num_pairs=100, num_codes=2)
    bad = feats.copy()
    bad[7, 3] = np.nan
    with pytest.raises(ValueError, match="row 7"):
        fit_codebook(bad, num_chunks=4, num_pairs=100, num_codes=2)
    with pytest.raises(ValueError, match="init"):
        fit_codebook(feats, num_chunks=4, num_pairs=100, num_codes=2, init="forgy")
    with pytest.raises(ValueError, match="kind"):
        fit_codebook(feats, num_chunks=4, num_pairs=100, num_codes=2, kind="cosine")
    with pytest.raises(ValueError, match="tol"):
        fit_codebook(feats, num_chunks=4, num_pairs=100, num_codes=2, tol=-1.0)
    with pytest.raises(ValueError, match=r"\[N \+ 1, d\]"):
        fit_codebook(np.zeros((1, 8), np.float32), num_chunks=4)


# ---------------------------------------------------------------------------- build_teacher


def test_build_teacher_fits_each_view_and_round_trips_codebooks():
    feats = {"title": planted_features(400, 2, 0.02, 7), "attr": random_features(8, 400, 8)}
    teacher, stats = build_teacher(
        feats, num_codes=4, num_chunks=2, kind="cos", num_pairs=2000, seed=3, num_iters=10
    )
    assert set(stats) == {"title", "attr"} and stats["title"]["num_pairs"] == 2000
    assert teacher.kind == "cos" and teacher.num_chunks == 2
    assert teacher.codebooks["title"].shape == (4, 2)
    # Views get different seeds, independent of the order they come in.
    again, _ = build_teacher(
        dict(reversed(list(feats.items()))),
        num_codes=4,
        num_chunks=2,
        kind="cos",
        num_pairs=2000,
        seed=3,
        num_iters=10,
    )
    for view in feats:
        np.testing.assert_array_equal(
            np.asarray(teacher.codebooks[view]), np.asarray(again.codebooks[view])
        )
    # Resume: restored codebooks are used as they are.
    saved = {v: np.asarray(b) for v, b in teacher.codebooks.items()}
    resumed, resumed_stats = build_teacher(
        feats, num_codes=4, num_chunks=2, kind="cos", codebooks=saved
    )
    assert resumed_stats == {"title": {}, "attr": {}}
    items = jnp.array([[1, 2, 3, 0]])
    for view, sig in teacher_signals(resumed, items).items():
        np.testing.assert_array_equal(
            np.asarray(sig.codes), np.asarray(teacher_signals(teacher, items)[view].codes)
        )
    with pytest.raises(ValueError, match="shape"):
        build_teacher(feats, num_codes=5, num_chunks=2, codebooks=saved)
    with pytest.raises(ValueError, match="view 'title'.*d=8.*num_chunks=3"):
        build_teacher(feats, num_codes=4, num_chunks=3, num_pairs=100)
    with pytest.raises(ValueError, match="lack view 'attr'"):
        build_teacher(feats, num_codes=4, num_chunks=2, codebooks={"title": saved["title"]})
