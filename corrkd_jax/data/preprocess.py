"""RawData -> InteractionData: iterative k-core, chronological order, id remapping (0 = padding).

Item ids: the kept items are numbered 1..N in item-table order (S3-Rec tables are sorted by
their integer id, other tables keep their file order), so ids shift when the item table has
rows no interaction uses or when the k-core drops items. The id each item has in the input
files is kept in `ItemTable.source_ids`: that is what users give and get back.
Users keep their order of first appearance in the interaction file.
"""

from __future__ import annotations

import numpy as np

from corrkd_jax.data.raw import RawData
from corrkd_jax.data.structures import InteractionData, ItemTable


def factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes in order of first appearance: values [E] -> (codes int64 [E], uniques [U])."""
    uniques, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    # np.unique sorts; renumber so that code order = order of first appearance.
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inverse.reshape(-1)], uniques[order]


def k_core_mask(users: np.ndarray, items: np.ndarray, min_core: int) -> np.ndarray:
    """Iterative k-core: bool [E], True for interactions kept once every remaining user and
    item has >= min_core interactions (repeated until nothing changes; 0 or 1 = keep all).

    users, items: int [E] codes (0-based).
    """
    keep = np.ones(len(users), dtype=bool)
    if min_core <= 1:
        return keep
    while True:
        user_counts = np.bincount(users[keep], minlength=users.max() + 1 if len(users) else 0)
        item_counts = np.bincount(items[keep], minlength=items.max() + 1 if len(items) else 0)
        new_keep = keep & (user_counts[users] >= min_core) & (item_counts[items] >= min_core)
        if new_keep.sum() == keep.sum():
            return new_keep
        keep = new_keep


def chronological_order(users: np.ndarray, timestamps: np.ndarray | None) -> np.ndarray:
    """Permutation [E] that groups interactions by user code and orders each user's by time,
    ties broken by file order (a stable sort). timestamps None = file order is time order."""
    position = np.arange(len(users))
    if timestamps is None:
        return np.lexsort((position, users))
    return np.lexsort((position, timestamps, users))


def preprocess(raw: RawData, *, min_core: int = 0) -> InteractionData:
    """Filters, orders and renumbers `raw`. See the module docstring for the id rules."""
    if min_core < 0:
        raise ValueError(f"min_core must be >= 0, got {min_core}")
    user_codes, user_ids = factorize(raw.users)
    # Item code = row of the item table (readers guarantee every item has a row).
    row_of = {key: row for row, key in enumerate(raw.item_keys.tolist())}
    item_rows = np.fromiter((row_of[k] for k in raw.items.tolist()), np.int64, len(raw.items))

    keep = k_core_mask(user_codes, item_rows, min_core)
    if not keep.any():
        raise ValueError(f"{raw.name}: no interaction survives the {min_core}-core filter")
    user_codes, item_rows = user_codes[keep], item_rows[keep]
    timestamps = raw.timestamps[keep] if raw.timestamps is not None else None

    order = chronological_order(user_codes, timestamps)
    user_codes, item_rows = user_codes[order], item_rows[order]

    kept_rows = np.unique(item_rows)  # sorted = item-table order
    new_ids = (np.searchsorted(kept_rows, item_rows) + 1).astype(np.int32)
    kept_users, counts = np.unique(user_codes, return_counts=True)
    sequences = np.split(new_ids, np.cumsum(counts)[:-1])

    def with_padding(column: np.ndarray) -> np.ndarray:
        out = np.empty(len(kept_rows) + 1, dtype=object)
        out[0] = ""
        out[1:] = column[kept_rows]
        return out

    table = ItemTable(
        external_ids=with_padding(raw.external_ids),
        fields={name: with_padding(col) for name, col in raw.fields.items()},
        num_items=len(kept_rows),
        source_ids=with_padding(np.asarray([str(k) for k in raw.item_keys.tolist()], object)),
    )
    return InteractionData(
        name=raw.name,
        sequences=list(sequences),
        user_ids=user_ids[kept_users].astype(object),
        items=table,
    )
