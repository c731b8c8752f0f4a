"""The module tying the ID table, the view tables, a backbone and the KDSR student together.

Parameter tree (names fixed by docs/architecture.md; the optimizer's regexes depend on them):

    item_embedding/embedding       [N + 1, d]   ID table (nn.Embed)
    view_<name>/embedding          [N + 1, d]   student table of view <name>, init = features
    backbone/...                   the backbone (session_graph | sasrec | gru4rec)
    hol_proj_<name>/project_{1,2}  holistic head of view <name> (variants with holistic KD)
    code_mlp_<name>/{hidden,logits}  code head of view <name> (variants with code KD)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from corrkd_jax.models.student import (
    CodeMLP,
    HolisticProjection,
    code_term,
    holistic_term,
    packed_code_term,
    pair_mask,
    signals_for_view,
)

Initializer = Callable[..., jax.Array]


def constant_init(values: np.ndarray) -> Initializer:
    """An initializer that returns `values` (shape and dtype checked), e.g. stage-1 features."""
    values = np.asarray(values, np.float32)

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        del key
        if tuple(shape) != values.shape:
            raise ValueError(f"initial values have shape {values.shape}, expected {tuple(shape)}")
        return jnp.asarray(values, dtype)

    return init


class Recommender(nn.Module):
    """Next-item recommender: tables -> backbone -> scores, plus the KDSR distillation terms."""

    num_items: int  # N; ids 1..N, 0 = padding
    dim: int  # d
    backbone: nn.Module  # called as backbone(id_rows, view_rows, batch, train=...) -> [B, d]
    views: tuple[str, ...] = ()  # view names, in model.views order
    view_inits: tuple[Initializer, ...] = ()  # per view: initializer of its table (features)
    freeze_views: bool = False  # frozen_features: no gradient reaches the view tables
    holistic: bool = False  # train the holistic correlation term
    codes: bool = False  # train the correlation-code term
    corr_kind: str = "cos"  # correlation kind of the student (same as the teacher's)
    tau: float = 1.5  # holistic temperature
    num_codes: int = 50  # K
    pair_chunk: int = 1024  # listed pairs per scan step of the code term (0 = one pass)
    pair_dtype: str = "float32"  # compute dtype of the code MLP (float32 | bfloat16)

    @nn.compact
    def __call__(
        self,
        batch: Mapping[str, jax.Array],
        teacher_signals: Mapping[str, Any] | None = None,
        train: bool = False,
        return_sequence: bool = False,
        all_positions: bool = False,
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Scores every item and computes the unweighted distillation terms.

        Args:
            batch: `items` int32 [B, Lb] (right-aligned), and for the session graph `nodes`,
                `alias` [B, Lb], `adjacency` [B, Lb, Lb] (docs/architecture.md).
            teacher_signals: view -> `TeacherSignals(corr [B, Ln, Ln], codes [B, Ln, Ln])` at
                the nodes `kd_node_items(batch, backbone)`, or None (no KD terms, e.g. eval).
            train: enables dropout (rng stream "dropout").
            return_sequence: return the sequence vectors [B, d] instead of the logits, for
                callers that score the items themselves (chunked evaluation over very large
                catalogues, sampled softmax); the scores are `sequence @ E_id[1:].T`.
            all_positions: score the next item after EVERY position (whole-sequence
                training; backbones with `per_position`, i.e. SASRec and GRU4Rec): logits
                [B, Lb, N] / sequence vectors [B, Lb, d] instead of [B, N] / [B, d].

        Returns:
            logits float32 [B, N] (column j = item j + 1; or the sequence vectors float32
            [B, d]; [B, Lb, ...] with `all_positions`) and aux, a dict of float32 scalars `hol/<view>` and `code/<view>` for the
            terms the variant trains (empty when `teacher_signals` is None).
        """
        if len(self.views) != len(self.view_inits):
            raise ValueError(f"{len(self.views)} views but {len(self.view_inits)} initializers")
        nodes = jnp.asarray(batch[self.backbone.node_key], jnp.int32)  # [B, Ln]
        real = (nodes > 0)[..., None]
        item_embedding = nn.Embed(
            self.num_items + 1,
            self.dim,
            embedding_init=nn.initializers.normal(0.02),
            name="item_embedding",
        )
        # Rows are gathered once and reused by the backbone and the student heads.
        id_rows = jnp.where(real, item_embedding(nodes), 0.0)
        view_rows = {}
        for view, init in zip(self.views, self.view_inits):
            rows = nn.Embed(self.num_items + 1, self.dim, embedding_init=init, name=f"view_{view}")(
                nodes
            )
            if self.freeze_views:
                rows = jax.lax.stop_gradient(rows)
            view_rows[view] = jnp.where(real, rows, 0.0)

        if all_positions and not self.backbone.per_position:
            raise ValueError(
                f"{type(self.backbone).__name__} gives one vector per history; "
                "whole-sequence training (all_positions) needs SASRec or GRU4Rec"
            )
        sequence = self.backbone(id_rows, tuple(view_rows.values()), batch, train=train)
        if self.backbone.per_position and not all_positions:
            sequence = sequence[:, -1]  # right-aligned: the last column sees the whole history
        if return_sequence:
            return sequence, self._distill(nodes, view_rows, teacher_signals, batch)
        with jax.named_scope("output_layer"):  # names the ops in profiles
            logits = sequence @ item_embedding.embedding[1:].T  # padding item excluded
        return logits, self._distill(nodes, view_rows, teacher_signals, batch)

    def _distill(
        self,
        nodes: jax.Array,
        view_rows: Mapping[str, jax.Array],
        teacher_signals: Mapping[str, Any] | None,
        batch: Mapping[str, jax.Array],
    ) -> dict[str, jax.Array]:
        """The unweighted KD terms of each view (see `__call__`); the code term runs over
        `batch["pairs"]` when the batch lists its real pairs (`corrkd_jax.data.pairs`)."""
        aux: dict[str, jax.Array] = {}
        if not (self.holistic or self.codes):
            return aux
        mask = pair_mask(nodes) if teacher_signals is not None else None
        for view, rows in view_rows.items():
            projection = (
                HolisticProjection(self.dim, name=f"hol_proj_{view}") if self.holistic else None
            )
            mlp = (
                CodeMLP(
                    self.dim,
                    self.num_codes,
                    dtype=jnp.dtype(self.pair_dtype),
                    name=f"code_mlp_{view}",
                )
                if self.codes
                else None
            )
            if teacher_signals is None:
                if self.is_initializing():
                    # Create the heads' parameters (one node: no [B, Ln, Ln, d] tensor).
                    for head in (projection, mlp):
                        if head is not None:
                            head(rows[:, :1])
                continue
            signals = signals_for_view(teacher_signals, view)
            expected = (*nodes.shape, nodes.shape[1])
            for field in ("corr", "codes"):
                shape = tuple(getattr(signals, field).shape)
                if shape != expected:
                    raise ValueError(
                        f"teacher_signals[{view!r}].{field} has shape {shape}, expected "
                        f"{expected} (computed at kd_node_items of the same batch)"
                    )
            if projection is not None:
                aux[f"hol/{view}"] = holistic_term(
                    projection, rows, signals.corr, mask, self.corr_kind, self.tau
                )
            if mlp is not None:
                with jax.named_scope("code_term"):  # names the ops in profiles
                    if "pairs" in batch:
                        aux[f"code/{view}"] = packed_code_term(
                            mlp,
                            rows,
                            signals.codes,
                            (nodes > 0).astype(jnp.float32),
                            batch["pairs"],
                            batch["pair_weights"],
                            chunk=self.pair_chunk,
                        )
                    else:
                        aux[f"code/{view}"] = code_term(mlp, rows, signals.codes, mask)
        return aux
