"""Readers for the supported on-disk formats -> `RawData` (interactions + item table, unprocessed).

Formats (`format=` names), one module each:
- `s3rec` (`read_s3rec.py`): `sequences.txt` + optional `items.tsv`;
- `recbole` (`read_recbole.py`): `<name>.inter` + optional `<name>.item`;
- `amazon_raw` (`read_amazon.py`): `reviews_<Category>_5.json.gz` + optional
  `meta_<Category>.json.gz`.

Every problem in the input raises `DataFormatError` naming the file, the line and the problem.
"""

from __future__ import annotations

from pathlib import Path

from corrkd_jax.data.raw import RawData
from corrkd_jax.data.read_amazon import REVIEW_PATTERNS, amazon_files, read_amazon_raw
from corrkd_jax.data.read_recbole import read_recbole, recbole_inter_file
from corrkd_jax.data.read_s3rec import read_s3rec
from corrkd_jax.data.structures import DataFormatError

FORMATS = ("s3rec", "recbole", "amazon_raw")


def detect_format(root: str | Path) -> str:
    """The format of the files in `root` (one of FORMATS), or DataFormatError."""
    root = Path(root)
    if not root.is_dir():
        raise DataFormatError(root, "missing dataset folder")
    present = []
    if (root / "sequences.txt").is_file():
        present.append("s3rec")
    if any(root.glob("*.inter")):
        present.append("recbole")
    if any(p for pattern in REVIEW_PATTERNS for p in root.glob(pattern)):
        present.append("amazon_raw")
    if not present:
        raise DataFormatError(
            root,
            "no supported dataset files (expected sequences.txt, <name>.inter or "
            "reviews_<Category>_5.json.gz)",
        )
    if len(present) > 1:
        raise DataFormatError(root, f"files of several formats {present}: pass format=")
    return present[0]


def input_files(root: str | Path, format: str) -> list[Path]:
    """The files `read_raw(root, format)` would read (those that exist), without parsing."""
    root = Path(root)
    if format == "s3rec":
        candidates = [root / "sequences.txt", root / "items.tsv"]
    elif format == "recbole":
        inter = recbole_inter_file(root)
        candidates = [inter, inter.with_suffix(".item")]
    elif format == "amazon_raw":
        reviews, meta = amazon_files(root)
        candidates = [reviews] + ([meta] if meta is not None else [])
    else:
        raise ValueError(f"unknown format {format!r}; expected one of {FORMATS}")
    return [p for p in candidates if p.is_file()]


_READERS = {"s3rec": read_s3rec, "recbole": read_recbole, "amazon_raw": read_amazon_raw}


def read_raw(root: str | Path, format: str = "auto") -> RawData:
    """Reads a dataset folder of any supported format ("auto" detects it by the files)."""
    if format == "auto":
        format = detect_format(root)
    if format not in _READERS:
        raise ValueError(f"unknown format {format!r}; expected 'auto' or one of {FORMATS}")
    if not Path(root).is_dir():
        raise DataFormatError(root, "missing dataset folder")
    return _READERS[format](root)


__all__ = [
    "FORMATS",
    "RawData",
    "detect_format",
    "input_files",
    "read_amazon_raw",
    "read_raw",
    "read_recbole",
    "read_s3rec",
]
