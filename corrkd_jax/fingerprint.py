"""Content fingerprints: what a run directory remembers of its dataset.

`dataset_fingerprint(data)` hashes everything a trained model's numbers depend on: every
user's item-id sequence (and user ids), the item ids (source and external) and every item
field, so a dataset whose content changed with the same counts is told apart.
"""

from __future__ import annotations

import hashlib

import numpy as np

from corrkd_jax.data import InteractionData


def _strings(digest: hashlib._Hash, values) -> None:
    digest.update(str(len(values)).encode())
    for value in values:
        digest.update(b"\x1f" + str(value).encode("utf-8"))


def dataset_fingerprint(data: InteractionData) -> str:
    """ "sha256:<hex>" over sequences, user ids, item ids and item fields (order included)."""
    digest = hashlib.sha256()
    lengths = np.asarray([len(s) for s in data.sequences], np.int64)
    digest.update(lengths.tobytes())
    if len(data.sequences):
        digest.update(np.concatenate(data.sequences).astype(np.int32).tobytes())
    _strings(digest, data.user_ids)
    _strings(digest, data.items.external_ids)
    _strings(digest, data.items.source_ids)
    for name in sorted(data.items.fields):
        digest.update(b"\x1d" + name.encode("utf-8"))
        _strings(digest, data.items.fields[name])
    return "sha256:" + digest.hexdigest()
