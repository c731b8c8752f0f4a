"""Tables and plots of the capped Beauty study from `results/beauty/capped10/**/results.json`.

    python -m benchmarks.reproduce.summarize

The loading, statistics, shared tables, plots and report splicing are `benchmarks/study/`'s;
this module keeps what only this study has (ratio protocol, investigation, extra runs).
Writes, under `results/beauty/capped10/`: `tables.md` (main table mean +- std over seeds,
relative improvement of kdsr over the better of id_only and feature_init, ablations, ratio
protocol, the autoencoder investigation, wall times), `summary.json`, and the plots
`main_comparison.png`, `valid_curves.png` and (when the runs logged it)
`agreement.png`, the teacher-student correlation agreement per epoch.
Cells that have not finished are left out (and listed as missing). The tables are also
written into the `<!-- summarize:NAME -->` blocks of RESULTS.md (`--report`), so the report's
numbers always come from the committed results.
"""

from __future__ import annotations

import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.reproduce.cells import (  # noqa: E402
    ABLATIONS,
    MAIN_BACKBONES,
    MAIN_VARIANTS,
    Cell,
    all_cells,
)
from benchmarks.reproduce.run import RESULTS, is_done, results_dir  # noqa: E402
from benchmarks.study import load as load_dir  # noqa: E402
from benchmarks.study.plots import plot_agreement, plot_valid_curves  # noqa: E402
from benchmarks.study.report import splice, write_tables  # noqa: E402
from benchmarks.study.stats import (  # noqa: E402
    HR_METRICS,
    METRICS,
    mean_std,
    per_seed_hr_difference,
)
from benchmarks.study.tables import (  # noqa: E402
    agreement_table,
    equal_budget_table,
    metric_table,
    timing_table,
)


def load(cell: Cell) -> dict:
    return load_dir.read_results(results_dir(cell))


def epoch_records(cell: Cell) -> list[dict]:
    return load_dir.epoch_records(results_dir(cell))


def grouped(cells: list[Cell]) -> dict[tuple, list[dict]]:
    """(protocol, backbone, variant+tag) -> results of the finished seeds."""
    out: dict[tuple, list[dict]] = {}
    for cell in cells:
        if is_done(cell):
            key = (
                cell.protocol,
                cell.backbone,
                cell.variant + (f"-{cell.tag}" if cell.tag else ""),
            )
            out.setdefault(key, []).append(load(cell))
    return out


RATIO_METRICS = ("HR@5", "MRR@5", "HR@20", "MRR@20")
# The authors' Beauty log (ratio protocol, image + text views, best test value over epochs), %.
AUTHORS_RATIO = {"HR@5": 7.42, "MRR@5": 4.64, "HR@20": 14.68, "MRR@20": 5.24}


def ratio_table(rows: list[tuple[str, list[dict]]]) -> list[str]:
    """Each ratio cell twice: test at the best validation epoch (ours) and the best test value
    over epochs (the released code's way, optimistic), then the authors' figures."""
    lines = [
        "| run | test reported | " + " | ".join(RATIO_METRICS) + " |",
        "|---|---|" + "---:|" * len(RATIO_METRICS),
    ]
    for label, results in rows:
        result = results[0]
        lines.append(
            f"| {label} | at best valid epoch ({result['best_epoch'] + 1}) | "
            + " | ".join(f"{100 * result['test'][m]:.2f}" for m in RATIO_METRICS)
            + " |"
        )
        best = result.get("best_of_test_epochs")
        if best:
            lines.append(
                f"| {label} | best over epochs | "
                + " | ".join(
                    f"{100 * best[m]['value']:.2f} ({best[m]['epoch'] + 1})" for m in RATIO_METRICS
                )
                + " |"
            )
    lines.append(
        "| authors' log (KDSR, image + text) | best over epochs | "
        + " | ".join(f"{AUTHORS_RATIO[m]:.2f}" for m in RATIO_METRICS)
        + " |"
    )
    return lines


def improvements(groups: dict, protocol: str) -> tuple[list[str], dict]:
    """Relative improvement (%) of kdsr's mean over the better baseline's mean, per metric
    (the better of id_only and feature_init for that metric), over the seeds all three ran."""
    lines = [
        "| backbone | seeds | better baseline by HR@10 | "
        + " | ".join(METRICS)
        + " | mean over HR@5/10/20 | same, paired by seed vs the HR@10-better baseline (mean ± std) |",
        "|---|---:|---|" + "---:|" * (len(METRICS) + 2),
    ]
    summary = {}
    for backbone in MAIN_BACKBONES:
        runs = {
            v: groups.get((protocol, backbone, v)) or []
            for v in ("kdsr", "id_only", "feature_init")
        }
        runs = {v: r for v, r in runs.items() if r}
        if "kdsr" not in runs or len(runs) < 2:
            continue
        # Only seeds every compared variant finished: unequal seed sets would compare noise.
        seeds = set.intersection(*({r["config"]["seed"] for r in rs} for rs in runs.values()))
        runs = {v: [r for r in rs if r["config"]["seed"] in seeds] for v, rs in runs.items()}
        kdsr = runs.pop("kdsr")
        bases = runs
        rel = {}
        for metric in METRICS:
            best = max(mean_std(r, metric)[0] for r in bases.values())
            rel[metric] = 100 * (mean_std(kdsr, metric)[0] - best) / best
        hr = float(np.mean([rel[m] for m in HR_METRICS]))
        best_name = max(bases, key=lambda v: mean_std(bases[v], "HR@10")[0])
        per_seed = per_seed_hr_difference(kdsr, bases[best_name])
        spread = (
            f"{np.mean(per_seed):+.1f} ± {np.std(per_seed, ddof=1):.1f}% ({len(per_seed)} seeds)"
            if len(per_seed) > 1
            else "-"
        )
        lines.append(
            f"| {backbone} | {len(seeds)} | {best_name} | "
            + " | ".join(f"{rel[m]:+.1f}%" for m in METRICS)
            + f" | {hr:+.1f}% | {spread} |"
        )
        summary[backbone] = {
            "per_metric": rel,
            "mean_hr": hr,
            "seeds": sorted(seeds),
            "baselines": sorted(bases),
            "per_seed_mean_hr": per_seed,
        }
    return lines, summary


def plot_main(groups: dict, path: str) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / len(MAIN_VARIANTS)
    for ax, metric in zip(axes, ("HR@10", "NDCG@10")):
        for i, variant in enumerate(MAIN_VARIANTS):
            means, stds = [], []
            for backbone in MAIN_BACKBONES:
                results = groups.get(("leave_one_out", backbone, variant))
                m, s = mean_std(results, metric) if results else (np.nan, 0.0)
                means.append(m)
                stds.append(s)
            x = np.arange(len(MAIN_BACKBONES)) + (i - (len(MAIN_VARIANTS) - 1) / 2) * width
            ax.bar(x, means, width, yerr=stds, capsize=3, label=variant)
        ax.set_xticks(np.arange(len(MAIN_BACKBONES)), MAIN_BACKBONES)
        ax.set_ylabel(f"test {metric} (%)")
        ax.set_title(f"Amazon Beauty, leave-one-out, {metric}")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


EXTRA = os.path.join(RESULTS, "extra")  # runs outside the grid (e.g. a longer budget)


def extra_runs() -> list[tuple[str, list[dict]]]:
    """(label, epoch records) of every `results/beauty/capped10/extra/<label>/metrics.jsonl`."""
    return [
        (os.path.relpath(root, EXTRA), load_dir.epoch_records(root))
        for root, _, files in sorted(os.walk(EXTRA))
        if "metrics.jsonl" in files
    ]


def valid_curves(cells: list[Cell]) -> list[tuple[str, list[dict]]]:
    """(label, epoch records) of the finished seed-0 leave-one-out cells, then the extras."""
    curves = [
        (f"{c.backbone}/{c.variant}{'-' + c.tag if c.tag else ''}", epoch_records(c))
        for c in cells
        if is_done(c) and c.seed == 0 and c.protocol == "leave_one_out"
    ]
    return curves + [(f"extra: {label}", records) for label, records in extra_runs()]


def agreement_curves(cells: list[Cell]) -> list[tuple[str, str, list[tuple[int, float]]]]:
    """("backbone / variant[-tag]", view, [(epoch, agreement)]) of the finished seed-0
    leave-one-out cells that logged 'agreement/<view>' in their epoch records."""
    return [
        (f"{cell.backbone} / {cell.variant}{'-' + cell.tag if cell.tag else ''}", view, points)
        for cell in cells
        if is_done(cell) and cell.seed == 0 and cell.protocol == "leave_one_out"
        for view, points in load_dir.agreement_points(epoch_records(cell)).items()
    ]


def build_sections(
    cells: list[Cell], groups: dict, curves: list | None = None, agreement: list | None = None
) -> tuple[dict[str, list[str]], dict]:
    """The report's tables (markdown lines by section name) and the summary JSON. `curves`
    (`valid_curves`) and `agreement` (`agreement_curves`) are read from disk when not given."""
    missing = [c.name for c in cells if not is_done(c)]
    sections: dict[str, list[str]] = {}

    main_rows = [
        (f"{b} / {v}", groups[("leave_one_out", b, v)])
        for b in MAIN_BACKBONES
        for v in MAIN_VARIANTS
        if ("leave_one_out", b, v) in groups
    ]
    sections["main"] = metric_table(main_rows)
    sections["improvement"], imp = improvements(groups, "leave_one_out")
    abl_rows = [
        (f"{b} / {v}", groups[("leave_one_out", b, v)])
        for b in {c.backbone for c in cells if c.group == "ablation"}
        for v in ("kdsr", *ABLATIONS)
        if ("leave_one_out", b, v) in groups
    ]
    sections["ablations"] = metric_table([(label, r[:1]) for label, r in abl_rows])
    inv_rows = [
        (f"{c.backbone} / {c.variant}-{c.tag}", [load(c)])
        for c in cells
        if c.group == "investigation" and is_done(c)
    ]
    sections["investigation"] = metric_table(inv_rows)
    ratio_rows = [
        (f"{c.backbone} / {c.variant}", [load(c)])
        for c in cells
        if c.group == "ratio" and is_done(c)
    ]
    sections["ratio"] = ratio_table(ratio_rows)
    curves = valid_curves(cells) if curves is None else curves
    agreement = agreement_curves(cells) if agreement is None else agreement
    sections["equal_budget"] = equal_budget_table(curves)
    sections["agreement"] = agreement_table(agreement)
    every = main_rows + [row for row in abl_rows if row[0] not in dict(main_rows)]
    every += [(f"ratio: {label}", r) for label, r in ratio_rows] + inv_rows
    sections["wall_time"] = timing_table(every)
    sections["missing"] = [f"- {m}" for m in missing] or ["(none)"]
    signal = os.path.join(RESULTS, "teacher_signal.md")  # from teacher_signal.py
    if os.path.exists(signal):
        with open(signal, encoding="utf-8") as f:
            sections["teacher_signal"] = [
                line for line in f.read().splitlines() if line.startswith("|")
            ]

    summary = {
        "improvement": imp,
        "missing": missing,
        "cells": {
            f"{p}/{b}/{v}": {m: mean_std(r, m) for m in METRICS} for (p, b, v), r in groups.items()
        },
    }
    return sections, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--report",
        default="RESULTS.md",
        help="markdown file whose <!-- summarize:NAME --> blocks are refreshed "
        "('' to leave it alone)",
    )
    args = parser.parse_args()
    cells = all_cells()
    groups = grouped(cells)
    curves, agreement = valid_curves(cells), agreement_curves(cells)
    sections, summary = build_sections(cells, groups, curves, agreement)
    titles = {
        "main": "Main table (leave-one-out)",
        "improvement": "Relative improvement of kdsr over the better of id_only and feature_init",
        "ablations": "Ablations (seed 0 of kdsr for comparability)",
        "investigation": "Investigation: released autoencoder reduction instead of PCA (seed 0)",
        "ratio": "Released `ratio` protocol beside the authors' log",
        "equal_budget": "Validation NDCG@10 after equal numbers of epochs (seed 0; extras: "
        "longer runs)",
        "agreement": "Teacher-student agreement of the view tables (seed 0)",
        "wall_time": "Wall time (this 2-core CPU)",
        "missing": "Cells not finished",
        "teacher_signal": "Does feature similarity predict the next item? "
        "(teacher_signal.py, test split)",
    }
    heading = [
        "# Beauty reproduction study: generated tables",
        "",
        "Test metrics in %, mean ± sample std over seeds, scored once at the best "
        "validation epoch (NDCG@10).",
        "",
    ]
    text = write_tables(os.path.join(RESULTS, "tables.md"), heading, sections, titles)
    with open(os.path.join(RESULTS, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    if sections["main"][2:]:
        plot_main(groups, os.path.join(RESULTS, "main_comparison.png"))
    plot_agreement(agreement, os.path.join(RESULTS, "agreement.png"))
    if curves:
        plot_valid_curves(curves, os.path.join(RESULTS, "valid_curves.png"))
    print(text)
    if args.report and os.path.exists(args.report):
        print(f"refreshed in {args.report}: {', '.join(splice(args.report, sections)) or '-'}")


if __name__ == "__main__":
    main()
