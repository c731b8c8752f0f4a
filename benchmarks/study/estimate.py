"""How long the study's unfinished cells will take, from the wall times of the finished ones.

The basis of one unfinished cell is the first of these that has finished cells:

1. the same dataset, backbone and cost variant: their mean total minutes;
2. the same backbone and cost variant on another dataset, times the two datasets' ratio:
   measured where both datasets have finished the same cost variant on the other backbone
   (that pair's minutes), else the geometric mean over every (backbone, cost variant) both
   have finished; else the ratio of their training cases (a dataset's size is read from any of
   its finished cells' results.json, or counted from its data by `data_cases` while none has
   finished); unscaled, and said so, where none is known. Measured ratios come first because
   training cases miss the epochs: on Sports the session graph stops after half Beauty's
   epochs, so its cells took 0.9-1.25x Beauty's minutes, not the 1.44x its size predicts;
3. the same cost variant on the other backbone, times the ratio of the two backbones'
   `id_only` minutes on that dataset (then scaled as in 2).

The cost variant is what the trainer runs: the search points, `kdsr_tuned` and the ablations
are `kdsr` with other weights (an ablation that drops a term costs somewhat less). Times were
taken with two runners sharing the CPU, so they are runner-minutes at that load.

Cells timed before the trainer reused freed host memory (`corrkd_jax.host_memory`; their
results.json has no `timing.host_memory_reused`) ran 1.4-4x slower per epoch. Their minutes
are rescaled by the ratio of mean epoch seconds (with / without) where the same (dataset,
backbone, cost variant) has seeds of both kinds: by that cell's own ratio (all its seeds count,
since their epochs to early stopping vary), and a cell timed only without reuse by the median
ratio of its backbone and variant on the other datasets, else of its backbone and kind of
variant (KD or not: `kdsr` and `kdsr_released` run the same KD terms), else of its backbone;
left as they are while the backbone has none.
The ratio differs by backbone (median 0.40 over five session-graph cells, 0.52 over two SASRec
ones, 2026-12-02) and by kind: KD epochs, mostly the KD terms' compute, ran at 0.76-0.85
(session-graph `kdsr` on Beauty, 168 vs 221 s per epoch; `kdsr_released` on Sports; SASRec
`kdsr` on Beauty with the search's points, 2026-12-03), where the backbones' medians had
predicted 0.40 and 0.52. Such a figure is not the cell's own measurement (the wider margin
applies). The search's finished points count as `kdsr` cells here (their results stay out
of the tables).
"""

from __future__ import annotations

import dataclasses
import functools
import os

import numpy as np

from benchmarks.study import cells as study
from corrkd_jax.trainer import setup
from corrkd_jax.trainer.config_files import load_config_file

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# Safety factors for `--stop-at` (a cell stopped half-way is lost with the session's runs/).
# Measured on the cell's own dataset, backbone and variant, the estimate is a mean over seeds
# that vary: Beauty SASRec id_only took 77, 134 and 135 min (the last 1.16 x the mean). Not
# more than 15%: a search point (Beauty SASRec kdsr, 133 min) then needs 153 of a session's
# ~160 runner-minutes, and still fits when started first.
# Carried over from another dataset or backbone it is off by more: estimating each finished
# (dataset, backbone, variant) from the others (2026-12-02, 21 of them) gave 0.52-2.89 x the
# real minutes, three below 0.8 (0.52, 0.56, 0.73).
OWN_MARGIN = 1.15
CARRIED_MARGIN = 1.5


@dataclasses.dataclass(frozen=True)
class Estimate:
    minutes: float | None  # None: no basis yet
    basis: str  # where the figure comes from, for the report
    own: bool = False  # measured on the cell's own dataset, backbone and cost variant

    @property
    def margin(self) -> float:
        """The factor a stop time must leave room for (see OWN_MARGIN, CARRIED_MARGIN)."""
        return OWN_MARGIN if self.own else CARRIED_MARGIN


def cost_variant(cell: study.Cell) -> str:
    return "kdsr" if cell.group != "main" or cell.variant == study.TUNED else cell.variant


class Minutes(dict):
    """(dataset, backbone, cost variant) -> expected total minutes of a cell run now, with
    `rescaled`: the keys timed only without host-memory reuse -> the factor applied to them."""

    def __init__(self, values=(), rescaled=None):
        super().__init__(values)
        self.rescaled: dict[tuple[str, str, str], float] = dict(rescaled or {})


def measured(finished: dict) -> tuple[Minutes, dict]:
    """Mean total minutes per (dataset, backbone, cost variant) at the speed of host-memory
    reuse, older seeds converted (see the module docstring); and dataset -> training cases.
    From `summarize.finished`'s groups."""
    # key -> reused? -> [(total minutes, mean epoch seconds)]
    runs: dict[tuple[str, str, str], dict[bool, list[tuple[float, float]]]] = {}
    cases: dict[str, int] = {}
    for group in finished.values():
        for cell, result in group:
            key = (cell.dataset, cell.backbone, cost_variant(cell))
            timing = result["timing"]
            runs.setdefault(key, {True: [], False: []})[
                bool(timing.get("host_memory_reused", False))
            ].append((timing["total_seconds"] / 60, timing["mean_epoch_seconds_excluding_compile"]))
            if "data" in result:
                cases[cell.dataset] = result["data"]["train_cases"]
    speedups = {
        key: np.mean([e for _, e in by[True]]) / np.mean([e for _, e in by[False]])
        for key, by in runs.items()
        if by[True] and by[False]
    }
    minutes, rescaled = {}, {}
    for key, by in runs.items():
        if by[True]:  # every seed counts (epochs to stop vary), at the speed of reuse
            old = [m * speedups[key] for m, _ in by[False]]
            minutes[key] = float(np.mean([m for m, _ in by[True]] + old))
            continue
        minutes[key] = float(np.mean([m for m, _ in by[False]]))
        # the same backbone and variant first, then kind of variant (KD or not): the ratio
        # depends on it (KD epochs, compute-bound, 0.76-0.85; the baselines' 0.26-0.59)
        backbone = {k: r for k, r in speedups.items() if k[1] == key[1]}
        same_variant = [r for k, r in backbone.items() if k[2] == key[2]]
        is_kd = key[2] in study.KD_VARIANTS  # kdsr, kdsr_released: the same KD terms per step
        same_kind = [r for k, r in backbone.items() if (k[2] in study.KD_VARIANTS) == is_kd]
        ratios = same_variant or same_kind or list(backbone.values())
        if ratios:
            factor = float(np.median(ratios))
            minutes[key] *= factor
            rescaled[key] = factor
    return Minutes(minutes, rescaled), cases


@functools.cache
def data_cases(dataset: str) -> int:
    """Training cases of a study dataset's split, counted from its data (seconds, no training):
    the number its cells' results.json will report."""
    config = load_config_file(os.path.join(REPO, study.DATASETS[dataset]), "session_graph,id_only")
    config.data.protocol = "leave_one_out"
    return len(setup.split_data(config, setup.load_data(config)).train.targets)


def with_data_cases(cases: dict, count=data_cases) -> dict:
    """`cases` (dataset -> training cases, from finished cells) completed for every study
    dataset by counting its data."""
    return {**{d: count(d) for d in study.DATASETS if d not in cases}, **cases}


def estimate(cell: study.Cell, minutes: dict, cases: dict) -> Estimate:
    variant = cost_variant(cell)
    own = (cell.dataset, cell.backbone, variant)
    factor = getattr(minutes, "rescaled", {}).get(own)
    if factor is not None:
        label = f"{' / '.join(own)}, measured without host-memory reuse x {factor:.2f}"
        return Estimate(minutes[own], label)
    if own in minutes:
        return Estimate(minutes[own], f"{' / '.join(own)}, measured", own=True)
    for (dataset, backbone, v), value in minutes.items():
        if (backbone, v) == (cell.backbone, variant):
            label = " / ".join((dataset, backbone, v))
            return _scaled(value, label, dataset, cell.dataset, cases, minutes, variant)
    for (dataset, backbone, v), value in minutes.items():
        if v != variant or backbone == cell.backbone:
            continue
        ratio = _backbone_ratio(minutes, dataset, backbone, cell.backbone)
        if ratio is not None:
            label = (
                f"{dataset} / {backbone} / {v} x {ratio:.2f} ({cell.backbone} / {backbone} id_only)"
            )
            return _scaled(value * ratio, label, dataset, cell.dataset, cases, minutes, variant)
    return Estimate(None, "no basis yet")


def _backbone_ratio(minutes: dict, dataset: str, source: str, target: str) -> float | None:
    a, b = minutes.get((dataset, target, "id_only")), minutes.get((dataset, source, "id_only"))
    return a / b if a and b else None


def _measured_ratio(
    minutes: dict, source: str, target: str, variant: str
) -> tuple[float, str] | None:
    """target / source minutes from the cells both datasets finished, with its label: the same
    cost variant if both have it (on a backbone other than the one estimated, by construction
    of `estimate`'s rules), else the geometric mean over all shared (backbone, variant)."""
    shared = {
        (b, v): minutes[(target, b, v)] / minutes[(source, b, v)]
        for (d, b, v) in minutes
        if d == source and (target, b, v) in minutes
    }
    same = [(b, r) for (b, v), r in shared.items() if v == variant]
    if same:
        backbone, ratio = same[0]
        return ratio, f"{target} / {source} {backbone} {variant}, measured"
    if shared:
        ratio = float(np.exp(np.mean(np.log(list(shared.values())))))
        return ratio, f"{target} / {source}, measured over {len(shared)} shared cells"
    return None


def _scaled(
    value: float, label: str, source: str, target: str, cases: dict, minutes: dict, variant: str
) -> Estimate:
    if source == target:
        return Estimate(value, label)
    found = _measured_ratio(minutes, source, target, variant)
    if found:
        ratio, basis = found
        return Estimate(value * ratio, f"{label} x {ratio:.2f} ({basis})")
    if source in cases and target in cases:
        ratio = cases[target] / cases[source]
        return Estimate(
            value * ratio, f"{label} x {ratio:.2f} ({target} / {source} training cases)"
        )
    return Estimate(value, f"{label}, unscaled: no {target} cell has finished")


def total_line(estimates: list[Estimate]) -> str:
    known = [e.minutes for e in estimates if e.minutes is not None]
    unknown = len(estimates) - len(known)
    hours = sum(known) / 60
    line = (
        f"- Estimated remaining compute: ~{hours:.0f} runner-hours for {len(known)} cells "
        f"(~{hours / 2:.0f} wall-hours with two runners on this 2-core CPU, at the load the "
        "finished cells were timed at)"
    )
    return line + (f"; {unknown} cells have no basis yet." if unknown else ".")
