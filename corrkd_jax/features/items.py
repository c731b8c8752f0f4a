"""Item inputs of a view: texts (first non-empty field) or image files, plus their checksum."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from corrkd_jax.data import ItemTable, load_dataset


def load_items(root: str, *, format: str = "auto", min_core: int = 0) -> ItemTable:
    """The item table of the dataset at `root` (or "builtin:synthetic"), ids as in training."""
    return load_dataset(root, format=format, min_core=min_core).items


def view_texts(items: ItemTable, fields: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Per item row the first non-empty (after strip) of `fields`.

    -> (texts [N + 1] with "" where no field has text and at row 0,
        source int [N + 1]: index into `fields` of the field used, -1 when none).
    Raises ValueError naming the field when the table has no such field.
    """
    if not fields:
        raise ValueError("a text view needs at least one field")
    unknown = [f for f in fields if f not in items.fields]
    if unknown:
        raise ValueError(f"item table has no field(s) {unknown}; available: {sorted(items.fields)}")
    size = items.num_items + 1
    texts = [""] * size
    source = np.full(size, -1, dtype=np.int64)
    for k, name in enumerate(fields):
        column = items.fields[name]
        if len(column) != size:
            raise ValueError(
                f"item field {name!r} has {len(column)} rows, expected num_items + 1 = {size}"
            )
        for row in range(1, size):
            if source[row] < 0:
                text = str(column[row] or "").strip()
                if text:
                    texts[row], source[row] = text, k
    return texts, source


def text_checksum(texts: Sequence[str]) -> str:
    """sha256 of the texts in row order (row separators included, so shifts change it)."""
    digest = hashlib.sha256()
    digest.update(str(len(texts)).encode())
    for text in texts:
        digest.update(b"\x1e" + text.encode("utf-8"))
    return "sha256:" + digest.hexdigest()


def file_checksum(paths: Sequence[str | None]) -> str:
    """sha256 over (row, file content) of the files per row (None = no file)."""
    digest = hashlib.sha256()
    digest.update(str(len(paths)).encode())
    for row, path in enumerate(paths):
        digest.update(f"\x1e{row}:".encode())
        if path is not None:
            try:
                with open(path, "rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
            except OSError as err:  # unreadable files are reported by the encoder
                digest.update(f"unreadable:{type(err).__name__}".encode())
    return "sha256:" + digest.hexdigest()
