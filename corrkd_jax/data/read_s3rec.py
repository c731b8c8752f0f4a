"""S3-Rec sequence format: `sequences.txt` (`user item item ...`, integer ids, items in time
order) and an optional `items.tsv` (header row; first column = item id, every other column a
text field; the `asin` column, when present, is the external id).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from corrkd_jax.data.raw import (
    RawData,
    check_items_in_table,
    implicit_table,
    nonblank_lines,
    parse_int,
    split_header,
    tsv_rows,
)
from corrkd_jax.data.structures import DataFormatError


def read_s3rec(root: str | Path) -> RawData:
    """Reads `sequences.txt` (+ `items.tsv` when present) from `root`."""
    root = Path(root)
    seq_path = root / "sequences.txt"
    users: list[str] = []
    items: list[int] = []
    line_numbers: list[int] = []
    first_line: dict[int, int] = {}
    for number, line in nonblank_lines(seq_path):
        tokens = line.split()
        if len(tokens) < 2:
            raise DataFormatError(
                seq_path, "malformed line: expected 'user item [item ...]'", number
            )
        user = parse_int(tokens[0], seq_path, number, "user id")
        if user in first_line:
            raise DataFormatError(
                seq_path, f"user {user} already has a sequence on line {first_line[user]}", number
            )
        first_line[user] = number
        row = [parse_int(t, seq_path, number, "item id") for t in tokens[1:]]
        users.extend([str(user)] * len(row))
        items.extend(row)
        line_numbers.extend([number] * len(row))
    item_arr = np.asarray(items, dtype=np.int64)
    files = [str(seq_path)]

    table_path = root / "items.tsv"
    if table_path.is_file():
        keys, external_ids, fields = _read_s3rec_table(table_path)
        check_items_in_table(item_arr, np.asarray(line_numbers), keys, seq_path, table_path)
        files.append(str(table_path))
    else:
        keys, external_ids, fields = implicit_table(item_arr)
    return RawData(
        name=root.resolve().name,
        users=np.asarray(users, dtype=object),
        items=item_arr,
        timestamps=None,
        item_keys=keys,
        external_ids=external_ids,
        fields=fields,
        files=tuple(files),
    )


def _read_s3rec_table(path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """items.tsv -> (int64 keys [M] sorted, external ids [M], fields [M]); first column = id."""
    _, columns, lines = split_header(path)
    ids: list[int] = []
    rows: list[list[str]] = []
    seen: dict[int, int] = {}
    for number, row in tsv_rows(path, len(columns), lines):
        item = parse_int(row[0], path, number, "item id")
        if item in seen:
            raise DataFormatError(
                path, f"duplicated item row for id {item} (first on line {seen[item]})", number
            )
        seen[item] = number
        ids.append(item)
        rows.append(row[1:])
    if not ids:
        raise DataFormatError(path, "empty file (header but no item rows)")
    order = np.argsort(np.asarray(ids), kind="stable")
    keys = np.asarray(ids, dtype=np.int64)[order]
    fields = {
        name: np.asarray([rows[i][j] for i in order], dtype=object)
        for j, name in enumerate(columns[1:])
    }
    if "asin" in fields:
        external_ids = fields["asin"].copy()
    else:
        external_ids = np.asarray([str(k) for k in keys], dtype=object)
    return keys, external_ids, fields
