"""Top-k inference from a trained run: function, CLI, and clear errors."""

from __future__ import annotations

import os

import jax
import numpy as np
import pytest

from corrkd_jax import recommend as rec
from corrkd_jax.train import train_and_evaluate
from corrkd_jax.trainer.checkpointing import Checkpoints
from support import tiny_runs as testing


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny 1-epoch session-graph id_only run (no features needed): (workdir, data root)."""
    root = tmp_path_factory.mktemp("recommend")
    data = testing.write_tiny_dataset(str(root / "data"), num_users=60)
    config = testing.tiny_config(data, str(root / "unused-encoder"), str(root / "cache"))
    config.model.variant = "id_only"
    config.num_epochs = 1
    workdir = str(root / "run")
    train_and_evaluate(config, workdir)
    return workdir, data


def _titles(data_root):
    with open(os.path.join(data_root, "items.tsv"), encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    return {int(r[0]): (r[1], r[2]) for r in rows}  # id -> (asin, title)


def test_recommend_returns_the_best_checkpoints_top_k(run):
    workdir, data_root = run
    predictor = rec.load_predictor(workdir)
    checkpoints = Checkpoints(workdir, metric="NDCG@10", read_only=True)
    best, _ = checkpoints.restore_best()
    checkpoints.close()
    jax.tree.map(
        np.testing.assert_array_equal, jax.device_get(predictor.params), jax.device_get(best)
    )

    histories = [[1, 2, 3], [5], list(range(1, 20))]  # the last is longer than max_len (8)
    out = rec.recommend(workdir, histories, k=5)
    scores = predictor.scores(histories)
    titles = _titles(data_root)
    assert len(out) == 3
    for row, row_scores in zip(out, scores):
        assert len(row) == 5
        items = [item for item, _, _ in row]
        assert items == [int(i) + 1 for i in np.argsort(-row_scores, kind="stable")[:5]]
        values = [score for _, score, _ in row]
        assert values == sorted(values, reverse=True)
        assert all(title == titles[item][1] for item, _, title in row)
    # Only the last max_len items matter.
    np.testing.assert_allclose(
        scores[2], predictor.scores([list(range(12, 20))])[0], rtol=1e-5, atol=1e-6
    )


def test_exclude_history(run):
    workdir, _ = run
    history = [item for item, _, _ in rec.recommend(workdir, [[4, 9]], k=3)[0]]
    out = rec.recommend(workdir, [history], k=10, exclude_history=True)[0]
    assert not set(history) & {item for item, _, _ in out}


def test_cli_prints_ids_and_titles(run, tmp_path, capsys):
    workdir, data_root = run
    titles = _titles(data_root)
    assert rec.main(["--workdir", workdir, "--history", "3 1 2", "--k", "4"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "history: 3 1 2" and len(lines) == 5
    first = int(lines[1].split("item ")[1].split()[0])
    assert titles[first][1] in lines[1] and titles[first][0] in lines[1]

    path = tmp_path / "histories.txt"
    path.write_text(f"{titles[3][0]} {titles[1][0]}\n\n{titles[7][0]}\n")
    assert (
        rec.main(
            ["--workdir", workdir, "--histories-file", str(path), "--k", "2", "--external-ids"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.count("history:") == 2 and "history: 3 1" in out


def test_clear_errors(run, tmp_path, capsys):
    workdir, _ = run
    assert rec.main(["--workdir", workdir, "--history", "1 99999"]) == 2
    assert "unknown item id '99999'" in capsys.readouterr().err
    path = tmp_path / "h.txt"
    path.write_text("1 2\nB0NOPE\n")
    assert rec.main(["--workdir", workdir, "--histories-file", str(path), "--external-ids"]) == 2
    err = capsys.readouterr().err
    assert "line 1" in err and "unknown external item id" in err
    with pytest.raises(rec.RecommendError, match="does not exist"):
        rec.recommend(str(tmp_path / "missing"), [[1]])
    with pytest.raises(rec.RecommendError, match="not a training run"):
        rec.recommend(str(tmp_path), [[1]])
    with pytest.raises(rec.RecommendError, match="k=0"):
        rec.recommend(workdir, [[1]], k=0)
