"""Scoped compatibility shim: Flax T5 of transformers 4.57.x on jax >= 0.10.

Flax T5 (and LongT5, and mT5, which reuses the T5 modules) computes its relative-position
buckets with `jnp.clip(x, a_max=...)`. JAX removed the `a_min`/`a_max` keywords (they are now
`min`/`max`), so model construction and every forward trace raise `TypeError`. We neither patch
JAX nor edit transformers: during the `flax_t5_compat()` block the *module-level* `jnp` name of
the affected transformers modules points at a thin proxy of `jax.numpy` whose `clip` also
accepts the old keywords; on exit the original reference is restored. Only tracing needs the
shim, so keep model loading and the first call of each jitted shape inside the block.

Caveat: the swap is process-wide while the block is active (not thread-local); the proxy is
numerically identical to the intended call, so another thread that happens to trace T5 at the
same time gets correct results too.
"""

from __future__ import annotations

import contextlib
import importlib
import types
from collections.abc import Iterator
from typing import Any

import jax.numpy as jnp

# transformers modules whose code calls jnp.clip(..., a_min=/a_max=).
_AFFECTED_MODULES = (
    "transformers.models.t5.modeling_flax_t5",
    "transformers.models.longt5.modeling_flax_longt5",
)


class _ClipKeywordNumpy(types.ModuleType):
    """`jax.numpy`, except that `clip` also accepts the removed `a_min`/`a_max` keywords."""

    def __init__(self) -> None:
        super().__init__("jax.numpy")

    def __getattr__(self, name: str) -> Any:
        return getattr(jnp, name)

    @staticmethod
    def clip(
        x: Any,
        min: Any = None,
        max: Any = None,
        *,
        a_min: Any = None,  # noqa: A002
        a_max: Any = None,
        **kwargs: Any,
    ) -> Any:
        """jnp.clip with the pre-0.10 keyword names mapped onto the current ones."""
        lo = min if a_min is None else a_min
        hi = max if a_max is None else a_max
        return jnp.clip(x, lo, hi, **kwargs)


@contextlib.contextmanager
def flax_t5_compat() -> Iterator[None]:
    """Within the block, Flax T5/LongT5/mT5 of transformers 4.57.x trace on current JAX.

    Nesting is safe (each level restores what it saw); JAX itself is never modified.
    """
    proxy = _ClipKeywordNumpy()
    saved: list[tuple[types.ModuleType, Any]] = []
    try:
        for name in _AFFECTED_MODULES:
            module = importlib.import_module(name)
            saved.append((module, module.jnp))
            module.jnp = proxy
        yield
    finally:
        for module, original in reversed(saved):
            module.jnp = original
