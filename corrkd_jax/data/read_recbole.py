"""RecBole atomic files: `<name>.inter` (typed header, e.g. `user_id:token item_id:token
rating:float timestamp:float`) and an optional `<name>.item` (`item_id:token` plus text fields
such as `movie_title:token_seq`); the `:type` suffixes are stripped from the field names.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from corrkd_jax.data.raw import (
    RawData,
    check_items_in_table,
    implicit_table,
    split_header,
    tsv_rows,
)
from corrkd_jax.data.structures import DataFormatError


def _strip_type(column: str) -> str:
    """'movie_title:token_seq' -> 'movie_title'."""
    return column.split(":", 1)[0].strip()


def recbole_inter_file(root: Path) -> Path:
    """The single `<name>.inter` in root."""
    found = sorted(root.glob("*.inter"))
    if not found:
        raise DataFormatError(root, "missing file: no *.inter file")
    if len(found) > 1:
        names = [p.name for p in found]
        raise DataFormatError(root, f"several .inter files, cannot choose: {names}")
    return found[0]


def read_recbole(root: str | Path) -> RawData:
    """Reads RecBole atomic files `<name>.inter` (+ `<name>.item` when present) from `root`."""
    root = Path(root)
    inter = recbole_inter_file(root)
    header_line, columns, lines = split_header(inter)
    names = [_strip_type(c) for c in columns]
    for required in ("user_id", "item_id"):
        if required not in names:
            raise DataFormatError(
                inter, f"header has no {required!r} column: {columns}", header_line
            )
    u_col, i_col = names.index("user_id"), names.index("item_id")
    t_col = names.index("timestamp") if "timestamp" in names else None
    users: list[str] = []
    items: list[str] = []
    times: list[float] = []
    numbers: list[int] = []
    for number, row in tsv_rows(inter, len(columns), lines):
        user, item = row[u_col].strip(), row[i_col].strip()
        if not user or not item:
            raise DataFormatError(inter, "empty user_id or item_id", number)
        if t_col is not None:
            try:
                stamp = float(row[t_col])
            except ValueError:
                raise DataFormatError(
                    inter, f"non-numeric timestamp {row[t_col]!r}", number
                ) from None
            if not math.isfinite(stamp):  # nan would sort anywhere, inf after everything
                raise DataFormatError(inter, f"timestamp {row[t_col]!r} is not finite", number)
            times.append(stamp)
        users.append(user)
        items.append(item)
        numbers.append(number)
    if not users:
        raise DataFormatError(inter, "empty file (header but no interactions)")
    item_arr = np.asarray(items, dtype=object)
    files = [str(inter)]

    item_path = inter.with_suffix(".item")
    if item_path.is_file():
        keys, external_ids, fields = _read_recbole_items(item_path)
        check_items_in_table(item_arr, np.asarray(numbers), keys, inter, item_path)
        files.append(str(item_path))
    else:
        keys, external_ids, fields = implicit_table(item_arr)
    return RawData(
        name=inter.stem,
        users=np.asarray(users, dtype=object),
        items=item_arr,
        timestamps=np.asarray(times, dtype=np.float64) if t_col is not None else None,
        item_keys=keys,
        external_ids=external_ids,
        fields=fields,
        files=tuple(files),
    )


def _read_recbole_items(path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """<name>.item -> (str keys [M] in file order, external ids [M], fields [M])."""
    header_line, columns, lines = split_header(path)
    names = [_strip_type(c) for c in columns]
    if "item_id" not in names:
        raise DataFormatError(path, f"header has no 'item_id' column: {columns}", header_line)
    key_col = names.index("item_id")
    keys: list[str] = []
    rows: list[list[str]] = []
    seen: dict[str, int] = {}
    for number, row in tsv_rows(path, len(columns), lines):
        key = row[key_col].strip()
        if not key:
            raise DataFormatError(path, "empty item_id", number)
        if key in seen:
            raise DataFormatError(
                path, f"duplicated item row for id {key!r} (first on line {seen[key]})", number
            )
        seen[key] = number
        keys.append(key)
        rows.append(row)
    if not keys:
        raise DataFormatError(path, "empty file (header but no item rows)")
    fields = {
        name: np.asarray([r[j] for r in rows], dtype=object)
        for j, name in enumerate(names)
        if j != key_col
    }
    key_arr = np.asarray(keys, dtype=object)
    return key_arr, key_arr.copy(), fields
