"""End-to-end training: the real `train_and_evaluate` on a tiny synthetic S3-Rec folder.

One module-scoped run (session-graph KDSR, tiny random BERT features) is shared by the output,
resume and multi-device tests. XLA executables are cached on disk for this module only, so the
repeated runs of the same program (resume) do not pay for compilation twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from corrkd_jax.train import NonFiniteLossError, train_and_evaluate
from corrkd_jax.trainer.checkpointing import Checkpoints
from corrkd_jax.trainer.metric_writer import read_records
from corrkd_jax.trainer.workdir import TEST_RANKS_FILE
from support import tiny_runs as testing

METRIC_NAMES = [f"{m}@{k}" for m in ("HR", "NDCG", "MRR") for k in (5, 10, 20)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory, compile_cache):
    """(tiny dataset folder, tiny BERT folder, cache root) shared by the module."""
    from support.tiny_encoders import save_tiny_text_encoder

    root = tmp_path_factory.mktemp("tiny")
    data = testing.write_tiny_dataset(str(root / "data"))
    encoder = save_tiny_text_encoder("bert", str(root / "bert"))
    return data, encoder, str(root / "cache")


def _config(setup, **overrides):
    config = testing.tiny_config(*setup)
    config.update_from_flattened_dict({k.replace("__", "."): v for k, v in overrides.items()})
    return config


@pytest.fixture(scope="module")
def reference_run(setup, tmp_path_factory):
    """An uninterrupted 2-epoch KDSR run: (config, workdir, results)."""
    config = _config(setup)
    workdir = str(tmp_path_factory.mktemp("reference"))
    return config, workdir, train_and_evaluate(config, workdir)


def _best_params(workdir, metric="NDCG@10"):
    checkpoints = Checkpoints(workdir, metric=metric, read_only=True)
    try:
        params, summary = checkpoints.restore_best()
        return jax.device_get(params), summary, checkpoints.best_step()
    finally:
        checkpoints.close()


def test_outputs_of_an_end_to_end_run(reference_run):
    config, workdir, results = reference_run
    on_disk = json.load(open(os.path.join(workdir, "results.json")))
    assert on_disk["test"] == results["test"]
    assert set(results["test"]) == set(METRIC_NAMES) == set(results["valid"])
    for split in ("valid", "test"):
        metrics = results[split]
        for k in ("5", "10", "20"):
            assert 0.0 <= metrics[f"MRR@{k}"] <= metrics[f"NDCG@{k}"] <= metrics[f"HR@{k}"] <= 1
        assert metrics["HR@5"] <= metrics["HR@10"] <= metrics["HR@20"]
    assert results["config"]["model"]["variant"] == "kdsr"
    # The same checkpoint with history items removed from the candidates: ranks only improve.
    assert set(results["test_excluding_history"]) == set(METRIC_NAMES)
    for name in METRIC_NAMES:
        assert results["test_excluding_history"][name] >= results["test"][name] - 1e-7, name
    assert {"epoch_seconds", "compile_seconds", "total_seconds"} <= set(results["timing"])
    assert len(results["timing"]["epoch_seconds"]) == results["epochs_trained"] == 2
    # Called as a library: the caller did not say it reused host memory (the CLI does).
    assert results["timing"]["host_memory_reused"] is False
    assert results["versions"]["jax"] == jax.__version__
    # Quantisation stats of both fitted codebooks are reported.
    assert set(results["teacher"]) == {"title", "attr"}

    records = list(read_records(os.path.join(workdir, "metrics.jsonl")))
    train = [r for r in records if r["kind"] == "train"]
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert len(epochs) == 2 and train
    for term in ("loss/ce", "loss/total", "loss/hol/title", "loss/code/attr"):
        assert all(np.isfinite(r[term]) for r in train), term
    # Teacher-student agreement of each view table is logged per epoch (a Pearson r).
    for view in ("title", "attr"):
        assert all(-1.0 <= r[f"agreement/{view}"] <= 1.0 for r in epochs), view
    # The async group: view tables at lr / gamma^len(schedule) = lr / 4 (released default).
    assert train[0]["lr/main"] == pytest.approx(config.optim.lr)
    assert train[0]["lr/slow"] == pytest.approx(config.optim.lr / 4)
    # The best epoch is the arg-max of the validation metric, and its metrics are reported.
    best = max(epochs, key=lambda r: r["valid/NDCG@10"])
    assert results["best_epoch"] == best["epoch"]
    assert results["valid"] == {name: best[f"valid/{name}"] for name in METRIC_NAMES}
    # The test split is scored exactly once.
    assert len([r for r in records if r["kind"] == "test"]) == 1

    # A readable table of the same numbers, in %.
    table = open(os.path.join(workdir, "results.md")).read()
    test_row = next(line for line in table.splitlines() if line.startswith("| test |"))
    assert f"{100 * results['test']['HR@10']:.2f}" in test_row.split(" | ")

    with open(os.path.join(workdir, "curves.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert any(
        name.startswith("events.out.tfevents") for name in os.listdir(os.path.join(workdir, "tb"))
    )
    # The best checkpoint is the best epoch's (best_fn set, not merely the latest save).
    _, summary, step = _best_params(workdir)
    assert summary["epoch"] == results["best_epoch"]
    assert step == (results["best_epoch"] + 1) * (results["steps"] // 2)


def test_interrupted_and_resumed_run_is_bit_identical(reference_run, setup, tmp_path):
    config, reference_dir, reference = reference_run
    workdir = str(tmp_path / "resumed")
    # Stop mid-epoch 0 (after 7 steps, with a mid-epoch save at step 5), then mid-epoch 1.
    first = train_and_evaluate(
        _config(setup, checkpoint__max_steps_per_run=7, checkpoint__every_steps=5), workdir
    )
    assert first == {"status": "interrupted", "step": 7}
    assert not os.path.exists(os.path.join(workdir, "results.json"))
    second = train_and_evaluate(_config(setup, checkpoint__max_steps_per_run=30), workdir)
    assert second["status"] == "interrupted"
    resumed = train_and_evaluate(config, workdir)

    assert resumed["valid"] == reference["valid"]
    assert resumed["test"] == reference["test"]
    assert resumed["best_epoch"] == reference["best_epoch"]
    params, _, _ = _best_params(workdir)
    reference_params, _, _ = _best_params(reference_dir)
    jax.tree.map(np.testing.assert_array_equal, params, reference_params)
    # No step is logged twice after the restarts.
    steps = [(r["kind"], r["step"]) for r in read_records(os.path.join(workdir, "metrics.jsonl"))]
    assert len(steps) == len(set(steps))


def test_test_evaluator_logs_best_of_test_without_changing_the_run(reference_run, setup, tmp_path):
    _, _, reference = reference_run
    workdir = str(tmp_path / "test_every_epoch")
    results = train_and_evaluate(_config(setup, eval__per_epoch=("agreement", "test")), workdir)
    # Scoring test each epoch changes neither the training nor the selected test numbers.
    assert results["test"] == reference["test"]
    assert results["best_epoch"] == reference["best_epoch"]
    epochs = [
        r for r in read_records(os.path.join(workdir, "metrics.jsonl")) if r["kind"] == "epoch"
    ]
    assert len(epochs) == 2
    for name in METRIC_NAMES:
        best = max(epochs, key=lambda r: r[f"test_epoch/{name}"])
        assert results["best_of_test_epochs"][name] == {
            "value": best[f"test_epoch/{name}"],
            "epoch": best["epoch"],
        }
        assert results["best_of_test_epochs"][name]["value"] >= results["test"][name]
    # The reference run did not score test per epoch, so it reports no best-of-test block.
    assert "best_of_test_epochs" not in reference


def test_excluding_history_scores_the_protocol_results_json_also_reports(setup, tmp_path):
    results = train_and_evaluate(
        _config(setup, num_epochs=1, eval__exclude_history=True), str(tmp_path / "unseen")
    )
    for name in METRIC_NAMES:
        assert results["test"][name] == pytest.approx(
            results["test_excluding_history"][name], abs=1e-6
        ), name


def test_resume_refuses_a_different_experiment(reference_run, setup):
    _, workdir, _ = reference_run
    with pytest.raises(ValueError, match="model.dim"):
        train_and_evaluate(_config(setup, model__dim=8), workdir)


def _losses(workdir: str) -> dict[tuple[int, str, str], float]:
    """Every logged loss of a run: (step, record kind, name) -> value."""
    return {
        (r["step"], r["kind"], name): value
        for r in read_records(os.path.join(workdir, "metrics.jsonl"))
        for name, value in r.items()
        if "loss" in name
    }


def test_eight_simulated_devices_match_one_device(reference_run, tmp_path):
    """Data-parallel training on 8 devices follows the 1-device run: the same losses at every
    logged step (train, epoch means, valid and test cross-entropy over all cases) and the same
    per-user test ranks up to near-ties. Ranks, not HR/NDCG, because the tiny model's scores
    are nearly tied over its 751 items (CE ~ ln 751): float-level differences in the sharded
    reductions (Adam scales them to lr-sized steps on near-zero gradients) move a few users
    by a few places, which can flip a top-10 hit; a sharding bug (a user dropped, repeated or
    scored against the wrong items) moves ranks by hundreds."""
    config, workdir, _ = reference_run
    config_path = tmp_path / "config.json"
    config_path.write_text(config.to_json_best_effort())
    script = textwrap.dedent(f"""
        import json, jax, ml_collections
        assert jax.device_count() == 8, jax.devices()
        from corrkd_jax.train import train_and_evaluate
        config = ml_collections.ConfigDict(json.load(open({str(config_path)!r})))
        train_and_evaluate(config, {str(tmp_path / "run")!r})
    """)
    env = dict(
        os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    ours, theirs = _losses(str(tmp_path / "run")), _losses(workdir)
    assert set(ours) == set(theirs) and any(kind == "test" for _, kind, _ in ours)
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value, rel=1e-5, abs=1e-5), key
    ranks, reference_ranks = (
        np.load(os.path.join(w, TEST_RANKS_FILE)) for w in (str(tmp_path / "run"), workdir)
    )
    assert ranks.shape == reference_ranks.shape  # every test user scored once
    moved = ranks != reference_ranks
    assert moved.mean() <= 0.2 and np.abs(ranks - reference_ranks).max() <= 8, (
        ranks[moved],
        reference_ranks[moved],
    )


def test_nan_loss_stops_with_the_term_named(setup, tmp_path):
    # lr 1e30: the first update blows the parameters up, the next loss is not finite.
    config = _config(
        setup,
        model__variant="id_only",
        model__backbone="gru4rec",
        optim__lr=1e30,
        log_every_steps=1,
        checkpoint__every_steps=1,
    )
    workdir = str(tmp_path / "nan")
    with pytest.raises(NonFiniteLossError, match=r"loss/ce became (nan|inf)") as info:
        train_and_evaluate(config, workdir)
    assert "last good checkpoint (step 1)" in str(info.value)
    records = list(read_records(os.path.join(workdir, "metrics.jsonl")))
    assert records[-1]["kind"] == "error"
    # The checkpoint before the failure is still restorable.
    checkpoints = Checkpoints(workdir, metric="NDCG@10", read_only=True)
    assert checkpoints.latest_step() == 1
    assert checkpoints.latest_progress()["step_in_epoch"] == 1
    checkpoints.close()


def test_early_stopping_keeps_the_best_epoch(setup, tmp_path):
    # lr 0: validation never strictly improves after epoch 0, so patience 2 stops after
    # epoch 2 and the test split is scored with epoch 0's parameters.
    config = _config(
        setup,
        model__variant="id_only",
        model__backbone="gru4rec",
        optim__lr=0.0,
        num_epochs=20,
        eval__patience=2,
    )
    results = train_and_evaluate(config, str(tmp_path / "early"))
    assert results["epochs_trained"] == 3
    assert results["best_epoch"] == 0
    assert results["stop_reason"].startswith("early stopping")
    _, summary, step = _best_params(str(tmp_path / "early"))
    assert summary["epoch"] == 0 and step == results["steps"] // 3
