"""Readers: each real format on small files written here, auto-detection, every input error."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from corrkd_jax.data.readers import detect_format, read_raw
from corrkd_jax.data.structures import DataFormatError


def write(path: Path, text: str, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def make_s3rec(root: Path) -> Path:
    write(root / "sequences.txt", "1 1 2 3\n2 3 2\n\n3 4 1\n")
    # Rows deliberately out of id order: the reader sorts by id.
    write(
        root / "items.tsv",
        "s3rec_item_id\tasin\ttitle\tattributes\n"
        "2\tB002\tRed Lipstick\tAcme|Makeup|Lips\n"
        "1\tB001\tBlue Nail Polish\tOPI|Makeup|Nails\n"
        "3\tB003\t\tAcme|Skin\n"
        "4\tB004\tShampoo\tX|Hair\n",
    )
    return root


def make_recbole(root: Path) -> Path:
    write(
        root / "toy.inter",
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "u1\ti9\t4\t300\n"
        "u2\ti7\t5\t100\n"
        "u1\ti7\t3\t200\n"
        "u1\ti8\t3\t200\n",
    )
    write(
        root / "toy.item",
        "item_id:token\tmovie_title:token_seq\tclass:token_seq\n"
        "i7\tToy Story\tAnimation Comedy\n"
        "i8\tHeat\tAction\n"
        "i9\tAlien\tHorror Sci-Fi\n",
    )
    return root


META_LINES = [
    "{'asin': 'A1', 'title': 'Nail Lacquer', 'brand': 'OPI', "
    "'categories': [['Beauty', 'Makeup', 'Nails'], ['Beauty', 'Tools']], "
    "'imUrl': 'http://x/a1.jpg', 'price': 7.5}",
    "{'asin': 'ZZ', 'title': \"Never reviewed, it's skipped\"}",
    "{'asin': 'A2', 'categories': [['Beauty']], 'related': {'also_bought': ['A1']}}",
]


def make_amazon(root: Path) -> Path:
    reviews = [
        {"reviewerID": "R1", "asin": "A2", "unixReviewTime": 20, "overall": 5.0},
        {"reviewerID": "R1", "asin": "A1", "unixReviewTime": 10},
        {"reviewerID": "R2", "asin": "A1", "unixReviewTime": 15},
    ]
    write(root / "reviews_Beauty_5.json.gz", "".join(json.dumps(r) + "\n" for r in reviews), True)
    write(root / "meta_Beauty.json.gz", "\n".join(META_LINES) + "\n", True)
    return root


def test_s3rec_reader(tmp_path):
    raw = read_raw(make_s3rec(tmp_path), "auto")
    assert raw.users.tolist() == ["1", "1", "1", "2", "2", "3", "3"]
    assert raw.items.tolist() == [1, 2, 3, 3, 2, 4, 1]
    assert raw.timestamps is None
    assert raw.item_keys.tolist() == [1, 2, 3, 4]
    assert raw.external_ids.tolist() == ["B001", "B002", "B003", "B004"]
    assert list(raw.fields) == ["asin", "title", "attributes"]
    assert raw.fields["title"].tolist() == ["Blue Nail Polish", "Red Lipstick", "", "Shampoo"]


def test_s3rec_without_item_table(tmp_path):
    write(tmp_path / "sequences.txt", "5 10 2\n6 2\n")
    raw = read_raw(tmp_path, "s3rec")
    assert raw.item_keys.tolist() == [2, 10]
    assert raw.external_ids.tolist() == ["2", "10"]
    assert raw.fields == {}


def test_recbole_reader(tmp_path):
    raw = read_raw(make_recbole(tmp_path), "auto")
    assert raw.name == "toy"
    assert raw.users.tolist() == ["u1", "u2", "u1", "u1"]
    assert raw.items.tolist() == ["i9", "i7", "i7", "i8"]
    np.testing.assert_array_equal(raw.timestamps, [300.0, 100.0, 200.0, 200.0])
    assert raw.item_keys.tolist() == ["i7", "i8", "i9"]
    assert sorted(raw.fields) == ["class", "movie_title"]  # ':type' stripped
    assert raw.fields["movie_title"].tolist() == ["Toy Story", "Heat", "Alien"]


def test_amazon_raw_reader(tmp_path):
    raw = read_raw(make_amazon(tmp_path), "auto")
    assert raw.users.tolist() == ["R1", "R1", "R2"]
    assert raw.items.tolist() == ["A2", "A1", "A1"]
    np.testing.assert_array_equal(raw.timestamps, [20.0, 10.0, 15.0])
    assert raw.item_keys.tolist() == ["A1", "A2"]  # meta file order, unreviewed ZZ skipped
    assert raw.external_ids.tolist() == ["A1", "A2"]
    f = {k: v.tolist() for k, v in raw.fields.items()}
    assert f["title"] == ["Nail Lacquer", ""]
    assert f["brand"] == ["OPI", ""]
    assert f["categories"] == ["Beauty > Makeup > Nails", "Beauty"]
    assert f["attributes"] == ["OPI|Makeup|Nails", "Beauty"]
    assert f["imUrl"] == ["http://x/a1.jpg", ""]


def test_detect_format(tmp_path):
    assert detect_format(make_s3rec(tmp_path / "a")) == "s3rec"
    assert detect_format(make_recbole(tmp_path / "b")) == "recbole"
    assert detect_format(make_amazon(tmp_path / "c")) == "amazon_raw"
    make_recbole(tmp_path / "a")
    with pytest.raises(DataFormatError, match="several formats"):
        detect_format(tmp_path / "a")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="no supported dataset files"):
        detect_format(tmp_path / "empty")


# Each case: (files to write, format, expected file name in the message, line, problem regex).
BAD_INPUTS = {
    "s3rec_malformed_line": (
        {"sequences.txt": "1 1 2\n2\n"},
        "s3rec",
        "sequences.txt",
        2,
        "malformed line",
    ),
    "s3rec_non_integer_item": (
        {"sequences.txt": "1 1 2\n2 3 x7\n"},
        "s3rec",
        "sequences.txt",
        2,
        "non-integer item id 'x7'",
    ),
    "s3rec_non_integer_user": (
        {"sequences.txt": "u1 1 2\n"},
        "s3rec",
        "sequences.txt",
        1,
        "non-integer user id",
    ),
    "s3rec_zero_item": (
        {"sequences.txt": "1 0 2\n"},
        "s3rec",
        "sequences.txt",
        1,
        "item id must be >= 1",
    ),
    "s3rec_repeated_user": (
        {"sequences.txt": "1 1\n2 2\n1 3\n"},
        "s3rec",
        "sequences.txt",
        3,
        "already has a sequence",
    ),
    "s3rec_item_without_row": (
        {"sequences.txt": "1 1 2\n2 9\n", "items.tsv": "id\ttitle\n1\ta\n2\tb\n"},
        "s3rec",
        "sequences.txt",
        2,
        "item id 9 has no row in items.tsv",
    ),
    "s3rec_duplicated_row": (
        {"sequences.txt": "1 1\n", "items.tsv": "id\ttitle\n1\ta\n2\tb\n1\tc\n"},
        "s3rec",
        "items.tsv",
        4,
        "duplicated item row for id 1 .first on line 2",
    ),
    "s3rec_table_field_count": (
        {"sequences.txt": "1 1\n", "items.tsv": "id\ttitle\n1\ta\textra\n"},
        "s3rec",
        "items.tsv",
        2,
        "expected 2 tab-separated fields, found 3",
    ),
    "s3rec_table_non_integer": (
        {"sequences.txt": "1 1\n", "items.tsv": "id\ttitle\nB01\ta\n"},
        "s3rec",
        "items.tsv",
        2,
        "non-integer item id 'B01'",
    ),
    "s3rec_empty_sequences": (
        {"sequences.txt": "\n\n"},
        "s3rec",
        "sequences.txt",
        None,
        "empty file",
    ),
    "s3rec_empty_table": (
        {"sequences.txt": "1 1\n", "items.tsv": ""},
        "s3rec",
        "items.tsv",
        None,
        "empty file",
    ),
    "s3rec_header_only_table": (
        {"sequences.txt": "1 1\n", "items.tsv": "id\ttitle\n"},
        "s3rec",
        "items.tsv",
        None,
        "no item rows",
    ),
    "s3rec_missing_file": (
        {"items.tsv": "id\n1\n"},
        "s3rec",
        "sequences.txt",
        None,
        "missing file",
    ),
    "recbole_field_count": (
        {"d.inter": "user_id:token\titem_id:token\n1\t2\n3\n"},
        "recbole",
        "d.inter",
        3,
        "expected 2 tab-separated fields, found 1",
    ),
    "recbole_bad_timestamp": (
        {"d.inter": "user_id:token\titem_id:token\ttimestamp:float\n1\t2\tnoon\n"},
        "recbole",
        "d.inter",
        2,
        "non-numeric timestamp 'noon'",
    ),
    "recbole_no_item_column": (
        {"d.inter": "user_id:token\titem:token\n1\t2\n"},
        "recbole",
        "d.inter",
        1,
        "no 'item_id' column",
    ),
    "recbole_item_without_row": (
        {
            "d.inter": "user_id:token\titem_id:token\n1\ta\n1\tb\n",
            "d.item": "item_id:token\ttitle:token_seq\na\tA\n",
        },
        "recbole",
        "d.inter",
        3,
        "item id 'b' has no row in d.item",
    ),
    "recbole_duplicated_row": (
        {
            "d.inter": "user_id:token\titem_id:token\n1\ta\n",
            "d.item": "item_id:token\ttitle:token_seq\na\tA\na\tB\n",
        },
        "recbole",
        "d.item",
        3,
        "duplicated item row for id 'a'",
    ),
    "recbole_header_only": (
        {"d.inter": "user_id:token\titem_id:token\n"},
        "recbole",
        "d.inter",
        None,
        "empty file",
    ),
    "recbole_missing_file": ({"d.item": "item_id:token\na\n"}, "recbole", "", None, "missing file"),
    "amazon_malformed_json": (
        {"reviews_X_5.json.gz": '{"reviewerID": "R", "asin": "A", "unixReviewTime": 1}\n{"oops\n'},
        "amazon_raw",
        "reviews_X_5.json.gz",
        2,
        "malformed JSON",
    ),
    "amazon_missing_key": (
        {"reviews_X_5.json.gz": '{"reviewerID": "R", "unixReviewTime": 1}\n'},
        "amazon_raw",
        "reviews_X_5.json.gz",
        1,
        "missing key 'asin'",
    ),
    "amazon_bad_time": (
        {"reviews_X_5.json.gz": '{"reviewerID": "R", "asin": "A", "unixReviewTime": "x"}\n'},
        "amazon_raw",
        "reviews_X_5.json.gz",
        1,
        "non-numeric unixReviewTime",
    ),
    "amazon_malformed_meta": (
        {
            "reviews_X_5.json.gz": '{"reviewerID": "R", "asin": "A", "unixReviewTime": 1}\n',
            "meta_X.json.gz": "{'asin': 'A', 'title': 'unterminated}\n",
        },
        "amazon_raw",
        "meta_X.json.gz",
        1,
        "not a Python literal",
    ),
    "amazon_item_without_row": (
        {
            "reviews_X_5.json.gz": '{"reviewerID": "R", "asin": "A", "unixReviewTime": 1}\n'
            '{"reviewerID": "R", "asin": "B", "unixReviewTime": 2}\n',
            "meta_X.json.gz": "{'asin': 'A'}\n",
        },
        "amazon_raw",
        "reviews_X_5.json.gz",
        2,
        "item id 'B' has no row in meta_X.json.gz",
    ),
    "amazon_duplicated_row": (
        {
            "reviews_X_5.json.gz": '{"reviewerID": "R", "asin": "A", "unixReviewTime": 1}\n',
            "meta_X.json.gz": "{'asin': 'A'}\n{'asin': 'A', 'title': 't'}\n",
        },
        "amazon_raw",
        "meta_X.json.gz",
        2,
        "duplicated item row for asin 'A'",
    ),
    "amazon_empty_reviews": (
        {"reviews_X_5.json.gz": ""},
        "amazon_raw",
        "reviews_X_5.json.gz",
        None,
        "empty file",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_names_file_line_and_problem(tmp_path, case):
    files, fmt, file_name, line, problem = BAD_INPUTS[case]
    for name, text in files.items():
        write(tmp_path / name, text, gz=name.endswith(".gz"))
    with pytest.raises(DataFormatError, match=problem) as info:
        read_raw(tmp_path, fmt)
    err = info.value
    assert isinstance(err, ValueError)
    assert Path(err.path).name == file_name or (file_name == "" and Path(err.path) == tmp_path)
    assert err.line == line
    if line is not None:
        assert f"line {line}" in str(err)


def test_missing_folder(tmp_path):
    with pytest.raises(DataFormatError, match="missing dataset folder"):
        read_raw(tmp_path / "nope")
