"""The data layer's value types (see docs/architecture.md) and its one error type."""

from __future__ import annotations

import dataclasses

import numpy as np


class DataFormatError(ValueError):
    """Bad input data: names the file, the line (when there is one) and the problem."""

    def __init__(self, path: str, problem: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


@dataclasses.dataclass(frozen=True)
class ItemTable:
    """Item side information, row i = item id i (row 0 = padding, all fields "")."""

    external_ids: np.ndarray  # object/str [N + 1]: original id or ASIN ("" at row 0)
    fields: dict[str, np.ndarray]  # field name -> object/str array [N + 1] ("" when missing)
    num_items: int  # N
    # object/str [N + 1]: the id each item has in the input files ("" at row 0): the integer
    # of sequences.txt/items.tsv (S3-Rec), item_id (RecBole), the ASIN (Amazon raw). Ids are
    # renumbered 1..N over the items that survive filtering, so these are what users give
    # and get back (`corrkd_jax.recommend`). None = the same as `external_ids`.
    source_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.source_ids is None:
            object.__setattr__(self, "source_ids", self.external_ids)


@dataclasses.dataclass(frozen=True)
class InteractionData:
    """Preprocessed interactions: one chronological item-id sequence per user."""

    name: str  # e.g. "amazon-beauty" or "synthetic"
    sequences: list[np.ndarray]  # per user: int32 item ids 1..N in chronological order
    user_ids: np.ndarray  # external user ids, object/str [num_users]
    items: ItemTable

    @property
    def num_users(self) -> int:
        return len(self.sequences)

    @property
    def num_items(self) -> int:
        return self.items.num_items

    @property
    def num_interactions(self) -> int:
        return int(sum(len(s) for s in self.sequences))


@dataclasses.dataclass(frozen=True)
class Examples:
    """(history -> target) cases. Histories are RIGHT-aligned: the last real item is in the
    last column, padding (0) on the left; truncated to the last max_len items.

    Whole-sequence training cases (`make_split(..., train_on="sequences")`) have one target
    per history column instead: `targets[c, j]` follows `histories[c, :j + 1]` (0 = none)."""

    histories: np.ndarray  # int32 [n, max_len]
    targets: np.ndarray  # int32 [n] item ids 1..N, or [n, max_len] per position (0 = none)
    users: np.ndarray  # int32 [n], user index into InteractionData.sequences

    def __len__(self) -> int:
        return len(self.targets)

    @property
    def lengths(self) -> np.ndarray:
        """int32 [n]: number of real (non-padding) items in each history."""
        return (self.histories > 0).sum(1).astype(np.int32)

    @property
    def num_targets(self) -> int:
        """Next-item targets over all cases (one per case for prefixes)."""
        return int(np.count_nonzero(self.targets))


@dataclasses.dataclass(frozen=True)
class Split:
    """The three example sets of one evaluation protocol."""

    protocol: str  # "leave_one_out" | "ratio"
    train: Examples
    valid: Examples
    test: Examples
