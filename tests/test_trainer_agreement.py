"""Teacher-student correlation agreement (corrkd_jax.trainer.agreement)."""

import numpy as np
import pytest

from corrkd_jax.trainer.agreement import (
    agreement_pairs,
    correlation_agreement,
    pair_cosines,
    view_agreements,
)


def test_pairs_are_distinct_real_items_and_fixed():
    pairs = agreement_pairs(7, num_pairs=5000)
    assert pairs.shape == (5000, 2)
    assert pairs.min() >= 1 and pairs.max() <= 7
    assert np.all(pairs[:, 0] != pairs[:, 1])
    assert np.array_equal(pairs, agreement_pairs(7, num_pairs=5000))  # same pairs every run
    assert len(np.unique(pairs[:, 1])) == 7  # every item can be drawn
    with pytest.raises(ValueError, match="at least 2 items"):
        agreement_pairs(1)


def test_pair_cosines_match_a_loop_and_give_zero_for_padding():
    rng = np.random.default_rng(0)
    table = rng.normal(size=(6, 4))
    table[0] = 0.0
    pairs = np.array([[1, 2], [3, 5], [0, 4]])
    expected = [
        table[i] @ table[j] / max(np.linalg.norm(table[i]) * np.linalg.norm(table[j]), 1e-8)
        for i, j in pairs
    ]
    np.testing.assert_allclose(pair_cosines(table, pairs), expected, rtol=1e-12)


def test_agreement_is_one_for_the_teacher_and_falls_with_drift():
    rng = np.random.default_rng(1)
    teacher = rng.normal(size=(301, 16))
    pairs = agreement_pairs(300, num_pairs=4000)
    # Cosines are invariant to a rotation and scaling of the table: agreement stays 1.
    rotation, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    assert correlation_agreement(3.0 * teacher @ rotation, teacher, pairs) == pytest.approx(1.0)
    small = correlation_agreement(teacher + 0.3 * rng.normal(size=teacher.shape), teacher, pairs)
    large = correlation_agreement(teacher + 3.0 * rng.normal(size=teacher.shape), teacher, pairs)
    unrelated = correlation_agreement(rng.normal(size=teacher.shape), teacher, pairs)
    assert 1.0 > small > large > unrelated
    assert abs(unrelated) < 0.1


def test_view_agreements_reads_the_view_tables_of_the_params():
    rng = np.random.default_rng(2)
    teacher = {"title": rng.normal(size=(51, 8)), "attr": rng.normal(size=(51, 8))}
    params = {"view_title": {"embedding": teacher["title"]}, "item_embedding": {}}
    out = view_agreements(params, teacher, agreement_pairs(50, num_pairs=500))
    assert out == {"agreement/title": pytest.approx(1.0)}  # no table for attr: not reported
