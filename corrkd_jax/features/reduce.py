"""Reduction of raw features d_raw -> d: the released autoencoder (Flax/optax) or PCA.

Row convention: x [N + 1, d_raw] with row 0 = padding. Rows that are entirely zero (row 0 and
items without content) are excluded from fitting and stay zero in the output.
"""

from __future__ import annotations

import math
import time
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

REDUCE_METHODS = ("autoencoder", "pca", "none")


class AutoEncoder(nn.Module):
    """Released KDSR reducer: Dense(dim) + sigmoid encoder, linear Dense(out_dim) decoder."""

    dim: int
    out_dim: int

    def setup(self) -> None:
        self.encoder = nn.Dense(self.dim)
        self.decoder = nn.Dense(self.out_dim)

    def encode(self, x: jax.Array) -> jax.Array:
        """x [B, out_dim] -> codes in (0, 1) [B, dim]."""
        return nn.sigmoid(self.encoder(x))

    def __call__(self, x: jax.Array) -> jax.Array:
        """x [B, out_dim] -> reconstruction [B, out_dim]."""
        return self.decoder(self.encode(x))


def content_rows(x: np.ndarray) -> np.ndarray:
    """Indices of the rows of x [N + 1, d] that carry content (not all zero): int [n]."""
    return np.flatnonzero(np.any(x != 0, axis=1))


def cosine_spread(x: np.ndarray, *, num_pairs: int = 20_000, seed: int = 0) -> dict[str, float]:
    """Mean/std of the cosine of random pairs of distinct content rows of x [N + 1, d].

    A near-constant cosine (tiny std) means a cos teacher carries little signal.
    """
    rows = content_rows(x)
    if len(rows) < 2:
        return {"mean": float("nan"), "std": float("nan"), "num_pairs": 0}
    rng = np.random.default_rng(seed)
    a = rng.choice(rows, num_pairs)
    b = rng.choice(rows, num_pairs)
    keep = a != b
    u, v = x[a[keep]].astype(np.float64), x[b[keep]].astype(np.float64)
    cos = np.sum(u * v, 1) / (np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1))
    return {"mean": float(cos.mean()), "std": float(cos.std()), "num_pairs": int(keep.sum())}


def _error_stats(x: np.ndarray, reconstruction: np.ndarray) -> dict[str, float]:
    """MSE per element and relative error = SSE / total sum of squares about the mean."""
    residual = (x - reconstruction).astype(np.float64)
    centred = (x - x.mean(0)).astype(np.float64)
    sse = float(np.sum(residual**2))
    return {"mse": sse / x.size, "relative_error": sse / max(float(np.sum(centred**2)), 1e-30)}


def fit_pca(x: np.ndarray, dim: int) -> tuple[np.ndarray, dict[str, Any]]:
    """PCA by numpy SVD on content rows of x [n, d_raw] -> (codes float32 [n, dim], stats)."""
    if dim > min(x.shape):
        raise ValueError(f"PCA dim {dim} exceeds min(rows, d_raw) = {min(x.shape)}")
    mean = x.mean(0, dtype=np.float64)
    _, singular, vt = np.linalg.svd(x - mean, full_matrices=False)
    components = vt[:dim]
    codes = (x - mean) @ components.T
    stats = _error_stats(x, codes @ components + mean)
    stats["explained_variance"] = float(np.sum(singular[:dim] ** 2) / np.sum(singular**2))
    return codes.astype(np.float32), stats


def fit_autoencoder(
    x: np.ndarray,
    dim: int,
    *,
    epochs: int = 300,
    lr: float = 1e-3,
    batch_size: int = 256,
    seed: int = 0,
    tol: float = 1e-4,
    patience: int = 20,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Train the autoencoder on x [n, d_raw] (MSE, Adam) -> (codes float32 [n, dim], stats).

    One jitted call per epoch (lax.scan over shuffled mini-batches; the last one wraps around).
    Stops early when the epoch loss has not improved by a relative `tol` for `patience` epochs.
    """
    n, d_raw = x.shape
    model = AutoEncoder(dim=dim, out_dim=d_raw)
    init_key, shuffle_key = jax.random.split(jax.random.key(seed))
    params = model.init(init_key, jnp.zeros((1, d_raw), jnp.float32))["params"]
    optimizer = optax.adam(lr)
    opt_state = optimizer.init(params)
    data = jnp.asarray(x, jnp.float32)
    batch = min(batch_size, n)
    steps = math.ceil(n / batch)

    def loss_fn(p, xb):
        return jnp.mean(jnp.square(model.apply({"params": p}, xb) - xb))

    @jax.jit
    def run_epoch(p, state, key):
        order = jax.random.permutation(key, n)
        index = order[jnp.arange(steps * batch) % n].reshape(steps, batch)

        def step(carry, idx):
            p, state = carry
            loss, grads = jax.value_and_grad(loss_fn)(p, data[idx])
            updates, state = optimizer.update(grads, state, p)
            return (optax.apply_updates(p, updates), state), loss

        (p, state), losses = jax.lax.scan(step, (p, state), index)
        return p, state, jnp.mean(losses)

    best, stale, history = math.inf, 0, []
    for epoch in range(epochs):
        params, opt_state, loss = run_epoch(
            params, opt_state, jax.random.fold_in(shuffle_key, epoch)
        )
        history.append(float(loss))
        if history[-1] < best * (1.0 - tol):
            best, stale = history[-1], 0
        else:
            stale += 1
            if stale >= patience:
                break
    apply = jax.jit(lambda p, v: model.apply({"params": p}, v, method=AutoEncoder.encode))
    codes = np.asarray(apply(params, data), np.float32)
    reconstruction = np.asarray(jax.jit(model.apply)({"params": params}, data), np.float32)
    stats = _error_stats(x, reconstruction)
    stats.update(
        epochs_run=len(history), final_train_loss=history[-1], converged=len(history) < epochs
    )
    return codes, stats


def reduce_features(
    x: np.ndarray,
    method: str = "autoencoder",
    dim: int = 128,
    *,
    seed: int = 0,
    **autoencoder_options: Any,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Reduce x float [N + 1, d_raw] -> (float32 [N + 1, d], stats).

    method: "autoencoder" (sigmoid codes, all positive; `autoencoder_options` are the keyword
    arguments of `fit_autoencoder`: epochs, lr, batch_size, tol, patience), "pca"
    (centred projections) or "none" (d = d_raw, a copy). seed: the autoencoder's init and
    shuffling, and the pairs of the cosine-spread statistics. Row alignment is kept; row 0 and all-zero rows stay zero and are not
    fitted. stats: method, dim, reconstruction mse / relative_error, seconds, cosine spread of
    raw and reduced features on random pairs, and method-specific entries.
    """
    if method not in REDUCE_METHODS:
        raise ValueError(f"reduce.method must be one of {REDUCE_METHODS}, got {method!r}")
    x = np.asarray(x, np.float32)
    if x.ndim != 2:
        raise ValueError(f"features must be 2-D [N + 1, d_raw], got shape {x.shape}")
    if np.any(x[0] != 0):
        raise ValueError("row 0 (padding) of the features must be all zeros")
    start = time.perf_counter()
    rows = content_rows(x)
    if method == "none":
        out, stats = x.copy(), {"mse": 0.0, "relative_error": 0.0}
    else:
        if len(rows) < 2:
            raise ValueError(f"need at least 2 rows with content to fit {method}, got {len(rows)}")
        if method == "pca":
            codes, stats = fit_pca(x[rows], dim)
        else:
            codes, stats = fit_autoencoder(x[rows], dim, seed=seed, **autoencoder_options)
        out = np.zeros((x.shape[0], dim), np.float32)
        out[rows] = codes
    stats.update(
        method=method,
        dim=int(out.shape[1]),
        fitted_rows=int(len(rows)),
        seconds=time.perf_counter() - start,
        cosine_raw=cosine_spread(x, seed=seed),
        cosine_reduced=cosine_spread(out, seed=seed),
    )
    return out, stats
