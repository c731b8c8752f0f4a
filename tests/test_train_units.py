"""The trainer's small parts: configs, loss assembly, per-shape compilation, early stopping,
checkpoints' best_fn, metric writer, curves."""

from __future__ import annotations

import glob
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from corrkd_jax import paths
from corrkd_jax.trainer import setup, steps
from corrkd_jax.trainer.checkpointing import Checkpoints
from corrkd_jax.trainer.config_files import backbone_and_variant, load_config_file
from corrkd_jax.trainer.early_stopping import EarlyStopping
from corrkd_jax.trainer.metric_writer import MetricWriter, read_records
from corrkd_jax.trainer.migrate import migrate_config
from corrkd_jax.trainer.plots import plot_curves
from corrkd_jax.trainer.workdir import check_or_write_config, json_config

CONFIGS = sorted(glob.glob(os.path.join(paths.repo_root(), "configs", "*.py")))
CONFIGS_BY_NAME = {os.path.basename(path): path for path in CONFIGS}


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_training_configs_have_the_required_fields(path):
    config = load_config_file(path)
    setup.check_config(config)
    assert set(config.model.views) <= set(config.features.views)
    assert config.features.reduce.dim == config.model.dim
    # Paths are config values relative to the repo root, never absolute.
    assert not os.path.isabs(config.data.root)


def test_config_argument_selects_backbone_and_variant():
    config = load_config_file(
        os.path.join(paths.repo_root(), "configs", "beauty.py"), "gru4rec,kdsr_no_async"
    )
    assert (config.model.backbone, config.model.variant) == ("gru4rec", "kdsr_no_async")
    with pytest.raises(ValueError, match="backbone 'bert4rec'"):
        backbone_and_variant("bert4rec,kdsr")
    with pytest.raises(ValueError, match="expected 'backbone,variant'"):
        backbone_and_variant("sasrec")


def test_check_config_names_the_missing_field():
    config = load_config_file(CONFIGS[0])
    del config.data["protocol"]
    with pytest.raises(ValueError, match="data.protocol"):
        setup.check_config(config)
    config = load_config_file(CONFIGS[0])
    config.eval.metric = "NDCG@50"
    with pytest.raises(ValueError, match="eval.metric='NDCG@50'"):
        setup.check_config(config)


def test_resolve_path_is_relative_to_the_repo_root():
    assert paths.resolve_path("builtin:synthetic") == "builtin:synthetic"
    assert paths.resolve_path("") == ""
    assert paths.resolve_path("../shared/data/x") == os.path.normpath(
        os.path.join(paths.repo_root(), "..", "shared", "data", "x")
    )


def test_workdir_config_mismatch_is_refused_but_resumable_changes_pass(tmp_path):
    config = load_config_file(CONFIGS_BY_NAME["default.py"])
    config.num_epochs, config.model.dim = 3, 8
    assert not os.path.exists(tmp_path / "config.json")
    check_or_write_config(config, str(tmp_path))
    config.num_epochs = 10  # allowed: extends the same run
    check_or_write_config(config, str(tmp_path))
    config.model.dim = 16
    with pytest.raises(ValueError, match=r"model.dim: 8 -> 16"):
        check_or_write_config(config, str(tmp_path))


def test_old_workdir_configs_migrate_to_the_behaviour_they_ran_with(tmp_path):
    """A config.json written before fields existed resumes when the new config sets the
    values that reproduce that run, and is refused otherwise (one migration, migrate.py)."""
    config = load_config_file(CONFIGS_BY_NAME["default.py"])
    saved = json_config(config)
    for dotted in ("model.sasrec.norm", "model.gru4rec.output_proj", "eval.per_epoch"):
        section, leaf = dotted.rsplit(".", 1)
        node = saved
        for part in section.split("."):
            node = node[part]
        del node[leaf]
    saved["eval"]["test_every_epoch"] = True
    saved["eval"]["exclude_seen"] = saved["eval"].pop("exclude_history")  # the old name
    migrated = migrate_config(saved)
    assert migrated["eval"]["exclude_history"] is False and "exclude_seen" not in migrated["eval"]
    assert migrated["model"]["sasrec"]["norm"] == "pre"  # the layout before the option
    assert migrated["eval"]["per_epoch"] == ["agreement", "test"]
    assert "test_every_epoch" not in migrated["eval"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="model.sasrec.norm: 'pre' -> 'post'"):
        config.model.sasrec.norm = "post"
        check_or_write_config(config, str(tmp_path))
    config.model.sasrec.norm, config.model.gru4rec.output_proj = "pre", False
    check_or_write_config(config, str(tmp_path))  # per_epoch differs: a resumable change


def test_loss_weights_per_view_or_shared():
    kd = ml_collections.ConfigDict({"lambda_hol": 4.0, "lambda_code": {"a": 0.5, "b": 2.0}})
    weights = steps.loss_weights(kd, ("a", "b"), holistic=True, codes=True)
    assert weights == {"hol/a": 4.0, "code/a": 0.5, "hol/b": 4.0, "code/b": 2.0}
    assert steps.loss_weights(kd, ("a",), holistic=False, codes=False) == {}
    with pytest.raises(ValueError, match="lambda_code has no weight for view 'c'"):
        steps.loss_weights(kd, ("c",), holistic=False, codes=True)


def test_weighted_cross_entropy_ignores_padded_rows():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 6)).astype(np.float32)
    targets = np.array([1, 6, 3, 0], np.int32)  # item ids; 0 = padded row
    weights = np.array([1, 1, 1, 0], np.float32)
    got = float(steps.weighted_cross_entropy(logits, targets, weights))
    log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    want = -np.mean([log_probs[b, targets[b] - 1] for b in range(3)])
    assert got == pytest.approx(want, rel=1e-5)


def test_compiled_per_shape_compiles_once_per_batch_shape():
    calls = []

    def fn(scale, batch):
        calls.append(batch["x"].shape)  # runs at trace time only
        return scale * batch["x"].sum()

    compiled = steps.CompiledPerShape(jax.jit(fn))
    for length in (3, 5, 3, 5, 3):
        assert float(compiled(2.0, {"x": jnp.ones(length)})) == 2.0 * length
    assert calls == [(3,), (5,)]
    assert compiled.compile_seconds > 0


def test_train_step_is_deterministic_and_moves_parameters():
    """A toy model through the real train_step: dropout key from (rng, step), loss assembly."""

    def apply_fn(variables, batch, teacher_signals=None, train=False, rngs=None):
        w = variables["params"]["w"]
        noise = jax.random.normal(rngs["dropout"], w.shape) * 0.01
        logits = batch["items"].astype(jnp.float32) @ (w + noise)
        return logits, {"hol/v": jnp.sum(w**2)}

    params = {"w": jnp.ones((3, 5))}
    tx = optax.sgd(0.1)
    state = steps.create_train_state(params, tx, jax.random.key(0))
    batch = {
        "items": jnp.ones((2, 3), jnp.int32),
        "targets": jnp.array([1, 0], jnp.int32),
        "weights": jnp.array([1.0, 0.0]),
    }
    run = jax.jit(
        lambda s: steps.train_step(
            s, batch, None, {"hol/v": 2.0}, apply_fn=apply_fn, tx=tx, backbone="sasrec"
        )
    )
    first, terms = run(state)
    again, _ = run(state)
    jax.tree.map(np.testing.assert_array_equal, first.params, again.params)
    assert int(first.step) == 1
    assert float(terms["loss/total"]) == pytest.approx(
        float(terms["loss/ce"]) + 2.0 * float(terms["loss/hol/v"]), rel=1e-6
    )
    assert not np.allclose(first.params["w"], params["w"])


def test_early_stopping_counts_epochs_without_strict_improvement():
    stopper = EarlyStopping("NDCG@10", patience=2)
    assert stopper.update(0, {"NDCG@10": 0.1})
    assert not stopper.update(1, {"NDCG@10": 0.1})  # ties do not count as improvement
    assert stopper.update(2, {"NDCG@10": 0.2}) and stopper.bad_epochs == 0
    assert not stopper.update(3, {"NDCG@10": 0.15})
    assert not stopper.should_stop
    assert not stopper.update(4, {"NDCG@10": 0.19})
    assert stopper.should_stop and stopper.best_epoch == 2
    restored = EarlyStopping.from_dict(json.loads(json.dumps(stopper.to_dict())))
    assert restored == stopper
    with pytest.raises(ValueError, match="HR@50"):
        EarlyStopping("HR@50", 1).update(0, {"HR@10": 0.3})


def test_best_checkpoint_is_chosen_by_the_metric_not_recency(tmp_path):
    checkpoints = Checkpoints(str(tmp_path), metric="NDCG@10")
    for step, value in ((10, 0.2), (20, 0.5), (30, 0.3)):
        checkpoints.save_best(
            step, {"w": jnp.full((2,), float(step))}, {"epoch": step // 10, "NDCG@10": value}
        )
    checkpoints.wait()
    assert checkpoints.best_step() == 20
    params, summary = checkpoints.restore_best()
    np.testing.assert_array_equal(params["w"], [20.0, 20.0])
    assert summary["NDCG@10"] == 0.5
    checkpoints.close()


def test_checkpoint_managers_never_share_a_cross_process_barrier_name(tmp_path):
    # Under several processes the `best` manager's background finalize and the `latest`
    # manager's next save can wait at orbax's save-progress barrier at once; one shared name
    # made the coordination service refuse the second wait and hang the 2-process run
    # (tests/test_multiprocess.py, intermittently). The barrier names carry this prefix.
    checkpoints = Checkpoints(str(tmp_path), metric="NDCG@10")
    prefixes = {
        manager._options.multiprocessing_options.barrier_sync_key_prefix
        for manager in (checkpoints.latest, checkpoints.best)
    }
    checkpoints.close()
    assert len(prefixes) == 2 and None not in prefixes


def test_metric_writer_appends_truncates_on_resume_and_writes_events(tmp_path):
    with MetricWriter(str(tmp_path)) as writer:
        for step in (1, 2, 3, 4):
            writer.write(step, "train", {"loss/ce": np.float32(step), "lr/main": 0.1})
        writer.write(4, "error", {"message": "x", "bad": float("nan")})
    with MetricWriter(str(tmp_path), resume_step=2) as writer:
        assert [r["step"] for r in writer.records()] == [1, 2]
        writer.write(3, "train", {"loss/ce": 3.5})
    records = list(read_records(str(tmp_path / "metrics.jsonl")))
    assert [(r["step"], r["loss/ce"]) for r in records] == [(1, 1.0), (2, 2.0), (3, 3.5)]
    assert os.listdir(tmp_path / "tb")
    # A fresh run (no resume step) starts the file over; an inactive writer writes nothing.
    MetricWriter(str(tmp_path)).close()
    assert list(read_records(str(tmp_path / "metrics.jsonl"))) == []
    inactive = MetricWriter(str(tmp_path / "other"), active=False)
    assert inactive.write(1, "train", {"a": 1})["a"] == 1
    assert not os.path.exists(tmp_path / "other")


def test_plot_curves_writes_a_png(tmp_path):
    epochs = [
        {"epoch": e, "loss/total": 3.0 - e, "loss/ce": 2.0 - e / 2, "valid/NDCG@10": e / 10}
        for e in range(3)
    ]
    path = str(tmp_path / "curves.png")
    plot_curves(epochs, path, metric="NDCG@10")
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp.png")]
