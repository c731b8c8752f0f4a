"""Per-epoch extras chosen by name in `config.eval.per_epoch` (big_vision's evaluators).

The training loop validates, then calls each configured evaluator with the epoch's
parameters and adds what it returns to the epoch record; at the end each may add a summary
to results.json. None of them takes part in model selection or early stopping.

- `agreement`: teacher-student correlation agreement of each view table
  (`agreement/<view>`, `trainer/agreement.py`): the modality-forgetting curve of the study.
  Nothing for variants without view tables.
- `test`: the test split scored every epoch (`test_epoch/<metric>`), only so results can be set
  beside logs that keep the best test value over epochs (the released code); results.json
  gets `best_of_test_epochs`. `results["test"]` is still scored once, at the best
  validation epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import jax
from jax.sharding import Mesh

from corrkd_jax.data import EvalLoader
from corrkd_jax.trainer.agreement import agreement_pairs, view_agreements
from corrkd_jax.trainer.evaluation import evaluate

TEST_EPOCH_PREFIX = "test_epoch/"


class Evaluator(Protocol):
    def __call__(self, params: Any) -> dict[str, float]: ...

    def summary(self, history: Sequence[Mapping[str, Any]]) -> dict[str, Any]: ...


class Agreement:
    """`agreement/<view>` of every view table against its teacher features."""

    def __init__(self, features: Mapping[str, Any], num_items: int):
        self._features = features
        self._pairs = agreement_pairs(num_items) if features else None

    def __call__(self, params: Any) -> dict[str, float]:
        if self._pairs is None:
            return {}
        return view_agreements(jax.device_get(params), self._features, self._pairs)

    def summary(self, history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return {}


class TestEveryEpoch:
    """`test_epoch/<metric>` each epoch; `best_of_test_epochs` in results.json."""

    def __init__(
        self,
        eval_fn: Callable[..., Any],
        loader: EvalLoader,
        mesh: Mesh,
        metric_names: Sequence[str],
    ):
        self._eval_fn, self._loader, self._mesh = eval_fn, loader, mesh
        self._names = list(metric_names)

    def __call__(self, params: Any) -> dict[str, float]:
        test = evaluate(self._eval_fn, params, self._loader, self._mesh)
        return {f"{TEST_EPOCH_PREFIX}{key}": value for key, value in test.items()}

    def summary(self, history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        best = best_of_test_epochs(history, self._names)
        return {"best_of_test_epochs": best} if best else {}


def best_of_test_epochs(
    history: Sequence[Mapping[str, Any]], names: Sequence[str]
) -> dict[str, Any]:
    """The best test value of each metric over the epochs that logged one, and its (0-based)
    epoch ({} when no epoch did).

    This is how the released code reports results (optimistic: it selects on test); it is
    kept apart from `results["test"]`, which is scored once at the best validation epoch.
    """
    logged = [r for r in history if f"{TEST_EPOCH_PREFIX}{names[0]}" in r]
    best = {}
    for name in names if logged else ():
        record = max(logged, key=lambda r: r[f"{TEST_EPOCH_PREFIX}{name}"])
        best[name] = {"value": record[f"{TEST_EPOCH_PREFIX}{name}"], "epoch": record["epoch"]}
    return best


NAMES = ("agreement", "test")


def build_evaluators(
    names: Sequence[str],
    *,
    features: Mapping[str, Any],
    num_items: int,
    eval_fn: Callable[..., Any],
    test_loader: EvalLoader,
    mesh: Mesh,
    metric_names: Sequence[str],
) -> list[Evaluator]:
    """The evaluators of `config.eval.per_epoch`, in order; an unknown name is an error."""
    unknown = [name for name in names if name not in NAMES]
    if unknown:
        raise ValueError(f"eval.per_epoch lists {unknown}; known evaluators: {list(NAMES)}")
    made: list[Evaluator] = []
    for name in names:
        if name == "agreement":
            made.append(Agreement(features, num_items))
        else:
            made.append(TestEveryEpoch(eval_fn, test_loader, mesh, metric_names))
    return made
