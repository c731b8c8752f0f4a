"""Markdown tables of the studies (lists of lines). Metrics are shown in %."""

from __future__ import annotations

import numpy as np

from benchmarks.study.stats import METRICS, mean_std

Curve = tuple[str, list[dict]]  # (label, epoch records)
AgreementCurve = tuple[str, str, list[tuple[int, float]]]  # (label, view, [(epoch, value)])


def fmt(results: list[dict], metric: str) -> str:
    mean, std = mean_std(results, metric)
    return f"{mean:.2f} ± {std:.2f}" if len(results) > 1 else f"{mean:.2f}"


def metric_table(rows: list[tuple[str, list[dict]]], metrics=METRICS) -> list[str]:
    """One row per run: mean ± std over its seeds."""
    lines = ["| run | seeds | " + " | ".join(metrics) + " |", "|---|---:|" + "---:|" * len(metrics)]
    for label, results in rows:
        lines.append(
            f"| {label} | {len(results)} | " + " | ".join(fmt(results, m) for m in metrics) + " |"
        )
    return lines


def timing_table(
    rows: list[tuple[str, list[dict]]], stop: bool = False, host_memory: bool = False
) -> list[str]:
    """Best epoch, epochs trained and time per run (epochs 1-based); `stop` adds how each
    seed ended (early stopping or the epoch limit), `host_memory` whether each seed's trainer
    reused freed host memory (`corrkd_jax.host_memory`: 1.4-4x faster epochs on CPU;
    "no" for runs timed before results.json recorded it)."""
    lines = [
        "| run | best epoch | epochs trained | s/epoch (excl. compile) | total min |"
        + (" stopped by |" if stop else "")
        + (" host memory reused |" if host_memory else ""),
        "|---|---|---|---:|---:|" + ("---|" if stop else "") + ("---|" if host_memory else ""),
    ]
    for label, results in rows:
        best = ", ".join(str(r["best_epoch"] + 1) for r in results)
        trained = ", ".join(str(r["epochs_trained"]) for r in results)
        per_epoch = np.mean([r["timing"]["mean_epoch_seconds_excluding_compile"] for r in results])
        total = np.mean([r["timing"]["total_seconds"] for r in results]) / 60
        ends = ", ".join(
            "limit" if r["stop_reason"].startswith("num_epochs") else "early" for r in results
        )
        reused = ", ".join(
            "yes" if r["timing"].get("host_memory_reused") else "no" for r in results
        )
        lines.append(
            f"| {label} | {best} | {trained} | {per_epoch:.0f} | {total:.0f} |"
            + (f" {ends} |" if stop else "")
            + (f" {reused} |" if host_memory else "")
        )
    return lines


def equal_budget_table(
    curves: list[Curve], metric: str = "NDCG@10", epochs: tuple[int, ...] = (5, 10, 20)
) -> list[str]:
    """Validation metric after the same number of epochs: budget-matched comparison."""
    lines = [
        "| run | "
        + " | ".join(f"valid {metric} after {e} epochs" for e in epochs)
        + " | best valid (epoch) |",
        "|---|" + "---:|" * (len(epochs) + 1),
    ]
    for label, records in curves:
        values = {r["epoch"] + 1: r[f"valid/{metric}"] * 100 for r in records}
        best = max(records, key=lambda r: r[f"valid/{metric}"])
        lines.append(
            f"| {label} | "
            + " | ".join(f"{values[e]:.2f}" if e in values else "-" for e in epochs)
            + f" | {best[f'valid/{metric}'] * 100:.2f} ({best['epoch'] + 1}) |"
        )
    return lines


def agreement_table(curves: list[AgreementCurve]) -> list[str]:
    """First and last logged teacher-student agreement per run and view."""
    lines = ["| run | view | after epoch 1 | at the end (epoch) |", "|---|---|---:|---:|"]
    for label, view, points in curves:
        lines.append(
            f"| {label} | {view} | {points[0][1]:.3f} | {points[-1][1]:.3f} ({points[-1][0] + 1}) |"
        )
    return lines


def _ci(gain: dict, unit: str = "") -> str:
    return f"{gain['diff']:+.2f}{unit} [{gain['low']:+.2f}, {gain['high']:+.2f}]"


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:+.2f}"
    return f"{np.mean(values):+.2f} ± {np.std(values, ddof=1):.2f}"


def gain_table(gains: list[dict], baseline_header: str = "better baseline (HR@10)") -> list[str]:
    """Each KD variant against its baseline: per-seed paired differences and the paired
    bootstrap CI over test users (`stats.paired_bootstrap`)."""
    lines = [
        f"| dataset / backbone | variant | {baseline_header} | seeds | "
        "NDCG@10 diff per seed (mean ± std) | HR@10 diff per seed (mean ± std) | "
        "NDCG@10 diff [95% CI] | HR@10 diff [95% CI] | HR gain, mean of @5/10/20 "
        "[95% CI] |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for g in gains:
        ci = g["bootstrap"]
        cells = (
            [_ci(ci["NDCG@10"]), _ci(ci["HR@10"]), _ci(ci["rel_HR"], "%")]
            if ci
            else ["no test_ranks.npy"] * 3
        )
        lines.append(
            f"| {g['dataset']} / {g['backbone']} | {g['variant']} | {g['baseline']} | "
            f"{len(g['seeds'])} | {_spread(g['per_seed']['NDCG@10'])} | "
            f"{_spread(g['per_seed']['HR@10'])} | " + " | ".join(cells) + " |"
        )
    return lines


def verdict(gain: dict, claim: float) -> str:
    """A plain sentence on one comparison, from its CI of the relative HR gain."""
    ci = gain["bootstrap"]
    where = f"{gain['dataset']} / {gain['backbone']}: {gain['variant']} vs {gain['baseline']}"
    if not ci:
        return f"- {where}: no per-user ranks, no CI."
    rel = ci["rel_HR"]
    if rel["high"] < 0:
        sign = "worse than the better baseline"
    elif rel["low"] > 0:
        sign = "better than the better baseline"
    else:
        sign = "not distinguishable from the better baseline"
    if rel["high"] < claim:
        paper = f"below the paper's +{claim:g}% (excluded by the CI)"
    elif rel["low"] > claim:
        paper = f"above the paper's +{claim:g}%"
    else:
        paper = f"consistent with the paper's +{claim:g}% (inside the CI)"
    n = len(gain["seeds"])
    seeds = f"{n} seed{'s' if n != 1 else ''}"
    # One seed: the bootstrap resamples test users only, so training noise is not in the CI.
    if n == 1:
        paper += " (one seed: the CI covers the test users' sampling, not seed-to-seed noise)"
    return f"- {where} ({seeds}): HR gain {_ci(rel, '%')}, {sign}; {paper}."


def search_table(selection_points: list[dict], selected: str | None) -> list[str]:
    """The search's points by validation score; the selected one marked."""
    lines = [
        "| lambda_hol | lambda_code | tau | valid NDCG@10 | selected |",
        "|---:|---:|---:|---:|---|",
    ]
    for p in sorted(
        selection_points, key=lambda p: -p["valid"] if p["valid"] is not None else np.inf
    ):
        valid = "not run yet" if p["valid"] is None else f"{100 * p['valid']:.2f}"
        lines.append(
            f"| {p['lambda_hol']:g} | {p['lambda_code']:g} | {p['tau']:g} | {valid} | "
            f"{'**yes**' if p['point'] == selected else ''} |"
        )
    return lines
