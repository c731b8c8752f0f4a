"""Evaluation protocols: InteractionData -> Split of (history -> target) Examples.

A case with target at position p of a user's sequence s (0-based) has history s[:p] (always
non-empty, p >= 1), truncated to its last max_len items and right-aligned.

- `leave_one_out` (the SR standard): test target = last item, validation target = second-last,
  training targets = every earlier position p >= 1. A user with n items gives n - 3 training
  cases (n >= 4), one validation case (n >= 3) and one test case (n >= 2).
- `ratio` (the released KDSR code): the last t = floor(test_fraction * n) items are test targets,
  each with its full preceding history (earlier test items included). Of the remaining
  m = n - t items, the last v are validation targets (full preceding histories) and positions
  1..m-v-1 are training targets, where v = max(1, floor(valid_fraction * m)) capped at m - 2 so
  that at least one training case remains, and v = 0 when m < 3. With the default
  valid_fraction = 0.1 this is "the last training target of each user", for users with fewer
  than 20 items in the training part.
"""

from __future__ import annotations

import numpy as np

from corrkd_jax.data.structures import Examples, InteractionData, Split

PROTOCOLS = ("leave_one_out", "ratio")
TRAIN_ON = ("prefixes", "sequences")


def concat_ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Concatenation of arange(starts[i], stops[i]) over i (empty when stop <= start), int64."""
    lengths = np.maximum(stops - starts, 0)
    offsets = np.cumsum(lengths) - lengths
    return np.arange(lengths.sum()) - np.repeat(offsets - starts, lengths)


def _examples(
    flat: np.ndarray, user_starts: np.ndarray, lo: np.ndarray, hi: np.ndarray, max_len: int
) -> Examples:
    """Cases with targets at positions lo[u]..hi[u]-1 of each user u.

    flat: int32 [E] all sequences concatenated; user_starts: int64 [U] offset of each user.
    """
    users = np.repeat(np.arange(len(lo)), np.maximum(hi - lo, 0)).astype(np.int32)
    target_at = concat_ranges(user_starts + lo, user_starts + hi)  # flat index of each target
    # History = the max_len flat positions before the target that belong to the same user.
    window = target_at[:, None] + np.arange(-max_len, 0)[None, :]
    inside = window >= user_starts[users][:, None]
    histories = np.where(inside, flat[np.maximum(window, 0)], 0).astype(np.int32)
    return Examples(histories=histories, targets=flat[target_at].astype(np.int32), users=users)


def _sequence_windows(
    flat: np.ndarray, user_starts: np.ndarray, lo: np.ndarray, hi: np.ndarray, max_len: int
) -> Examples:
    """Whole-sequence cases: per user, its targets at positions lo[u]..hi[u]-1 in windows of
    at most max_len targets counted from the end (module docstring, `sequences`)."""
    counts = np.maximum(hi - lo, 0)
    windows = -(-counts // max_len)  # per user
    users = np.repeat(np.arange(len(lo)), windows).astype(np.int32)
    # Window w of a user (w = 0 the latest) holds target positions [stop - max_len, stop),
    # clipped at lo, with stop = hi - w * max_len.
    w = np.arange(len(users)) - np.repeat(np.cumsum(windows) - windows, windows)
    stop = hi[users] - w * max_len
    offsets = np.arange(-max_len, 0)[None, :]
    position = stop[:, None] + offsets  # target position of each column, right-aligned
    real = position >= lo[users][:, None]
    at = user_starts[users][:, None] + np.maximum(position, 0)
    targets = np.where(real, flat[at], 0).astype(np.int32)
    inputs = np.where(real, flat[np.maximum(at - 1, 0)], 0).astype(np.int32)
    return Examples(histories=inputs, targets=targets, users=users)


def make_split(
    data: InteractionData,
    protocol: str = "leave_one_out",
    *,
    max_len: int = 50,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.2,
    train_on: str = "prefixes",
) -> Split:
    """Builds the train/valid/test Examples of `protocol` (see the module docstring).

    valid_fraction and test_fraction are used by `ratio` only; `train_on` chooses the form of
    the training cases (`prefixes` | `sequences`, module docstring).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    if train_on not in TRAIN_ON:
        raise ValueError(f"unknown train_on {train_on!r}; expected one of {TRAIN_ON}")
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    n = np.asarray([len(s) for s in data.sequences], dtype=np.int64)
    user_starts = np.cumsum(n) - n
    flat = (np.concatenate(data.sequences) if len(n) else np.zeros(0)).astype(np.int32)

    if protocol == "leave_one_out":
        test_lo = np.maximum(n - 1, 1)  # needs n >= 2 (a non-empty history)
        valid_lo = np.maximum(n - 2, 1)
        valid_hi = test_lo
        train_hi = valid_lo
    else:
        if not 0.0 <= test_fraction < 1.0 or not 0.0 <= valid_fraction < 1.0:
            raise ValueError("ratio fractions must be in [0, 1)")
        m = n - np.floor(test_fraction * n).astype(np.int64)
        test_lo = np.maximum(m, 1)
        v = np.minimum(np.maximum(1, np.floor(valid_fraction * m).astype(np.int64)), m - 2)
        v = np.where(m >= 3, v, 0)
        valid_lo = m - v
        valid_hi = m
        train_hi = valid_lo
    ones = np.ones_like(n)
    train_cases = _examples if train_on == "prefixes" else _sequence_windows
    return Split(
        protocol=protocol,
        train=train_cases(flat, user_starts, ones, train_hi, max_len),
        valid=_examples(flat, user_starts, valid_lo, valid_hi, max_len),
        test=_examples(flat, user_starts, test_lo, n, max_len),
    )
