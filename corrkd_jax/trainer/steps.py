"""Train state and the pure, module-level `train_step` / `eval_step`.

Both are jitted once per batch shape by the trainer, e.g.

    step = jax.jit(functools.partial(train_step, apply_fn=model.apply, tx=tx,
                                     backbone=config.model.backbone), donate_argnums=(0,))

Objective (method.md, "Objective"): the weighted mean of the full-softmax next-item
cross-entropy over the batch's real targets (`batch["weights"]`: one per row for prefix
batches, one per real position for whole-sequence batches), plus
`sum_v lambda_hol_v * hol/v + lambda_code_v * code/v` over the terms the model returns.
The teacher signals are computed inside the step from the `Teacher` pytree (no host work).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax

from corrkd_jax import metrics as metrics_lib
from corrkd_jax import optim
from corrkd_jax.models import kd_node_items
from corrkd_jax.teacher import Teacher, teacher_signals
from corrkd_jax.trainer.evaluation import RANKS_KEY, UNSEEN_RANKS_KEY, chunked_ranks

ApplyFn = Callable[..., tuple[jax.Array, dict[str, jax.Array]]]


@flax.struct.dataclass
class TrainState:
    """Everything that changes during training (a pytree: checkpointed as a whole)."""

    step: jax.Array  # int32 scalar, optimizer steps taken
    params: Any  # the model's `params` collection
    opt_state: Any  # optax state of `optim.make_optimizer`
    rng: jax.Array  # uint32 [2]-like raw key data; dropout key = fold_in(rng, step)


def create_train_state(
    params: Any, tx: optax.GradientTransformation, dropout_key: jax.Array
) -> TrainState:
    """Step 0: the given parameters, a fresh optimizer state, the run's dropout key."""
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=tx.init(params),
        rng=jax.random.key_data(dropout_key),
    )


def _per_view(value: Any, view: str, name: str) -> float:
    """A loss weight that is either one number for every view or a mapping view -> number."""
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value[view])
    except (KeyError, TypeError):
        raise ValueError(
            f"kd.{name} has no weight for view {view!r}: give one number or a "
            f"mapping with every view of model.views"
        ) from None


def loss_weights(
    kd: ml_collections.ConfigDict, views: Sequence[str], *, holistic: bool, codes: bool
) -> dict[str, float]:
    """Weight of every KD term the model returns: `hol/<view>` and `code/<view>`.

    `kd.lambda_hol` / `kd.lambda_code` are one number for every view, or a mapping
    view -> number (e.g. to reproduce the released code's swapped wiring).
    """
    weights: dict[str, float] = {}
    for view in views:
        if holistic:
            weights[f"hol/{view}"] = _per_view(kd.lambda_hol, view, "lambda_hol")
        if codes:
            weights[f"code/{view}"] = _per_view(kd.lambda_code, view, "lambda_code")
    return weights


def weighted_cross_entropy(logits: jax.Array, targets: jax.Array, weights: jax.Array) -> jax.Array:
    """Full-softmax next-item cross-entropy, averaged over the real rows.

    Args:
        logits: float32 [B, N], column j = item j + 1 (or [B, L, N] per position).
        targets: int32 [B] item ids 1..N, 0 in padded rows (or [B, L]).
        weights: float32 [B], 0 for padded rows (or [B, L], 0 where there is no target).

    Returns: float32 scalar, sum(w * ce) / max(sum(w), 1).
    """
    labels = jnp.maximum(targets - 1, 0)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)
    return jnp.sum(ce * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def sampled_cross_entropy(
    sequence: jax.Array,
    table: jax.Array,
    targets: jax.Array,
    negatives: jax.Array,
    weights: jax.Array,
) -> jax.Array:
    """Sampled-softmax next-item cross-entropy (an option for very large catalogues).

    Each case's target competes with `S` negatives shared by the batch, drawn uniformly from
    1..N (a uniform proposal needs no log-Q correction: it shifts every logit equally);
    a negative equal to the case's target is masked out.

    Args:
        sequence: float32 [B, d]; table: float32 [N + 1, d], the ID table (row 0 = padding).
        targets: int32 [B] item ids 1..N (0 in padded rows); negatives: int32 [S] item ids.
        weights: float32 [B], 0 for padded rows.

    Returns: float32 scalar, sum(w * ce) / max(sum(w), 1).
    """
    target_logits = jnp.einsum("bd,bd->b", sequence, table[targets])  # [B]
    negative_logits = sequence @ table[negatives].T  # [B, S]
    negative_logits = jnp.where(negatives[None, :] == targets[:, None], -jnp.inf, negative_logits)
    logits = jnp.concatenate([target_logits[:, None], negative_logits], axis=1)
    ce = jax.nn.logsumexp(logits, axis=1) - target_logits
    return jnp.sum(ce * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def gather_targets(
    sequence: jax.Array, targets: jax.Array, target_index: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """The sequence vectors and next items of the listed real positions of a whole-sequence
    batch (`corrkd_jax.data.pipeline.pack_targets`).

    Args:
        sequence: float32 [B, Lb, d] per-position vectors; targets: int32 [B, Lb];
        target_index: int32 [G, C], flat index into each group's B / G * Lb positions.

    Returns: float32 [G, C, d] and int32 [G, C] (padding slots repeat position 0; their
        weight is 0).
    """
    groups = target_index.shape[0]
    flat = sequence.reshape(groups, -1, sequence.shape[-1])
    picked = jnp.take_along_axis(flat, target_index[..., None], axis=1)
    return picked, jnp.take_along_axis(targets.reshape(groups, -1), target_index, axis=1)


def train_step(
    state: TrainState,
    batch: Mapping[str, jax.Array],
    teacher: Teacher | None,
    weights: Mapping[str, jax.Array],
    *,
    apply_fn: ApplyFn,
    tx: optax.GradientTransformation,
    backbone: str,
    num_negatives: int = 0,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One optimizer step.

    Args:
        state: the current `TrainState` (donated by the caller's jit).
        batch: `items` int32 [B, Lb], `targets` int32 [B], `weights` float32 [B] (+ the
            session-graph arrays), sharded over the batch axis; whole-sequence batches have
            `targets` int32 [B, Lb] and `weights` float32 [B, Lb] (next item per position).
        teacher: the `Teacher` (replicated), or None for variants without distillation.
        weights: KD term -> float32 scalar weight (`loss_weights`).
        apply_fn: `model.apply`; tx: the optimizer; backbone: `model.backbone` (static).
        num_negatives: 0 = full softmax over the N items (the method); S > 0 = sampled
            softmax with S uniform negatives shared by the batch (`sampled_cross_entropy`,
            an option for catalogues of millions of items; changes results).

    Returns:
        The new state and float32 scalars: `loss/total`, `loss/ce`, `loss/<term>` for every KD
        term, `lr/<group>` for every optimizer group, `grad_norm`.
    """
    dropout_key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
    signals = None
    if teacher is not None:
        signals = teacher_signals(teacher, kd_node_items(batch, backbone))

    # Whole-sequence batches carry a target per position ([B, Lb]): score every position,
    # or only the listed real ones when the loader packed them (`target_index`).
    all_positions = batch["targets"].ndim == 2
    packed = "target_index" in batch

    def loss_fn(params: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        # Sampled softmax and packed targets score the items here: the model returns
        # sequence vectors.
        extra = {"return_sequence": True} if num_negatives > 0 or packed else {}
        if all_positions:
            extra["all_positions"] = True
        outputs, aux = apply_fn(
            {"params": params},
            batch,
            teacher_signals=signals,
            train=True,
            rngs={"dropout": dropout_key},
            **extra,
        )
        targets, target_weights = batch["targets"], batch["weights"]
        if packed:
            outputs, targets = gather_targets(outputs, targets, batch["target_index"])
            target_weights = batch["target_weights"]
        with jax.named_scope("cross_entropy"):  # names the ops in profiles
            if num_negatives > 0:
                table = params["item_embedding"]["embedding"]
                negatives = jax.random.randint(
                    jax.random.fold_in(dropout_key, 1), (num_negatives,), 1, table.shape[0]
                )
                ce = sampled_cross_entropy(
                    outputs.reshape(-1, outputs.shape[-1]),
                    table,
                    targets.reshape(-1),
                    negatives,
                    target_weights.reshape(-1),
                )
            else:
                if packed:  # the model's output layer, on the real slots only
                    outputs = outputs @ params["item_embedding"]["embedding"][1:].T
                ce = weighted_cross_entropy(outputs, targets, target_weights)
        total = ce
        for term, value in aux.items():
            total = total + weights[term] * value
        terms = {"loss/total": total, "loss/ce": ce}
        terms.update({f"loss/{term}": value for term, value in aux.items()})
        return total, terms

    grads, terms = jax.grad(loss_fn, has_aux=True)(state.params)
    with jax.named_scope("optimizer"):
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
    terms.update({f"lr/{group}": lr for group, lr in optim.learning_rates(opt_state).items()})
    terms["grad_norm"] = optax.tree.norm(grads)
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
    return new_state, terms


def eval_step(
    params: Any,
    batch: Mapping[str, jax.Array],
    *,
    apply_fn: ApplyFn,
    ks: tuple[int, ...] = metrics_lib.DEFAULT_KS,
    item_chunk: int = 0,
    exclude_history: bool = False,
) -> dict[str, jax.Array]:
    """Full-ranking metrics of one batch as weighted sums (divide on the host).

    Args:
        params: the model parameters; batch: as in `train_step` (padded rows weight 0).
        apply_fn: `model.apply`; ks: cut-offs (static).
        item_chunk: 0 = score all N items at once ([B, N] scores); c > 0 = score them c at a
            time (`evaluation.chunked_ranks`), for catalogues whose [B, N] scores do not fit.
        exclude_history: rank the target only among items not in the case's input history
            (`metrics.unseen_ranks`; the target itself always stays a candidate). The
            reported `loss/ce` is over all items either way.

    Returns:
        float32 scalars: `HR@k`, `NDCG@k`, `MRR@k` sums, `loss/ce` sum and `count`; and
        `ranks` int32 [B], each case's target rank (per case, not summed: `evaluate` keeps
        them for paired statistics), and `ranks_excluding_history` int32 [B], the ranks
        with the history items removed (both protocols, for comparison with papers).
    """
    targets = jnp.maximum(batch["targets"] - 1, 0)
    history = batch["items"]
    if item_chunk > 0:
        sequence, _ = apply_fn(
            {"params": params}, batch, teacher_signals=None, train=False, return_sequence=True
        )
        table = params["item_embedding"]["embedding"][1:]
        ranks, logsumexp, target_scores = chunked_ranks(sequence, table, targets, item_chunk)
        ce = logsumexp - target_scores
        history_scores = jnp.einsum("bd,bld->bl", sequence, table[jnp.maximum(history - 1, 0)])
    else:
        logits, _ = apply_fn({"params": params}, batch, teacher_signals=None, train=False)
        ranks = metrics_lib.target_ranks(logits, targets)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), targets)
        target_scores = jnp.take_along_axis(logits, targets[:, None], axis=1)[:, 0]
        history_scores = jnp.take_along_axis(logits, jnp.maximum(history - 1, 0), axis=1)
    unseen = metrics_lib.unseen_ranks(ranks, history, history_scores, targets, target_scores)
    if exclude_history:
        ranks = unseen
    per_case = metrics_lib.metrics_from_ranks(ranks, ks)
    per_case["loss/ce"] = ce
    sums = metrics_lib.weighted_sums(per_case, batch["weights"])
    return {**sums, RANKS_KEY: ranks, UNSEEN_RANKS_KEY: unseen}


class CompiledPerShape:
    """Ahead-of-time compiled `jitted` per batch shape, with the total compile time.

    Batches come in a few padded lengths (length buckets); each new set of batch shapes is
    lowered and compiled once, timed, and reused. `args[batch_index]` is the batch dict.
    """

    def __init__(self, jitted: Callable[..., Any], batch_index: int = 1):
        self.jitted = jitted  # the jax.jit function (lower/compile it yourself, e.g. to time)
        self._batch_index = batch_index
        self._compiled: dict[tuple, Any] = {}
        self.compile_seconds = 0.0

    def __call__(self, *args: Any) -> Any:
        batch = args[self._batch_index]
        key = tuple(sorted((name, tuple(value.shape)) for name, value in batch.items()))
        compiled = self._compiled.get(key)
        if compiled is None:
            start = time.perf_counter()
            compiled = self.jitted.lower(*args).compile()
            self.compile_seconds += time.perf_counter() - start
            self._compiled[key] = compiled
        return compiled(*args)
