"""load_dataset and its cache, the --describe CLI, and the real datasets in ../shared/data."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from test_data_readers import make_amazon, make_recbole, make_s3rec

from corrkd_jax.data import __main__ as cli
from corrkd_jax.data import dataset as dataset_lib
from corrkd_jax.data import load_dataset, make_split
from corrkd_jax.data.structures import DataFormatError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def same_data(a, b) -> bool:
    return (
        a.name == b.name
        and a.user_ids.tolist() == b.user_ids.tolist()
        and [s.tolist() for s in a.sequences] == [s.tolist() for s in b.sequences]
        and a.items.external_ids.tolist() == b.items.external_ids.tolist()
        and {k: v.tolist() for k, v in a.items.fields.items()}
        == {k: v.tolist() for k, v in b.items.fields.items()}
    )


@pytest.mark.parametrize("make", [make_s3rec, make_recbole, make_amazon])
def test_second_load_hits_the_cache(tmp_path, monkeypatch, make):
    root = make(tmp_path / "data")
    first = load_dataset(root, cache_dir=tmp_path / "cache")
    entries = list((tmp_path / "cache").iterdir())
    assert len(entries) == 1 and entries[0].name.startswith("data-")

    def no_parsing(*args, **kwargs):
        raise AssertionError("parsed again despite a cache entry")

    monkeypatch.setattr(dataset_lib.readers, "read_raw", no_parsing)
    second = load_dataset(root, cache_dir=tmp_path / "cache")
    assert same_data(first, second)
    assert second.sequences[0].dtype == np.int32
    # Other preprocessing settings are another entry (and need parsing).
    with pytest.raises(AssertionError, match="parsed again"):
        load_dataset(root, min_core=2, cache_dir=tmp_path / "cache")


def test_changed_input_file_invalidates_the_cache(tmp_path):
    root = make_s3rec(tmp_path / "data")
    load_dataset(root, cache_dir=tmp_path / "cache")
    with open(root / "sequences.txt", "a") as f:
        f.write("4 2 3 4\n")
    data = load_dataset(root, cache_dir=tmp_path / "cache")
    assert data.num_users == 4
    assert len(list((tmp_path / "cache").iterdir())) == 2


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    root = make_s3rec(tmp_path / "data")

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(dataset_lib.np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        load_dataset(root, cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_bad_input_raises_before_caching(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "sequences.txt").write_text("1 1 two\n")
    with pytest.raises(DataFormatError, match="line 1: non-integer item id 'two'"):
        load_dataset(root, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert dataset_lib.default_cache_dir() == tmp_path / "corrkd_jax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert dataset_lib.default_cache_dir() == Path.home() / ".cache" / "corrkd_jax"


def test_unknown_builtin_and_format(tmp_path):
    with pytest.raises(ValueError, match="unknown built-in"):
        load_dataset("builtin:movies", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown format"):
        load_dataset(tmp_path, format="csv", cache_dir=tmp_path)


def test_describe_cli(tmp_path, capsys):
    root = make_recbole(tmp_path / "data")
    code = cli.main(["--describe", str(root), "--cache-dir", str(tmp_path / "cache")])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {
        "users": 2,
        "items": 3,
        "interactions": 4,
        "protocol": "leave_one_out",
        "train": 0,
        "valid": 1,
        "test": 1,
    }
    code = cli.main(["--describe", str(tmp_path / "missing"), "--cache-dir", str(tmp_path)])
    assert code == 2 and "missing dataset folder" in capsys.readouterr().err


@pytest.mark.shared_data
def test_amazon_beauty_counts(tmp_path):
    """Needs ../shared/data/amazon-beauty (present in CI)."""
    data = load_dataset(SHARED / "amazon-beauty", cache_dir=tmp_path)
    assert (data.num_users, data.num_items, data.num_interactions) == (22_363, 12_101, 198_502)
    # S3-Rec ids are kept: item i is row i of items.tsv.
    assert data.items.external_ids[1] == "B004756YJA"
    assert list(data.items.fields) == ["asin", "title", "attributes", "idgenrec_text"]
    assert data.items.fields["attributes"][1] == "OPI|Makeup|Nails|Nail Polish"
    split = make_split(data, "leave_one_out", max_len=50)
    assert (len(split.train), len(split.valid), len(split.test)) == (131_413, 22_363, 22_363)


@pytest.mark.shared_data
def test_ml100k_counts(tmp_path):
    """Needs ../shared/data/ml-100k (present in CI)."""
    data = load_dataset(SHARED / "ml-100k", min_core=0, cache_dir=tmp_path)
    assert (data.num_users, data.num_items, data.num_interactions) == (943, 1_682, 100_000)
    assert set(data.items.fields) == {"movie_title", "release_year", "class"}
    row = data.items.external_ids.tolist().index("1")
    assert data.items.fields["movie_title"][row] == "Toy Story"


@pytest.mark.shared_data
def test_relative_root_resolves_against_the_project(tmp_path, monkeypatch):
    """Needs ../shared/data/ml-100k (present in CI)."""
    monkeypatch.chdir(tmp_path)
    assert dataset_lib.resolve_root("../shared/data/ml-100k") == (SHARED / "ml-100k").resolve()
    assert os.path.isdir(dataset_lib.resolve_root("../shared/data/ml-100k"))
