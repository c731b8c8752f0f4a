"""Text views: tokenise, sort by length into buckets, run a frozen Flax encoder, pool."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from corrkd_jax.features.encoders import Encoder, ensure_encoder
from corrkd_jax.features.pooling import TEXT_POOLINGS, l2_normalize, pool_text
from corrkd_jax.features.sharding import ShardedForward, global_batch_size, local_mesh, run_batches

DEFAULT_LENGTH_BUCKETS = (16, 32, 64, 128)


def bucket_edges(length_buckets: Sequence[int], max_length: int) -> tuple[int, ...]:
    """Sorted padded lengths, capped at `max_length`, always ending with `max_length`."""
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    edges = {min(int(b), max_length) for b in length_buckets if int(b) > 0}
    return tuple(sorted(edges | {max_length}))


def tokenize(texts: Sequence[str], tokenizer, max_length: int) -> list[np.ndarray]:
    """texts [n] -> n int32 token-id arrays (special tokens added, truncated to max_length)."""
    encoded = tokenizer(
        list(texts), truncation=True, max_length=max_length, add_special_tokens=True
    )
    return [np.asarray(ids, dtype=np.int32) for ids in encoded["input_ids"]]


def bucketed_batches(
    token_ids: Sequence[np.ndarray], edges: Sequence[int], batch_size: int, pad_id: int
) -> Iterator[tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]]:
    """Yield (rows int [b], (input_ids int32 [B, E], attention_mask int32 [B, E])).

    Texts are sorted by token length and padded on the right to the smallest edge E that fits,
    so the jitted forward sees one shape per bucket. The last batch of a bucket is padded to
    B rows; padded rows get one unmasked pad token (a fully masked row is degenerate for some
    attention implementations) and are dropped by the caller.
    """
    lengths = np.fromiter((len(t) for t in token_ids), dtype=np.int64, count=len(token_ids))
    if lengths.size and lengths.max() > edges[-1]:
        raise ValueError(f"token length {lengths.max()} exceeds the largest bucket {edges[-1]}")
    order = np.argsort(lengths, kind="stable")
    bucket_of = np.searchsorted(np.asarray(edges), lengths[order], side="left")
    for b, edge in enumerate(edges):
        rows = order[bucket_of == b]
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            ids = np.full((batch_size, edge), pad_id, dtype=np.int32)
            mask = np.zeros((batch_size, edge), dtype=np.int32)
            mask[len(chunk) :, 0] = 1
            for i, row in enumerate(chunk):
                n = lengths[row]
                ids[i, :n] = token_ids[row]
                mask[i, :n] = 1
            yield chunk, (ids, mask)


def _text_forward(encoder: Encoder, pooling: str, normalize: bool):
    model, causal = encoder.model, encoder.causal

    def forward(params, input_ids: jax.Array, attention_mask: jax.Array) -> jax.Array:
        hidden = model(
            input_ids=input_ids, attention_mask=attention_mask, params=params
        ).last_hidden_state
        pooled = pool_text(hidden.astype(jnp.float32), attention_mask, pooling, causal=causal)
        return l2_normalize(pooled) if normalize else pooled

    return forward


def encode_texts(
    texts: Sequence[str],
    encoder: str | Encoder,
    *,
    pooling: str = "mean",
    normalize: bool = False,
    max_length: int = 128,
    batch_size: int = 64,
    length_buckets: Sequence[int] = DEFAULT_LENGTH_BUCKETS,
    dtype: str = "float32",
    mesh: jax.sharding.Mesh | None = None,
    progress: bool = True,
    desc: str = "text",
) -> np.ndarray:
    """Embed texts [n] with a frozen HF Flax text encoder -> float32 [n, hidden].

    encoder: an `Encoder` from `load_encoder`, or a spec (hub name, folder, "packaged:...").
    pooling: "mean" (masked mean over real tokens) or "cls" (first token; last real token for
    decoder-only models such as OPT). Rows come back in the order of `texts`.
    Texts are truncated to `max_length` tokens, sorted by length and padded to the smallest
    of `length_buckets` that fits (one compile per bucket); batches of `batch_size` (rounded
    up to the device count) are sharded over `mesh` (default: all local devices).
    dtype: forward-pass dtype, used when `encoder` is a spec (a loaded Encoder keeps its own).
    """
    if pooling not in TEXT_POOLINGS:
        raise ValueError(f"text pooling must be one of {TEXT_POOLINGS}, got {pooling!r}")
    encoder = ensure_encoder(encoder, "text", dtype)
    mesh = mesh or local_mesh()
    batch = global_batch_size(batch_size, mesh)
    tokenizer = encoder.preprocessor
    token_ids = tokenize(texts, tokenizer, max_length)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    batches = bucketed_batches(token_ids, bucket_edges(length_buckets, max_length), batch, pad_id)
    key = ("text", pooling, bool(normalize), mesh)
    if key not in encoder.forwards:
        encoder.forwards[key] = ShardedForward(
            _text_forward(encoder, pooling, normalize), encoder.params, mesh
        )
    forward = encoder.forwards[key]
    with encoder.compat():  # traces happen inside: the T5 shim must be active
        return run_batches(forward, batches, len(token_ids), progress=progress, desc=desc)
