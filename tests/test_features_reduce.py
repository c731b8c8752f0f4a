"""Reduction d_raw -> d: the released autoencoder (Flax/optax) and PCA."""

from __future__ import annotations

import numpy as np
import pytest

from corrkd_jax.features.reduce import cosine_spread, reduce_features


def _clustered(num_clusters=6, per_cluster=20, d_raw=24, rank=4, seed=0):
    """[N + 1, d_raw] features: row 0 zeros, rows of a cluster identical, a few empty rows."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(rank, d_raw))
    centres = rng.normal(size=(num_clusters, rank)) @ basis
    labels = rng.permutation(np.repeat(np.arange(num_clusters), per_cluster))
    x = np.zeros((len(labels) + 1, d_raw), np.float32)
    x[1:] = centres[labels]
    empty = np.array([5, 17])
    x[empty] = 0.0
    return x, np.concatenate([[-1], labels]), empty


@pytest.mark.parametrize("method", ["autoencoder", "pca"])
def test_reduction_keeps_zero_rows_and_alignment(method):
    x, labels, empty = _clustered()
    out, stats = reduce_features(x, method, 8, epochs=150, batch_size=32, seed=0)
    assert out.shape == (len(x), 8) and out.dtype == np.float32
    assert np.all(out[0] == 0) and np.all(out[empty] == 0)
    content = np.setdiff1d(np.arange(1, len(x)), empty)
    assert np.all(np.abs(out[content]).sum(1) > 0)
    assert stats["fitted_rows"] == len(content)
    # Alignment: each row's nearest other content row is in its own cluster.
    z = out[content]
    dist = ((z[:, None] - z[None]) ** 2).sum(-1)
    np.fill_diagonal(dist, np.inf)
    assert np.all(labels[content][dist.argmin(1)] == labels[content])
    if method == "autoencoder":
        assert np.all(out[content] > 0) and np.all(out[content] < 1)  # sigmoid codes


def test_pca_is_exact_at_full_rank_and_autoencoder_learns():
    x, _, _ = _clustered(rank=4)
    _, pca = reduce_features(x, "pca", 4)
    assert pca["relative_error"] < 1e-6 and pca["explained_variance"] > 1 - 1e-6
    kwargs = dict(batch_size=32, seed=0, lr=1e-2)
    _, ae_short = reduce_features(x, "autoencoder", 8, epochs=2, **kwargs)
    out, ae = reduce_features(x, "autoencoder", 8, epochs=300, **kwargs)
    again, _ = reduce_features(x, "autoencoder", 8, epochs=300, **kwargs)
    np.testing.assert_array_equal(out, again)  # seeded
    assert ae["mse"] < 0.25 * ae_short["mse"]
    assert ae["relative_error"] < 1e-3
    assert 0 < ae["epochs_run"] <= 300


def test_none_and_bad_input():
    x, _, _ = _clustered()
    out, stats = reduce_features(x, "none")
    np.testing.assert_array_equal(out, x)
    assert stats["dim"] == x.shape[1]
    with pytest.raises(ValueError, match="reduce.method"):
        reduce_features(x, "tsne")
    bad = x.copy()
    bad[0, 0] = 1.0
    with pytest.raises(ValueError, match="row 0"):
        reduce_features(bad, "pca", 2)
    with pytest.raises(ValueError, match="PCA dim"):
        reduce_features(x, "pca", 100)


def test_cosine_spread_detects_near_constant_cosine():
    rng = np.random.default_rng(0)
    centred = np.vstack([np.zeros((1, 16)), rng.normal(size=(200, 16))])
    positive = centred.copy()
    positive[1:] = 5.0 + 0.1 * positive[1:]  # all-positive, like sigmoid codes
    spread, narrow = cosine_spread(centred), cosine_spread(positive)
    assert abs(spread["mean"]) < 0.05 and spread["std"] > 0.15
    assert narrow["mean"] > 0.99 and narrow["std"] < 0.01
