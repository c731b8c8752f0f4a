"""Whole-sequence training (`data.train_on="sequences"`, issue 14): the windows of the split,
the batches, and the step's loss against the equivalent prefixes."""

from __future__ import annotations

import functools

import jax
import ml_collections
import numpy as np
import optax
import pytest

from corrkd_jax.data import make_split
from corrkd_jax.data.pipeline import TrainLoader, build_batch, pack_targets
from corrkd_jax.data.structures import InteractionData, ItemTable
from corrkd_jax.models import build_model, init_params
from corrkd_jax.trainer import steps
from support import default_config

NUM_ITEMS = 30


def _data(seed: int = 0) -> InteractionData:
    rng = np.random.default_rng(seed)
    lengths = [3, 4, 5, 7, 9, 12, 15, 4]
    sequences = [rng.integers(1, NUM_ITEMS + 1, n).astype(np.int32) for n in lengths]
    items = ItemTable(
        np.array([""] + [f"i{i}" for i in range(1, NUM_ITEMS + 1)], object), {}, NUM_ITEMS
    )
    return InteractionData("tiny", sequences, np.array([f"u{i}" for i in range(8)], object), items)


@pytest.mark.parametrize("protocol", ["leave_one_out", "ratio"])
@pytest.mark.parametrize("max_len", [4, 50])
def test_windows_hold_exactly_the_prefix_targets(protocol, max_len):
    data = _data()
    prefixes = make_split(data, protocol, max_len=max_len)
    sequences = make_split(data, protocol, max_len=max_len, train_on="sequences")
    # Same (user, target) multiset; each window target's input is the item just before it.
    pairs = sorted(zip(prefixes.train.users.tolist(), prefixes.train.targets.tolist()))
    real = sequences.train.targets > 0
    users = np.broadcast_to(sequences.train.users[:, None], real.shape)[real]
    assert sorted(zip(users.tolist(), sequences.train.targets[real].tolist())) == pairs
    assert sequences.train.num_targets == len(prefixes.train.targets)
    np.testing.assert_array_equal(sequences.train.histories > 0, real)
    # Valid and test cases do not depend on train_on.
    for part in ("valid", "test"):
        np.testing.assert_array_equal(
            getattr(prefixes, part).histories, getattr(sequences, part).histories
        )
    if max_len == 4:  # the 15-item user's 12 training targets make 3 windows
        assert (sequences.train.users == 6).sum() == 3


def _config(backbone: str, variant: str = "id_only") -> ml_collections.ConfigDict:
    return default_config(
        **{
            "model.backbone": backbone,
            "model.variant": variant,
            "model.dim": 16,
            "model.dropout": 0.0,
            "model.sasrec.max_positions": 50,
            "model.sasrec.norm": "post",
            "model.sasrec.positions": "from_start",
            "model.gru4rec.hidden": 24,
            "model.gru4rec.output_proj": True,
        }
    )


def _ce(model, params, batch) -> float:
    tx = optax.sgd(0.0)
    step = functools.partial(
        steps.train_step,
        apply_fn=model.apply,
        tx=tx,
        backbone=model.backbone.__class__.__name__.lower(),
    )
    state = steps.create_train_state(params, tx, jax.random.key(0))
    _, terms = step(state, batch, None, {})
    return float(terms["loss/ce"])


@pytest.mark.parametrize("backbone", ["sasrec", "gru4rec"])
def test_whole_sequence_loss_equals_the_prefix_loss(backbone):
    """Dropout off: one batch of all windows gives the mean CE of all prefixes (each target
    once, same history), with and without packed targets, whatever the padding."""
    data = _data()
    prefixes = make_split(data, max_len=50).train
    sequences = make_split(data, max_len=50, train_on="sequences").train
    model = build_model(_config(backbone), NUM_ITEMS, {})
    params = init_params(model, build_batch(prefixes, np.arange(2), 20), 0)

    prefix_ce = _ce(model, params, build_batch(prefixes, np.arange(len(prefixes)), 20))
    rows = np.arange(len(sequences))
    plain = build_batch(sequences, rows, 20)
    assert plain["targets"].shape == plain["weights"].shape == (len(rows), 20)
    np.testing.assert_allclose(_ce(model, params, plain), prefix_ce, rtol=1e-5)
    packed = {**plain, **pack_targets(plain["targets"], 1, 64)}
    np.testing.assert_allclose(_ce(model, params, packed), prefix_ce, rtol=1e-5)
    # Padding never contributes: empty rows and extra left padding change nothing.
    padded = build_batch(sequences, np.concatenate([rows, [-1, -1]]), 30)
    np.testing.assert_allclose(_ce(model, params, padded), prefix_ce, rtol=1e-5)


def test_pack_targets_lists_each_real_target_once():
    targets = np.array([[0, 0, 3, 4], [0, 5, 6, 7], [0, 0, 0, 0], [1, 2, 3, 4]])
    packed = pack_targets(targets, groups=2, capacity=5)
    groups = targets.reshape(2, -1)
    for g in range(2):
        listed = packed["target_index"][g][packed["target_weights"][g] > 0]
        np.testing.assert_array_equal(np.sort(groups[g][listed]), np.sort(groups[g][groups[g] > 0]))
    with pytest.raises(ValueError, match="above the capacity"):
        pack_targets(targets, groups=2, capacity=4)


def test_train_loader_packs_targets_with_a_shared_capacity():
    sequences = make_split(_data(), max_len=50, train_on="sequences").train
    loader = TrainLoader(
        sequences,
        4,
        (5, 10, 20, 50),
        seed=0,
        shard_index=0,
        shard_count=1,
        pair_groups=2,
        pack_targets=True,
    )
    total = 0
    for batch in loader.iterator(0):
        assert batch["target_index"].shape[0] == 2
        total += int(batch["target_weights"].sum())
        assert batch["target_weights"].sum() == (batch["targets"] > 0).sum()
    assert total == sequences.num_targets
    with pytest.raises(ValueError, match="whole-sequence"):
        TrainLoader(
            make_split(_data(), max_len=50).train,
            4,
            None,
            shard_index=0,
            shard_count=1,
            pack_targets=True,
        )


def test_session_graph_refuses_whole_sequences():
    from corrkd_jax.trainer.setup import split_data

    config = ml_collections.ConfigDict(
        dict(
            data=dict(protocol="leave_one_out", max_len=10, train_on="sequences"),
            model=dict(backbone="session_graph"),
        )
    )
    with pytest.raises(ValueError, match="builds its graph per prefix"):
        split_data(config, _data())
