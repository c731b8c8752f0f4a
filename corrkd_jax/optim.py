"""Optimizer: Adam parameter groups chosen by regex over parameter paths, async schedules.

Every parameter gets exactly one group label from its '/'-joined path (e.g.
`view_title/embedding`, `backbone/Dense_0/kernel`); the builder refuses a parameter tree where a
path matches no group or several. Groups (method.md, "Asynchronous learning"):

- `main`: Adam at `optim.lr`, optionally decayed by `optim.lr_decay_rate` every
  `optim.lr_decay_epochs` epochs (torch StepLR, as in the released code), with coupled L2
  `optim.weight_decay` (torch `Adam(weight_decay=...)`: `wd * param` is added to the gradient).
- the view tables `(^|/)view_[^/]+/embedding$` go to `VariantSpec.table_group`:
  `slow` (own Adam, rate from `optim.async_schedule`), `fast` (= main), `frozen`
  (`optax.set_to_zero`), or `none` (the variant has no tables).

Slow schedules, with `g = optim.async_gamma`, `S = optim.async_epochs`, `e` = epoch index:
`constant`: main(step) / g^len(S) (released default: g=2, S=(5, 10) -> lr/4);
`step`: main(step) / g^len(S) * g^#{s in S: e >= s} (reaches the main rate after the last s);
`freeze_then_train`: 0 while e < `optim.freeze_epochs`, then main(step).

Each Adam is wrapped in `optax.inject_hyperparams`, so the current rate of every group is in the
optimizer state (`learning_rates(opt_state)`) and can be logged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.traverse_util
import jax
import jax.numpy as jnp
import ml_collections
import optax

TABLE_REGEX = r"(^|/)view_[^/]+/embedding$"
TABLE_GROUPS = ("none", "frozen", "fast", "slow")
ASYNC_SCHEDULES = ("constant", "step", "freeze_then_train")

Schedule = Callable[[jax.Array], jax.Array]


class ParamGroupError(ValueError):
    """A parameter tree does not split cleanly into the configured groups."""


def _join(path: Sequence[Any]) -> str:
    return "/".join(str(part) for part in path)


def param_labels(params: Mapping[str, Any], rules: Sequence[tuple[str, str]]) -> Any:
    """Group label of every parameter, from `(group, regex)` rules searched in its path.

    Args:
        params: nested dict of arrays (or shape structs), e.g. the model's `params` collection.
        rules: `(group, regex)` pairs; `re.search` against the '/'-joined parameter path.

    Returns:
        A tree like `params` with a group name (str) at every leaf.

    Raises:
        ParamGroupError: listing every path matched by no rule or by more than one rule.
    """
    compiled = [(group, re.compile(pattern)) for group, pattern in rules]
    uncovered: list[str] = []
    overlapping: list[str] = []

    def label(path: tuple[str, ...], _: Any) -> str:
        name = _join(path)
        groups = [group for group, pattern in compiled if pattern.search(name)]
        if not groups:
            uncovered.append(name)
            return ""
        if len(groups) > 1:
            overlapping.append(f"{name} -> {groups}")
        return groups[0]

    labels = flax.traverse_util.path_aware_map(label, params)
    if uncovered or overlapping:
        lines = [
            f"parameter groups {[group for group, _ in rules]} do not cover every "
            "parameter exactly once:"
        ]
        lines += [f"  uncovered: {name}" for name in uncovered]
        lines += [f"  in several groups: {entry}" for entry in overlapping]
        raise ParamGroupError("\n".join(lines))
    return labels


def group_rules(table_group: str, table_regex: str = TABLE_REGEX) -> list[tuple[str, str]]:
    """The `(group, regex)` rules for a variant's `table_group` (see module docstring).

    `fast` and `none` put everything in `main`; `slow`/`frozen` split off the view tables, and
    `main` is the complement (negative look-ahead), so each path matches exactly one rule.
    """
    if table_group not in TABLE_GROUPS:
        raise ValueError(f"table_group={table_group!r}: expected one of {TABLE_GROUPS}")
    if table_group in ("none", "fast"):
        return [("main", r".*")]
    return [(table_group, table_regex), ("main", rf"^(?!.*(?:{table_regex}))")]


def _epoch(step: jax.Array, steps_per_epoch: int) -> jax.Array:
    return jnp.asarray(step) // steps_per_epoch


def main_schedule(optim: ml_collections.ConfigDict, steps_per_epoch: int) -> Schedule:
    """Learning rate of the main group at a step (float32 scalar), with optional step decay."""
    lr = float(optim.lr)
    decay_epochs = int(optim.lr_decay_epochs)
    decay_rate = float(optim.lr_decay_rate)

    def schedule(step: jax.Array) -> jax.Array:
        if decay_epochs <= 0:
            return jnp.full((), lr, jnp.float32)
        drops = _epoch(step, steps_per_epoch) // decay_epochs
        return jnp.asarray(lr * decay_rate**drops, jnp.float32)

    return schedule


def slow_schedule(optim: ml_collections.ConfigDict, steps_per_epoch: int) -> Schedule:
    """Learning rate of the slow (asynchronous) view-table group at a step (float32 scalar)."""
    base = main_schedule(optim, steps_per_epoch)
    kind = optim.async_schedule
    gamma = float(optim.async_gamma)
    milestones = tuple(int(e) for e in optim.async_epochs)
    freeze_epochs = int(optim.freeze_epochs)
    if kind not in ASYNC_SCHEDULES:
        raise ValueError(f"optim.async_schedule={kind!r}: expected one of {ASYNC_SCHEDULES}")
    if gamma <= 0:
        raise ValueError(f"optim.async_gamma={gamma}: must be > 0")

    def schedule(step: jax.Array) -> jax.Array:
        epoch = _epoch(step, steps_per_epoch)
        if kind == "constant":
            return base(step) / gamma ** len(milestones)
        if kind == "step":
            passed = sum((epoch >= m).astype(jnp.int32) for m in milestones)
            return base(step) * jnp.asarray(gamma, jnp.float32) ** (passed - len(milestones))
        return jnp.where(epoch < freeze_epochs, 0.0, base(step)).astype(jnp.float32)

    return schedule


def _adam_l2(learning_rate: float, weight_decay: float) -> optax.GradientTransformation:
    """torch-style Adam: coupled L2 (`wd * param` added to the gradient) before the moments."""
    return optax.chain(
        optax.add_decayed_weights(weight_decay),
        optax.scale_by_adam(),
        optax.scale_by_learning_rate(learning_rate),
    )


def make_optimizer(
    optim: ml_collections.ConfigDict,
    params: Mapping[str, Any],
    *,
    table_group: str,
    steps_per_epoch: int,
) -> optax.GradientTransformation:
    """Builds the partitioned optimizer for `params` (checked: every path in exactly one group).

    Args:
        optim: `config.optim` (lr, weight_decay, lr_decay_*, async_*, freeze_epochs, table_regex).
        params: the parameter tree (arrays or `jax.ShapeDtypeStruct`s); only paths are read.
        table_group: `VariantSpec.table_group` of the run's variant.
        steps_per_epoch: optimizer steps per epoch, for the epoch-based schedules.

    Raises:
        ParamGroupError: bad coverage, or a `slow`/`frozen` group that matches no parameter
            (the model's view tables are not named `view_<name>/embedding`).
    """
    if steps_per_epoch <= 0:
        raise ValueError(f"steps_per_epoch={steps_per_epoch}: must be positive")
    rules = group_rules(table_group, optim.table_regex)
    labels = param_labels(params, rules)
    used = set(jax.tree_util.tree_leaves(labels))
    missing = [group for group, _ in rules if group not in used]
    if missing:
        raise ParamGroupError(
            f"parameter group(s) {missing} match no parameter; view tables must be named "
            f"'view_<name>/embedding' (regex {rules[0][1]!r})"
        )
    weight_decay = float(optim.weight_decay)
    adam = optax.inject_hyperparams(_adam_l2)
    transforms = {
        "main": adam(learning_rate=main_schedule(optim, steps_per_epoch), weight_decay=weight_decay)
    }
    if table_group == "slow":
        transforms["slow"] = adam(
            learning_rate=slow_schedule(optim, steps_per_epoch), weight_decay=weight_decay
        )
    elif table_group == "frozen":
        transforms["frozen"] = optax.set_to_zero()
    return optax.partition(transforms, labels)


def learning_rates(opt_state: Any) -> dict[str, jax.Array]:
    """Current learning rate (float32 scalar) of every group in a `make_optimizer` state.

    The rate is the one used by the most recent update (the initial rate before any update);
    the frozen group reports 0. Any other optimizer state gives `{}` (nothing to report).
    """
    rates: dict[str, jax.Array] = {}
    for group, masked in getattr(opt_state, "inner_states", {}).items():
        inner = masked.inner_state
        hyperparams = getattr(inner, "hyperparams", None)
        if hyperparams is None:
            rates[group] = jnp.zeros((), jnp.float32)
        else:
            rates[group] = hyperparams["learning_rate"]
    return rates
