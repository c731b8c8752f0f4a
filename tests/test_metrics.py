"""Full-ranking metrics against a plain NumPy loop, including ties and the released NDCG."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

from corrkd_jax import metrics


def _loop_metrics(scores: np.ndarray, targets: np.ndarray, ks) -> dict[str, np.ndarray]:
    """Reference: one case at a time, straight from the definitions in method.md."""
    out = {f"{m}@{k}": np.zeros(len(targets)) for m in ("HR", "NDCG", "MRR") for k in ks}
    for b in range(len(targets)):
        target_score = scores[b, targets[b]]
        rank = 1
        for j in range(scores.shape[1]):
            if scores[b, j] > target_score:
                rank += 1
        for k in ks:
            if rank <= k:
                out[f"HR@{k}"][b] = 1.0
                out[f"NDCG@{k}"][b] = 1.0 / math.log2(rank + 1)
                out[f"MRR@{k}"][b] = 1.0 / rank
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_rank_metrics_match_numpy_loop_with_ties(seed):
    rng = np.random.default_rng(seed)
    # Scores on a coarse grid so that many items tie with the target.
    scores = rng.integers(0, 6, size=(64, 40)).astype(np.float32)
    targets = rng.integers(0, 40, size=64)
    ks = (1, 5, 10, 20)
    got = jax.jit(metrics.rank_metrics, static_argnames="ks")(scores, targets, ks=ks)
    want = _loop_metrics(scores, targets, ks)
    assert set(got) == set(want)
    for name in want:
        np.testing.assert_allclose(np.asarray(got[name]), want[name], rtol=1e-6, err_msg=name)


def test_ties_count_in_favour_of_target():
    # The target ties with every other item: nothing is strictly greater, so rank 1.
    scores = np.zeros((1, 7), np.float32)
    out = metrics.rank_metrics(scores, np.array([3]), ks=(1,))
    assert float(out["HR@1"][0]) == 1.0
    assert float(out["MRR@1"][0]) == 1.0
    # One item strictly above the target -> rank 2, still ignoring the ties below it.
    scores[0, 5] = 1.0
    assert int(metrics.target_ranks(scores, np.array([3]))[0]) == 2


def test_nan_target_score_is_never_a_hit():
    scores = np.array([[0.5, np.nan, 0.1]], np.float32)
    assert int(metrics.target_ranks(scores, np.array([1]))[0]) > 1000
    out = metrics.rank_metrics(scores, np.array([1]), ks=(5,))
    assert float(out["HR@5"][0]) == 0.0
    assert float(out["MRR@5"][0]) == 0.0


def test_weighted_sums_ignore_padded_rows_and_finalize_divides():
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(10, 30)).astype(np.float32)
    targets = rng.integers(0, 30, size=10)
    per_case = metrics.rank_metrics(scores, targets)
    weights = np.array([1] * 7 + [0] * 3, np.float32)
    means = metrics.finalize(jax.device_get(metrics.weighted_sums(per_case, weights)))
    for name, values in per_case.items():
        assert means[name] == pytest.approx(float(np.mean(np.asarray(values)[:7])), rel=1e-6)
    with pytest.raises(ValueError, match="zero"):
        metrics.finalize({"HR@5": 0.0, "count": 0.0})


def test_released_ndcg_differs_by_the_ideal_dcg_of_k_items():
    """The released code divides by the ideal DCG of k relevant items; method.md quotes 2.95x at
    k=5 and 7.04x at k=20. Our NDCG of a rank-1 hit is 1, theirs is 1 / IDCG_k."""
    assert metrics.released_ndcg_factor(5) == pytest.approx(2.95, abs=5e-3)
    assert metrics.released_ndcg_factor(20) == pytest.approx(7.04, abs=5e-3)
    scores = np.array([[3.0, 2.0, 1.0]], np.float32)
    ours = float(metrics.rank_metrics(scores, np.array([0]), ks=(5,))["NDCG@5"][0])
    assert ours == 1.0
