"""Stage 1 end to end: ensure_features caching/manifest, configs, CLI, the real Beauty table."""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import subprocess
import sys

import ml_collections
import numpy as np
import pytest

from corrkd_jax.data import ItemTable
from corrkd_jax.features import stage, store
from corrkd_jax.features.config import base_config, text_view
from support.tiny_encoders import save_tiny_text_encoder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TITLES = ["", "Red nail polish", "", "Face cream", "Blue eye shadow palette", "Lip gloss"]
KEYWORDS = ["", "red polish", "shampoo", "", "eye shadow", "gloss lip"]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return save_tiny_text_encoder("bert", str(tmp_path_factory.mktemp("enc") / "bert"))


def _items(titles=TITLES, keywords=KEYWORDS) -> ItemTable:
    n = len(titles) - 1
    return ItemTable(
        external_ids=np.asarray([""] + [f"A{i}" for i in range(1, n + 1)], object),
        fields={"title": np.asarray(titles, object), "keywords": np.asarray(keywords, object)},
        num_items=n,
    )


def _config(encoder: str) -> ml_collections.ConfigDict:
    config = base_config(
        "tiny",
        "builtin:synthetic",
        {
            "title": text_view(("title", "keywords"), encoder=encoder),
            "kw": text_view(("keywords",), encoder=encoder, pooling="cls", normalize=False),
        },
    )
    config.reduce.method = "pca"
    config.reduce.dim = 3
    config.progress = False
    return config


def test_ensure_features_writes_then_reuses(tmp_path, tiny_bert, monkeypatch):
    config, items, out = _config(tiny_bert), _items(), str(tmp_path / "feat")
    first = stage.ensure_features(config, items, out, progress=False)
    assert sorted(first) == ["kw", "title"]
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    title = manifest["views"]["title"]
    assert title["field_usage"] == {"title": 4, "keywords": 1}
    assert [m["item_id"] for m in title["missing"]] == []
    assert [m["item_id"] for m in manifest["views"]["kw"]["missing"]] == [3]
    assert title["raw_dim"] == 16 and title["reduced_dim"] == 3 and title["num_items"] == 5
    assert title["input_checksum"].startswith("sha256:") and "transformers" in title["versions"]
    assert title["reduction"]["method"] == "pca" and "relative_error" in title["reduction"]
    raw = np.load(os.path.join(out, "title.npy"))
    reduced = np.load(os.path.join(out, "title.reduced.npy"))
    assert raw.shape == (6, 16) and raw.dtype == np.float32 and np.all(raw[0] == 0)
    np.testing.assert_array_equal(reduced, first["title"])
    assert np.all(first["kw"][[0, 3]] == 0)  # padding and the item without keywords
    assert not glob.glob(os.path.join(out, ".*tmp"))  # no temporary files left

    # Up to date: nothing is recomputed.
    def fail(*args, **kwargs):
        raise AssertionError("recomputed an up-to-date view")

    with monkeypatch.context() as patch:
        patch.setattr(stage, "compute_view", fail)
        again = stage.ensure_features(config, items, out, progress=False)
    np.testing.assert_array_equal(again["title"], first["title"])

    # A changed text invalidates only the views that read it.
    computed = []
    real = stage.compute_view

    def spy(config, name, *args, **kwargs):
        computed.append(name)
        return real(config, name, *args, **kwargs)

    monkeypatch.setattr(stage, "compute_view", spy)
    changed = _items(titles=TITLES[:1] + ["Green nail polish"] + TITLES[2:])
    stage.ensure_features(config, changed, out, progress=False)
    assert computed == ["title"]
    # A changed setting, a truncated file, or force recompute.
    config.reduce.dim = 2
    stage.ensure_features(config, changed, out, progress=False)
    assert computed[1:] == ["kw", "title"]
    np.save(os.path.join(out, "kw.npy"), np.zeros((2, 2), np.float32))
    stage.ensure_features(config, changed, out, progress=False)
    assert computed[3:] == ["kw"]
    stage.ensure_features(config, changed, out, force=True, progress=False)
    assert computed[4:] == ["kw", "title"]


def test_compute_features_matches_and_out_dir_is_keyed(tmp_path, tiny_bert):
    config, items = _config(tiny_bert), _items()
    config.cache_dir = str(tmp_path)
    computed = stage.compute_features(config, items, progress=False)
    raw, reduced = computed["title"]
    assert raw.shape == (6, 16) and reduced.shape == (6, 3)
    loaded = stage.ensure_features(config, items, progress=False)  # default out_dir
    np.testing.assert_allclose(loaded["title"], reduced, rtol=1e-5, atol=1e-6)
    folder = stage.default_out_dir(config)
    assert folder.startswith(str(tmp_path)) and os.path.isfile(folder + "/manifest.json")
    other = _config(tiny_bert)
    other.cache_dir = str(tmp_path)
    other.views.kw.pooling = "mean"
    assert stage.default_out_dir(other) != folder
    other.views.kw.pooling = "cls"
    assert stage.default_out_dir(other) == folder


def test_bad_configs_and_items(tiny_bert):
    config = _config(tiny_bert)
    config.views.title.fields = ("title", "brand")
    with pytest.raises(ValueError, match="brand"):
        stage.ensure_features(config, _items(), "/nonexistent/never-written", progress=False)
    for key, value, match in [
        ("kind", "audio", "kind"),
        ("pooling", "max", "pooling"),
        ("fields", (), "fields"),
        ("encoder", "", "encoder"),
    ]:
        config = _config(tiny_bert)
        config.views.kw[key] = value
        with pytest.raises(ValueError, match=match):
            stage.validate_config(config)
    config = _config(tiny_bert)
    config.reduce.method = "umap"
    with pytest.raises(ValueError, match="reduce.method"):
        stage.validate_config(config)


def _load_config(name: str) -> ml_collections.ConfigDict:
    path = os.path.join(REPO, "configs", "features", name)
    spec = importlib.util.spec_from_file_location(name[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


@pytest.mark.parametrize(
    "name",
    [
        "beauty_minilm.py",
        "sports_minilm.py",
        "toys_minilm.py",
        "synthetic_minilm.py",
        "beauty_t5.py",
    ],
)
def test_shipped_configs_are_valid(name):
    config = _load_config(name)
    stage.validate_config(config)
    assert config.reduce.dim == 128 and config.reduce.method == "autoencoder"
    assert all(view.pooling == "mean" for view in config.views.values())


def test_cli_on_a_small_s3rec_folder(tmp_path, tiny_bert):
    data = tmp_path / "shop"
    data.mkdir()
    (data / "sequences.txt").write_text("1 1 2 3\n2 2 3 4\n3 4 1 2\n")
    (data / "items.tsv").write_text(
        "s3rec_item_id\tasin\ttitle\tattributes\tidgenrec_text\n"
        "1\tA1\tRed nail polish\tOPI|Nails\tred polish\n"
        "2\tA2\t\tMakeup|Face\tface cream\n"
        "3\tA3\tBlue eye shadow\tMakeup|Eyes\tshadow\n"
        "4\tA4\tLip gloss\t\tgloss\n"
    )
    out = tmp_path / "out"
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), JAX_PLATFORMS="cpu")
    cmd = [
        sys.executable,
        "-m",
        "corrkd_jax.features",
        "--config",
        os.path.join(REPO, "configs/features/beauty_minilm.py"),
        f"--config.data.root={data}",
        f"--config.out_dir={out}",
        f"--config.views.title.encoder={tiny_bert}",
        f"--config.views.attr.encoder={tiny_bert}",
        "--config.reduce.method=pca",
        "--config.reduce.dim=2",
        "--config.progress=False",
    ]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "title:" in done.stdout and "attr:" in done.stdout
    manifest = store.load_manifest(str(out))
    assert manifest["views"]["title"]["field_usage"] == {"title": 3, "idgenrec_text": 1}
    assert [m["item_id"] for m in manifest["views"]["attr"]["missing"]] == [4]
    assert np.load(out / "attr.reduced.npy").shape == (5, 2)


@pytest.mark.shared_data
def test_beauty_item_table_views():
    """Needs ../shared/data/amazon-beauty: the title view falls back for the 7 empty titles."""
    from corrkd_jax.features.items import load_items, view_texts

    config = _load_config("beauty_minilm.py")
    items = load_items(config.data.root, format=config.data.format)
    assert items.num_items == 12101
    texts, source = view_texts(items, config.views.title.fields)
    assert int(np.sum(source == 1)) == 7 and int(np.sum(source == -1)) == 1  # row 0 only
    assert texts[1].startswith("OPI Nail Lacquer")
    _, attr_source = view_texts(items, config.views.attr.fields)
    assert int(np.sum(attr_source == 0)) == items.num_items
