"""`RawData` (what every reader returns) and the line/field helpers the readers share.

Every problem in the input raises `DataFormatError` naming the file, the line and the problem.
"""

from __future__ import annotations

import dataclasses
import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

from corrkd_jax.data.structures import DataFormatError


@dataclasses.dataclass(frozen=True)
class RawData:
    """Interactions and item table exactly as read, before filtering and id remapping."""

    name: str
    users: np.ndarray  # str object [E]: external user id of each interaction, file order
    items: np.ndarray  # [E]: item key of each interaction (int64 for s3rec, str otherwise)
    timestamps: np.ndarray | None  # float64 [E]; None when the file order is the time order
    item_keys: np.ndarray  # [M]: keys of the item table rows (same kind as `items`), id order
    external_ids: np.ndarray  # str object [M]: shown id of each row (the ASIN when known)
    fields: dict[str, np.ndarray]  # field name -> str object [M] ("" when missing)
    files: tuple[str, ...]  # the input files that were read


def open_text(path: Path) -> IO[str]:
    """Opens a text file (gzip when the name ends in .gz) as UTF-8; a leading byte-order
    mark (files saved by some editors and spreadsheets) is dropped."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")


def nonblank_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yields (1-based line number, line without its line break), skipping blank lines.

    Raises DataFormatError when the file is missing, undecodable or has no non-blank line.
    """
    if not path.is_file():
        raise DataFormatError(path, "missing file")
    seen = False
    try:
        with open_text(path) as f:
            for number, line in enumerate(f, 1):
                line = line.rstrip("\r\n")
                if line.strip():
                    seen = True
                    yield number, line
    except (UnicodeDecodeError, OSError, EOFError) as e:
        raise DataFormatError(path, f"cannot read file: {e}") from e
    if not seen:
        raise DataFormatError(path, "empty file")


def parse_int(token: str, path: Path, line: int, what: str) -> int:
    """A positive integer id, or a DataFormatError naming the token."""
    try:
        value = int(token)
    except ValueError:
        raise DataFormatError(path, f"non-integer {what} {token!r}", line) from None
    if value < 1:
        raise DataFormatError(path, f"{what} must be >= 1, got {value}", line)
    return value


def check_items_in_table(
    items: np.ndarray, lines: np.ndarray, item_keys: np.ndarray, path: Path, table: Path
) -> None:
    """Raises on the first interaction whose item has no row in the item table."""
    # A set lookup: np.isin on object arrays compares element by element (quadratic).
    known = set(item_keys.tolist())
    missing = np.fromiter((k not in known for k in items.tolist()), bool, len(items))
    if missing.any():
        first = int(np.argmax(missing))
        item = items[first].item() if isinstance(items[first], np.generic) else items[first]
        raise DataFormatError(
            path, f"item id {item!r} has no row in {table.name}", int(lines[first])
        )


def implicit_table(items: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Item table without fields when no item file exists: integer keys sorted, others in
    order of first appearance (so numeric ids keep their order)."""
    if items.dtype.kind in "iu":
        keys = np.unique(items)
    else:
        _, first = np.unique(items, return_index=True)
        keys = items[np.sort(first)]
    return keys, np.array([str(k) for k in keys], dtype=object), {}


def split_header(path: Path) -> tuple[int, list[str], Iterator[tuple[int, str]]]:
    """Reads a tab-separated header: (its line number, column names, the remaining lines)."""
    lines = nonblank_lines(path)
    number, header = next(lines)
    columns = header.split("\t")
    if any(not c.strip() for c in columns):
        raise DataFormatError(path, f"empty column name in header {header!r}", number)
    return number, columns, lines


def tsv_rows(
    path: Path, width: int, lines: Iterator[tuple[int, str]]
) -> Iterator[tuple[int, list[str]]]:
    """Yields (line number, fields) and checks each row has exactly `width` fields."""
    for number, line in lines:
        row = line.split("\t")
        if len(row) != width:
            raise DataFormatError(
                path,
                f"malformed line: expected {width} tab-separated fields, found {len(row)}",
                number,
            )
        yield number, row
