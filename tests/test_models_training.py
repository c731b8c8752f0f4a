"""Models: every variant trains (total loss decreases), with a fully padded batch row.

A tiny jitted Adam loop per (backbone, variant): next-item cross-entropy over real rows plus the
model's KD terms weighted as in the default config. Batches come from the hand-made reference
builder of tests/test_models_backbones.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from test_models_backbones import (
    NUM_ITEMS,
    VIEWS,
    jit_init,
    jit_signals,
    make_batch,
    make_config,
    make_features,
    quick_jit,
)

from corrkd_jax.models import build_model
from corrkd_jax.variants import VARIANTS

LAMBDA_HOL, LAMBDA_CODE = 4.0, 0.5
NUM_STEPS = 12
# Row 1 is batch padding (empty history, weight 0): it must not produce NaN anywhere.
HISTORIES = [[3, 1, 3, 2], [], [7, 8, 9, 10, 11, 12], [4, 4, 6, 4, 6], [2, 5]]
TARGETS = [5, 0, 13, 7, 9]

CASES = [("session_graph", v) for v in VARIANTS] + [("sasrec", "kdsr"), ("gru4rec", "kdsr")]


def total_loss(model, params, batch, signals, train, key):
    """Weighted next-item CE over real rows + lambda-weighted KD terms -> (loss, aux)."""
    logits, aux = model.apply(
        {"params": params}, batch, teacher_signals=signals, train=train, rngs={"dropout": key}
    )
    labels = jnp.maximum(batch["targets"] - 1, 0)  # column j = item j + 1
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    weights = batch["weights"]
    loss = (ce * weights).sum() / weights.sum()
    for name, value in aux.items():
        loss = loss + (LAMBDA_HOL if name.startswith("hol/") else LAMBDA_CODE) * value
    return loss, aux


@pytest.mark.parametrize("backbone,variant", CASES)
def test_variant_trains_and_stays_finite(backbone, variant):
    features = make_features()
    model = build_model(make_config(backbone, variant), NUM_ITEMS, features)
    batch = make_batch(HISTORIES, 7)
    batch["targets"] = np.asarray(TARGETS, np.int32)
    batch["weights"] = (np.asarray(TARGETS) > 0).astype(np.float32)
    signals = jit_signals(features, batch, backbone)
    params = jit_init(model, batch)
    optimizer = optax.adam(1e-2)

    @quick_jit
    def step(params, opt_state, key):
        (loss, aux), grads = jax.value_and_grad(total_loss, argnums=1, has_aux=True)(
            model, params, batch, signals, True, key
        )
        finite = jnp.all(jnp.array([jnp.isfinite(g).all() for g in jax.tree.leaves(grads)]))
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, aux, finite

    spec = VARIANTS[variant]
    opt_state = optimizer.init(params)
    # The loss returned by a step is that of the parameters it starts from; comparing the
    # first and a final step with the same dropout key compares the same function.
    trained, opt_state, before, aux, finite = step(params, opt_state, jax.random.key(0))
    assert len(aux) == len(VIEWS) * (spec.holistic + spec.codes)
    for i in range(1, NUM_STEPS + 1):
        assert bool(finite), f"non-finite gradients before step {i}"
        trained, opt_state, _, _, finite = step(trained, opt_state, jax.random.key(i))
    _, _, after, _, finite = step(trained, opt_state, jax.random.key(0))
    assert bool(finite) and np.isfinite(float(after))
    assert float(after) < float(before) - 0.05, (float(before), float(after))

    for view in VIEWS if spec.use_views else ():
        old = np.asarray(params[f"view_{view}"]["embedding"])
        new = np.asarray(trained[f"view_{view}"]["embedding"])
        if spec.table_group == "frozen":
            np.testing.assert_array_equal(new, old)  # no gradient reaches frozen tables
        else:
            assert np.abs(new - old).max() > 0
