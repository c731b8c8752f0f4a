"""Parameter groups by path regex, the async schedules, and frozen tables."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from corrkd_jax import optim


def _params() -> dict:
    return {
        "item_embedding": {"embedding": jnp.ones((6, 4))},
        "view_title": {"embedding": jnp.full((6, 4), 2.0)},
        "fusion": {
            "view_attr_gate": {"kernel": jnp.ones((4, 4))},
            "view_attr": {"embedding": jnp.full((6, 4), 3.0)},
        },
        "backbone": {"Dense_0": {"kernel": jnp.ones((4, 4)), "bias": jnp.zeros(4)}},
    }


def _optim_config(**overrides) -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict(
        dict(
            lr=1e-3,
            weight_decay=0.0,
            lr_decay_epochs=0,
            lr_decay_rate=0.1,
            async_schedule="constant",
            async_gamma=2.0,
            async_epochs=(5, 10),
            freeze_epochs=3,
            table_regex=optim.TABLE_REGEX,
        )
    )
    config.update(overrides)
    return config


def test_labels_split_view_tables_from_everything_else():
    labels = optim.param_labels(_params(), optim.group_rules("slow"))
    assert labels["view_title"]["embedding"] == "slow"
    assert labels["fusion"]["view_attr"]["embedding"] == "slow"
    # A view-named Dense that is not an embedding table stays in main.
    assert labels["fusion"]["view_attr_gate"]["kernel"] == "main"
    assert labels["item_embedding"]["embedding"] == "main"
    assert labels["backbone"]["Dense_0"]["bias"] == "main"


def test_coverage_errors_name_the_paths():
    with pytest.raises(optim.ParamGroupError, match="uncovered: backbone/Dense_0/bias"):
        optim.param_labels(_params(), [("main", r"(kernel|embedding)$")])
    with pytest.raises(optim.ParamGroupError, match="view_title/embedding -> \\['a', 'b'\\]"):
        optim.param_labels(_params(), [("a", r"view_"), ("b", r"embedding$|bias|kernel")])


def test_slow_group_without_view_tables_is_an_error():
    params = {"item_embedding": {"embedding": jnp.ones((3, 2))}}
    with pytest.raises(optim.ParamGroupError, match="match no parameter"):
        optim.make_optimizer(_optim_config(), params, table_group="slow", steps_per_epoch=2)


def _rates_over_steps(config, table_group, steps, steps_per_epoch=3):
    """Runs `steps` updates with zero gradients and records every group's learning rate."""
    params = _params()
    tx = optim.make_optimizer(
        config, params, table_group=table_group, steps_per_epoch=steps_per_epoch
    )
    state = tx.init(params)
    grads = jax.tree.map(jnp.zeros_like, params)
    history = []
    for _ in range(steps):
        _, state = tx.update(grads, state, params)
        history.append({k: float(v) for k, v in optim.learning_rates(state).items()})
    return history


def test_constant_schedule_is_lr_over_gamma_to_the_number_of_milestones():
    history = _rates_over_steps(_optim_config(), "slow", steps=40)
    for rates in history:
        assert rates["main"] == pytest.approx(1e-3)
        assert rates["slow"] == pytest.approx(1e-3 / 4)


def test_step_schedule_multiplies_by_gamma_at_each_milestone_epoch():
    spe = 3
    history = _rates_over_steps(_optim_config(async_schedule="step"), "slow", 13 * spe, spe)
    for step, rates in enumerate(history):
        epoch = step // spe
        want = 1e-3 / 4 if epoch < 5 else (1e-3 / 2 if epoch < 10 else 1e-3)
        assert rates["slow"] == pytest.approx(want), (step, epoch)


def test_freeze_then_train_and_main_step_decay():
    spe = 2
    config = _optim_config(async_schedule="freeze_then_train", lr_decay_epochs=4)
    history = _rates_over_steps(config, "slow", 10 * spe, spe)
    for step, rates in enumerate(history):
        epoch = step // spe
        main = 1e-3 * 0.1 ** (epoch // 4)
        assert rates["main"] == pytest.approx(main), (step, epoch)
        assert rates["slow"] == pytest.approx(0.0 if epoch < 3 else main), (step, epoch)


def _train(table_group, config, steps=5, grad_value=1.0):
    params = _params()
    tx = optim.make_optimizer(config, params, table_group=table_group, steps_per_epoch=2)
    state = tx.init(params)
    grads = jax.tree.map(lambda p: jnp.full_like(p, grad_value), params)
    for _ in range(steps):
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    return params


def test_frozen_tables_do_not_move_and_the_rest_does():
    before = _params()
    after = _train("frozen", _optim_config())
    np.testing.assert_array_equal(
        after["view_title"]["embedding"], before["view_title"]["embedding"]
    )
    np.testing.assert_array_equal(
        after["fusion"]["view_attr"]["embedding"], before["fusion"]["view_attr"]["embedding"]
    )
    assert not np.allclose(
        after["item_embedding"]["embedding"], before["item_embedding"]["embedding"]
    )


def test_frozen_during_freeze_epochs_then_trained():
    config = _optim_config(async_schedule="freeze_then_train", freeze_epochs=2)
    before = _params()["view_title"]["embedding"]
    # 2 steps per epoch: 4 steps stay inside the 2 frozen epochs, the 5th one trains.
    np.testing.assert_array_equal(_train("slow", config, 4)["view_title"]["embedding"], before)
    assert not np.allclose(_train("slow", config, 5)["view_title"]["embedding"], before)


def test_slow_tables_move_a_quarter_as_far_as_fast_ones_with_adam():
    # With constant gradients Adam's step is ~lr, so the slow table moves ~lr/4 per step.
    before = _params()
    fast = _train("fast", _optim_config(), steps=1)
    slow = _train("slow", _optim_config(), steps=1)
    moved_fast = before["view_title"]["embedding"] - fast["view_title"]["embedding"]
    moved_slow = before["view_title"]["embedding"] - slow["view_title"]["embedding"]
    np.testing.assert_allclose(moved_slow * 4, moved_fast, rtol=1e-3)


def test_coupled_weight_decay_pulls_parameters_towards_zero():
    # Zero loss gradient: only the L2 term (wd * param, added to the gradient) moves anything.
    before = _params()["backbone"]["Dense_0"]["kernel"]
    plain = _train("fast", _optim_config(), steps=3, grad_value=0.0)
    decayed = _train("fast", _optim_config(weight_decay=0.5), steps=3, grad_value=0.0)
    np.testing.assert_array_equal(plain["backbone"]["Dense_0"]["kernel"], before)
    assert np.all(np.asarray(decayed["backbone"]["Dense_0"]["kernel"]) < before)
