"""Issue 16: the four silent wrong results are refused or fixed, caches heal, workdirs are not
poisoned, and your own dataset trains in one command (configs/default.py or beauty.py)."""

from __future__ import annotations

import json
import os
import shutil
import struct

import ml_collections
import numpy as np
import pytest

from corrkd_jax import recommend as rec
from corrkd_jax.data import DataFormatError, load_dataset
from corrkd_jax.data.__main__ import main as describe_main
from corrkd_jax.data.read_recbole import read_recbole
from corrkd_jax.errors import ConfigError, WorkdirError
from corrkd_jax.own_data import resolve_views
from corrkd_jax.paths import repo_root
from corrkd_jax.train import NonFiniteLossError, train_and_evaluate
from corrkd_jax.trainer.config_files import load_config_file
from support import tiny_runs as testing

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tmp_path_factory, compile_cache):
    from support.tiny_encoders import save_tiny_text_encoder

    root = tmp_path_factory.mktemp("own_data")
    s3rec = testing.write_tiny_dataset(str(root / "s3rec"), num_users=60, max_items_per_user=8)
    encoder = save_tiny_text_encoder("bert", str(root / "bert"))
    return {"root": root, "s3rec": s3rec, "encoder": encoder, "cache": str(root / "cache")}


def _config(setup, data=None, **overrides):
    config = testing.tiny_config(data or setup["s3rec"], setup["encoder"], setup["cache"])
    config.data.format = config.features.data.format = "auto"
    config.model.variant = "id_only"
    config.num_epochs = 1
    config.update_from_flattened_dict({k.replace("__", "."): v for k, v in overrides.items()})
    return config


def _titles(folder):
    with open(os.path.join(folder, "items.tsv"), encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    return {int(r[0]): r[2] for r in rows}


# ----------------------------------------------------------------------------- silent case 1


def test_recommend_takes_and_gives_the_datasets_own_ids(setup, tmp_path):
    """items.tsv rows no sequence uses shift the internal ids: what the user gives and gets
    back stays the ids of sequences.txt/items.tsv, titles included."""
    folder = tmp_path / "shifted"
    folder.mkdir()
    shift = 10
    with open(os.path.join(setup["s3rec"], "sequences.txt")) as f:
        lines = [line.split() for line in f if line.strip()]
    with open(folder / "sequences.txt", "w") as f:
        for user, *items in lines:
            f.write(" ".join([user] + [str(int(i) + shift) for i in items]) + "\n")
    with open(os.path.join(setup["s3rec"], "items.tsv")) as f:
        header, *rows = [line.rstrip("\n").split("\t") for line in f]
    with open(folder / "items.tsv", "w") as f:
        f.write("\t".join(header) + "\n")
        for i in range(1, shift + 1):  # rows no sequence uses
            f.write(f"{i}\tUNUSED{i}\tunused item {i}\tnothing\n")
        for item_id, *rest in rows:
            f.write("\t".join([str(int(item_id) + shift), *rest]) + "\n")
    workdir = str(tmp_path / "run")
    train_and_evaluate(_config(setup, str(folder)), workdir)

    titles = _titles(str(folder))
    predictor = rec.load_predictor(workdir)
    history = [shift + 1, shift + 2, shift + 3]
    out = rec.recommend(workdir, [history], k=5)[0]
    expected = np.argsort(-predictor.scores([[1, 2, 3]])[0], kind="stable")[:5] + 1 + shift
    assert [item for item, _, _ in out] == expected.tolist()
    assert all(title == titles[item] for item, _, title in out)

    assert (
        rec.main(["--workdir", workdir, "--history", " ".join(map(str, history)), "--k", "3"]) == 0
    )
    with pytest.raises(rec.RecommendError, match="unknown item id"):
        rec.recommend(workdir, [[1]])  # a row of items.tsv that no sequence uses


def test_cli_prints_own_ids(setup, tmp_path, capsys):
    workdir = str(tmp_path / "run")
    train_and_evaluate(_config(setup), workdir)
    capsys.readouterr()
    assert rec.main(["--workdir", workdir, "--history", "3 1", "--k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "history: 3 1"
    titles = _titles(setup["s3rec"])
    for line in lines[1:]:
        item = int(line.split("item ")[1].split()[0])
        assert titles[item] in line


# ----------------------------------------------------------------------------- silent case 2


def test_resume_refuses_same_sized_but_changed_data(setup, tmp_path):
    data = shutil.copytree(setup["s3rec"], tmp_path / "data")
    workdir = str(tmp_path / "run")
    train_and_evaluate(_config(setup, str(data)), workdir)
    results = (tmp_path / "run" / "results.json").read_text()
    lines = (data / "sequences.txt").read_text().splitlines()
    user, *items = lines[0].split()
    items[0], items[1] = items[1], items[0]  # same users, items, interactions
    lines[0] = " ".join([user, *items])
    (data / "sequences.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(WorkdirError, match="content"):
        train_and_evaluate(_config(setup, str(data), num_epochs=2), workdir)
    with pytest.raises(WorkdirError, match="content"):
        rec.load_predictor(workdir)
    assert (tmp_path / "run" / "results.json").read_text() == results


def test_checkpoints_without_config_json_are_refused(setup, tmp_path):
    workdir = tmp_path / "run"
    train_and_evaluate(_config(setup), str(workdir))
    (workdir / "config.json").unlink()
    results = (workdir / "results.json").read_text()
    with pytest.raises(WorkdirError, match="no config.json"):
        train_and_evaluate(_config(setup, model__backbone="gru4rec"), str(workdir))
    assert not (workdir / "config.json").exists()
    assert (workdir / "results.json").read_text() == results


# ----------------------------------------------------------------------------- silent case 3


@pytest.mark.parametrize("stamp", ["nan", "inf", "-inf", "NaN"])
def test_recbole_non_finite_timestamps_are_refused(tmp_path, stamp):
    (tmp_path / "x.inter").write_text(
        f"user_id:token\titem_id:token\ttimestamp:float\nu1\ti1\t1\nu1\ti2\t{stamp}\n"
    )
    with pytest.raises(DataFormatError, match=r"x.inter, line 3: timestamp .* is not finite"):
        read_recbole(tmp_path)


# ----------------------------------------------------------------------------- no poisoned workdirs


def test_workdir_without_checkpoint_takes_a_changed_config(setup, tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "config.json").write_text(json.dumps({"model": {"dim": 999}}))
    (workdir / "dataset.json").write_text(json.dumps({"name": "other", "num_items": 1}))
    (workdir / "metrics.jsonl").write_text('{"step": 7, "kind": "train", "stale": 1}\n')
    results = train_and_evaluate(_config(setup), str(workdir))
    assert results["config"]["model"]["dim"] == 16
    assert json.loads((workdir / "config.json").read_text())["model"]["dim"] == 16
    assert "stale" not in (workdir / "metrics.jsonl").read_text()


def test_nan_stop_says_how_to_continue(setup, tmp_path):
    # No checkpoint before the failure: the same workdir takes the lower learning rate.
    config = _config(setup, model__backbone="gru4rec", optim__lr=1e30, log_every_steps=1)
    workdir = str(tmp_path / "nan")
    with pytest.raises(
        NonFiniteLossError,
        match=r"rerun the same command with "
        r"--config.optim.lr=1e\+29",
    ) as info:
        train_and_evaluate(config, workdir)
    assert "\n" not in str(info.value)
    assert "test" in train_and_evaluate(_config(setup, model__backbone="gru4rec"), workdir)
    # With a checkpoint: a new workdir, named.
    config = _config(
        setup,
        model__backbone="gru4rec",
        optim__lr=1e30,
        log_every_steps=1,
        checkpoint__every_steps=1,
    )
    with pytest.raises(
        NonFiniteLossError,
        match=r"--config.optim.lr=1e\+29 and a new "
        r"--workdir \(e.g. .*nan2-lr1e\+29\)",
    ):
        train_and_evaluate(config, str(tmp_path / "nan2"))


# ----------------------------------------------------------------------------- caches heal


def test_corrupt_data_cache_is_rebuilt_and_describe_stays_json(setup, tmp_path, capsys):
    cache = tmp_path / "cache"
    load_dataset(setup["s3rec"], cache_dir=str(cache))
    (entry,) = [p for p in cache.iterdir() if p.is_dir()]
    arrays = entry / "arrays.npz"
    arrays.write_bytes(arrays.read_bytes()[:40])  # truncated: zipfile.BadZipFile
    assert describe_main(["--describe", setup["s3rec"], "--cache-dir", str(cache)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["users"] == 60
    assert "rebuilding unreadable cache entry" in captured.err and str(entry) in captured.err
    # Healed: the next load reads the rebuilt entry without a notice.
    assert describe_main(["--describe", setup["s3rec"], "--cache-dir", str(cache)]) == 0
    assert capsys.readouterr().err == ""


def test_feature_cache_with_nan_rows_is_recomputed(setup, tmp_path):
    from corrkd_jax.features import ensure_features
    from corrkd_jax.features.store import reduced_path

    config = _config(setup).features
    config.reduce.dim = 16
    items = load_dataset(setup["s3rec"], cache_dir=str(tmp_path / "data")).items
    out = str(tmp_path / "features")
    first = ensure_features(config, items, out, progress=False)
    damaged = first["title"].copy()
    damaged[3] = np.nan
    np.save(reduced_path(out, "title"), damaged)
    again = ensure_features(config, items, out, progress=False)
    assert np.isfinite(again["title"]).all()
    np.testing.assert_allclose(again["title"], first["title"], rtol=1e-5, atol=1e-6)
    assert np.isfinite(np.load(reduced_path(out, "title"))).all()


# ----------------------------------------------------------------------------- small


def test_utf8_bom_is_stripped(setup, tmp_path):
    data = shutil.copytree(setup["s3rec"], tmp_path / "data")
    for name in ("sequences.txt", "items.tsv"):
        path = data / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    plain = load_dataset(setup["s3rec"], cache_dir=str(tmp_path / "c1"))
    bom = load_dataset(str(data), cache_dir=str(tmp_path / "c2"))
    assert sorted(bom.items.fields) == sorted(plain.items.fields)
    assert all(np.array_equal(a, b) for a, b in zip(bom.sequences, plain.sequences))


def _event_steps(folder):
    """(tag, step) of every scalar in the TensorBoard event files under `folder`."""
    from tensorboardX.proto import event_pb2

    found = []
    for name in sorted(os.listdir(folder)):
        data = open(os.path.join(folder, name), "rb").read()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset : offset + 8])
            event = event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length])
            offset += 12 + length + 4
            found.extend((value.tag, event.step) for value in event.summary.value)
    return found


def test_tensorboard_has_each_step_once_after_resume(setup, tmp_path):
    workdir = str(tmp_path / "run")
    interrupted = train_and_evaluate(
        _config(
            setup,
            log_every_steps=1,
            num_epochs=2,
            checkpoint__every_steps=1,
            checkpoint__max_steps_per_run=3,
        ),
        workdir,
    )
    assert interrupted["status"] == "interrupted"
    train_and_evaluate(_config(setup, log_every_steps=1, num_epochs=2), workdir)
    steps = _event_steps(os.path.join(workdir, "tb"))
    assert steps and len(steps) == len(set(steps))
    train_steps = sorted(step for tag, step in steps if tag == "train/loss/total")
    assert train_steps == list(range(1, train_steps[-1] + 1))


# ----------------------------------------------------------------------------- own data


@pytest.mark.parametrize("config_file", ["default.py", "beauty.py"])
def test_own_recbole_folder_in_one_command(setup, tmp_path, config_file):
    """`--config configs/<file>:sasrec,kdsr --config.data.root=DIR` on a RecBole folder whose
    item table has only `title`: stage 1 follows data.root, views fit the table."""
    folder = testing.write_recbole_dataset(setup["s3rec"], str(tmp_path / "mine"))
    config = load_config_file(os.path.join(repo_root(), "configs", config_file), "sasrec,kdsr")
    config.data.root = folder  # the one override the README shows
    testing.shrink(config, setup["encoder"], str(tmp_path / "cache"))
    foreign = tmp_path / "beauty_features"
    if config_file == "beauty.py":  # its out_dir holds another item table's features
        foreign.mkdir()
        manifest = {
            "format_version": 1,
            "num_items": 12101,
            "views": {"title": {"kind": "text", "input_checksum": "sha256:x"}},
        }
        (foreign / "manifest.json").write_text(json.dumps(manifest))
        config.features.out_dir = str(foreign)
    results = train_and_evaluate(config, str(tmp_path / "run"))
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["data"]["root"] == saved["features"]["data"]["root"] == folder
    assert saved["model"]["views"] == ["title"]
    assert saved["features"]["views"]["title"]["fields"] == ["title"]
    assert set(results["teacher"]) == {"title"}
    if config_file == "beauty.py":
        assert saved["features"]["out_dir"] == ""
        assert json.loads((foreign / "manifest.json").read_text()) == manifest
    # The same command resumes (here: finds the run finished).
    config = load_config_file(os.path.join(repo_root(), "configs", config_file), "sasrec,kdsr")
    config.data.root = folder
    testing.shrink(config, setup["encoder"], str(tmp_path / "cache"))
    if config_file == "beauty.py":
        config.features.out_dir = str(foreign)
    assert train_and_evaluate(config, str(tmp_path / "run"))["test"] == results["test"]


def test_views_come_from_the_tables_text_fields(setup, tmp_path):
    folder = testing.write_recbole_dataset(
        setup["s3rec"], str(tmp_path / "ml"), title_field="movie_title"
    )
    data = load_dataset(folder, cache_dir=str(tmp_path / "cache"))
    config = load_config_file(os.path.join(repo_root(), "configs", "default.py"))
    assert resolve_views(config, data.items)
    assert tuple(config.model.views) == ("movie_title",)
    assert tuple(config.features.views.movie_title.fields) == ("movie_title",)
    # No text at all: refused with the way out.
    bare = load_dataset(
        testing.write_tiny_dataset(str(tmp_path / "bare"), num_users=20),
        cache_dir=str(tmp_path / "cache"),
    )
    empty = type(bare.items)(
        external_ids=bare.items.external_ids, fields={}, num_items=bare.items.num_items
    )
    config = load_config_file(os.path.join(repo_root(), "configs", "default.py"))
    with pytest.raises(ConfigError, match="id_only"):
        resolve_views(config, empty)
    # Explicit views and id_only are left alone.
    config = load_config_file(os.path.join(repo_root(), "configs", "default.py"))
    assert not resolve_views(config, bare.items)
    config.model.variant = "id_only"
    assert not resolve_views(config, empty)
    assert isinstance(config, ml_collections.ConfigDict)
