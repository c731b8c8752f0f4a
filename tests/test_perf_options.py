"""Options for very large catalogues: chunked full-ranking evaluation and sampled softmax."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from corrkd_jax import metrics
from corrkd_jax.trainer import steps
from corrkd_jax.trainer.evaluation import chunked_ranks


def _scores_case(seed: int = 0, batch: int = 6, items: int = 37, dim: int = 5):
    rng = np.random.default_rng(seed)
    sequence = jnp.asarray(rng.normal(size=(batch, dim)), jnp.float32)
    # Integer-valued vectors: exact scores, so exact ties with the target occur and count.
    table = jnp.asarray(rng.integers(-2, 3, (items, dim)), jnp.float32)
    sequence = jnp.round(sequence)
    targets = jnp.asarray(rng.integers(0, items, batch), jnp.int32)
    return sequence, table, targets


@pytest.mark.parametrize("chunk", [1, 8, 37, 100])
def test_chunked_ranks_match_full_scores(chunk):
    sequence, table, targets = _scores_case()
    scores = sequence @ table.T
    ranks, logsumexp, target_scores = jax.jit(chunked_ranks, static_argnums=3)(
        sequence, table, targets, chunk
    )
    np.testing.assert_array_equal(ranks, metrics.target_ranks(scores, targets))
    np.testing.assert_allclose(logsumexp, jax.nn.logsumexp(scores, axis=1), rtol=1e-6)
    np.testing.assert_allclose(target_scores, scores[jnp.arange(6), targets], rtol=1e-6)


def _toy_apply(
    variables, batch, teacher_signals=None, train=False, rngs=None, return_sequence=False
):
    """A bag-of-items model: sequence = mean of the history rows of the ID table."""
    table = variables["params"]["item_embedding"]["embedding"]
    items = batch["items"]
    rows = table[items] * (items > 0)[..., None]
    sequence = rows.sum(1) / jnp.maximum((items > 0).sum(1, keepdims=True), 1)
    if return_sequence:
        return sequence, {}
    return sequence @ table[1:].T, {}


def _toy_batch(seed: int = 0):
    rng = np.random.default_rng(seed)
    items = rng.integers(0, 30, (8, 4)).astype(np.int32)
    return {
        "items": jnp.asarray(items),
        "targets": jnp.asarray(rng.integers(1, 30, 8), jnp.int32),
        "weights": jnp.asarray([1.0] * 7 + [0.0]),
    }


def test_eval_step_with_item_chunks_equals_full_ranking():
    params = {"item_embedding": {"embedding": jax.random.normal(jax.random.key(0), (30, 4))}}
    batch = _toy_batch()
    full = steps.eval_step(params, batch, apply_fn=_toy_apply)
    chunked = steps.eval_step(params, batch, apply_fn=_toy_apply, item_chunk=7)
    assert set(full) == set(chunked)
    for key in full:
        np.testing.assert_allclose(chunked[key], full[key], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("item_chunk", [0, 7])
def test_eval_step_excluding_seen_items_ranks_among_the_unseen(item_chunk):
    params = {"item_embedding": {"embedding": jax.random.normal(jax.random.key(1), (30, 4))}}
    batch = _toy_batch(2)
    items = np.asarray(batch["items"]).copy()
    items[0] = [5, 5, 0, 9]  # a repeated history item counts once
    items[1, -1] = int(batch["targets"][1])  # a repeat target stays a candidate
    batch["items"] = jnp.asarray(items)
    out = steps.eval_step(
        params, batch, apply_fn=_toy_apply, item_chunk=item_chunk, exclude_history=True
    )
    scores = np.array(_toy_apply({"params": params}, batch)[0])
    targets = np.asarray(batch["targets"]) - 1
    for row, history in enumerate(items):
        seen = history[(history > 0) & (history != targets[row] + 1)]
        scores[row, seen - 1] = -np.inf
    np.testing.assert_array_equal(out["ranks"], metrics.target_ranks(scores, targets))
    everything = steps.eval_step(params, batch, apply_fn=_toy_apply, item_chunk=item_chunk)
    assert np.all(np.asarray(out["ranks"]) <= np.asarray(everything["ranks"]))
    assert np.any(np.asarray(out["ranks"]) < np.asarray(everything["ranks"]))  # it can fail
    np.testing.assert_allclose(out["loss/ce"], everything["loss/ce"])  # CE: all items


def test_sampled_cross_entropy_masks_accidental_hits():
    sequence, table, _ = _scores_case(1, items=10)
    targets = jnp.asarray([1, 2, 3, 4, 5, 0], jnp.int32)
    weights = jnp.asarray([1.0] * 5 + [0.0])
    negatives = jnp.asarray([2, 7, 9], jnp.int32)
    value = steps.sampled_cross_entropy(sequence, table, targets, negatives, weights)
    expected = []
    for b in range(5):
        candidates = [int(targets[b])] + [n for n in (2, 7, 9) if n != int(targets[b])]
        logits = np.asarray(table)[candidates] @ np.asarray(sequence[b])
        expected.append(np.log(np.exp(logits).sum()) - logits[0])
    np.testing.assert_allclose(value, np.mean(expected), rtol=1e-5)


def test_train_step_with_sampled_softmax_trains_and_differs_from_full():
    params = {"item_embedding": {"embedding": jax.random.normal(jax.random.key(0), (30, 4))}}
    tx = optax.sgd(0.1)
    state = steps.create_train_state(params, tx, jax.random.key(1))
    batch = _toy_batch(2)

    def run(num_negatives):
        return jax.jit(
            lambda s: steps.train_step(
                s,
                batch,
                None,
                {},
                apply_fn=_toy_apply,
                tx=tx,
                backbone="sasrec",
                num_negatives=num_negatives,
            )
        )(state)

    sampled, terms = run(5)
    full, full_terms = run(0)
    assert np.isfinite(float(terms["loss/ce"]))
    # 5 negatives + the target: a smaller normaliser than the 29 items of the full softmax.
    assert float(terms["loss/ce"]) < float(full_terms["loss/ce"])
    assert not np.allclose(
        sampled.params["item_embedding"]["embedding"], params["item_embedding"]["embedding"]
    )
