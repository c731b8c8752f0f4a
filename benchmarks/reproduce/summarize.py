"""Tables and plots of the Beauty reproduction study from `results/beauty/**/results.json`.

    python benchmarks/reproduce/summarize.py

Writes `results/beauty/tables.md` (main table mean +- std over seeds, relative improvement
of kdsr over the better of id_only and feature_init, ablations, ratio protocol, the
autoencoder investigation, wall times), `results/beauty/summary.json`, and the plots
`results/beauty/main_comparison.png` and (when the runs logged it)
`results/beauty/agreement.png`, the teacher-student correlation agreement per epoch.
Cells that have not finished are left out (and listed as missing). The tables are also
written into the `<!-- summarize:NAME -->` blocks of RESULTS.md (`--report`), so the report's
numbers always come from the committed results.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cells import ABLATIONS, MAIN_BACKBONES, MAIN_VARIANTS, Cell, all_cells  # noqa: E402
from run import RESULTS, is_done, results_dir  # noqa: E402

METRICS = ("HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR@5", "MRR@10",
           "MRR@20")
HR_METRICS = ("HR@5", "HR@10", "HR@20")


def load(cell: Cell) -> dict:
    with open(os.path.join(results_dir(cell), "results.json")) as f:
        return json.load(f)


def epoch_records(cell: Cell) -> list[dict]:
    path = os.path.join(results_dir(cell), "metrics.jsonl")
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [r for r in records if r.get("kind") == "epoch"]


def grouped(cells: list[Cell]) -> dict[tuple, list[dict]]:
    """(protocol, backbone, variant+tag) -> results of the finished seeds."""
    out: dict[tuple, list[dict]] = {}
    for cell in cells:
        if is_done(cell):
            key = (cell.protocol, cell.backbone, cell.variant + (f"-{cell.tag}" if cell.tag else ""))
            out.setdefault(key, []).append(load(cell))
    return out


def mean_std(results: list[dict], metric: str) -> tuple[float, float]:
    values = np.array([r["test"][metric] for r in results]) * 100
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def fmt(results: list[dict], metric: str) -> str:
    mean, std = mean_std(results, metric)
    return f"{mean:.2f} ± {std:.2f}" if len(results) > 1 else f"{mean:.2f}"


def metric_table(rows: list[tuple[str, list[dict]]], metrics=METRICS) -> list[str]:
    lines = ["| run | seeds | " + " | ".join(metrics) + " |",
             "|---|---:|" + "---:|" * len(metrics)]
    for label, results in rows:
        lines.append(f"| {label} | {len(results)} | "
                     + " | ".join(fmt(results, m) for m in metrics) + " |")
    return lines


def timing_table(rows: list[tuple[str, list[dict]]]) -> list[str]:
    lines = ["| run | best epoch | epochs trained | s/epoch (excl. compile) | total min |",
             "|---|---|---|---:|---:|"]
    for label, results in rows:
        best = ", ".join(str(r["best_epoch"] + 1) for r in results)  # 1-based
        trained = ", ".join(str(r["epochs_trained"]) for r in results)
        per_epoch = np.mean([r["timing"]["mean_epoch_seconds_excluding_compile"]
                             for r in results])
        total = np.mean([r["timing"]["total_seconds"] for r in results]) / 60
        lines.append(f"| {label} | {best} | {trained} | {per_epoch:.0f} | {total:.0f} |")
    return lines


RATIO_METRICS = ("HR@5", "MRR@5", "HR@20", "MRR@20")
# The authors' Beauty log (ratio protocol, image + text views, best test value over epochs), %.
AUTHORS_RATIO = {"HR@5": 7.42, "MRR@5": 4.64, "HR@20": 14.68, "MRR@20": 5.24}


def ratio_table(rows: list[tuple[str, list[dict]]]) -> list[str]:
    """Each ratio cell twice: test at the best validation epoch (ours) and the best test value
    over epochs (the released code's way, optimistic), then the authors' figures."""
    lines = ["| run | test reported | " + " | ".join(RATIO_METRICS) + " |",
             "|---|---|" + "---:|" * len(RATIO_METRICS)]
    for label, results in rows:
        result = results[0]
        lines.append(f"| {label} | at best valid epoch ({result['best_epoch'] + 1}) | "
                     + " | ".join(f"{100 * result['test'][m]:.2f}" for m in RATIO_METRICS)
                     + " |")
        best = result.get("best_of_test_epochs")
        if best:
            lines.append(f"| {label} | best over epochs | " + " | ".join(
                    f"{100 * best[m]['value']:.2f} ({best[m]['epoch'] + 1})"
                    for m in RATIO_METRICS) + " |")
    lines.append("| authors' log (KDSR, image + text) | best over epochs | "
                 + " | ".join(f"{AUTHORS_RATIO[m]:.2f}" for m in RATIO_METRICS) + " |")
    return lines


def improvements(groups: dict, protocol: str) -> tuple[list[str], dict]:
    """Relative improvement (%) of kdsr's mean over the better baseline's mean, per metric
    (the better of id_only and feature_init for that metric), over the seeds all three ran."""
    lines = ["| backbone | seeds | better baseline by HR@10 | " + " | ".join(METRICS)
             + " | mean over HR@5/10/20 | same, paired by seed vs the HR@10-better baseline (mean ± std) |",
             "|---|---:|---|" + "---:|" * (len(METRICS) + 2)]
    summary = {}
    for backbone in MAIN_BACKBONES:
        runs = {v: groups.get((protocol, backbone, v)) or []
                for v in ("kdsr", "id_only", "feature_init")}
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
        spread = (f"{np.mean(per_seed):+.1f} ± {np.std(per_seed, ddof=1):.1f}% "
                  f"({len(per_seed)} seeds)" if len(per_seed) > 1 else "-")
        lines.append(f"| {backbone} | {len(seeds)} | {best_name} | "
                     + " | ".join(f"{rel[m]:+.1f}%" for m in METRICS)
                     + f" | {hr:+.1f}% | {spread} |")
        summary[backbone] = {"per_metric": rel, "mean_hr": hr, "seeds": sorted(seeds),
                             "baselines": sorted(bases), "per_seed_mean_hr": per_seed}
    return lines, summary


def per_seed_hr_difference(kdsr: list[dict], baseline: list[dict]) -> list[float]:
    """Relative difference (%) of kdsr over the baseline, mean over HR@5/10/20, per seed both
    ran with (paired by seed: the same data order and initialisation)."""
    base = {r["config"]["seed"]: r for r in baseline}
    return [float(np.mean([100 * (r["test"][m] - base[r["config"]["seed"]]["test"][m])
                           / base[r["config"]["seed"]]["test"][m] for m in HR_METRICS]))
            for r in kdsr if r["config"]["seed"] in base]


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
    """(label, epoch records) of every `results/beauty/extra/<label>/metrics.jsonl`."""
    runs = []
    for root, _, files in sorted(os.walk(EXTRA)):
        if "metrics.jsonl" in files:
            with open(os.path.join(root, "metrics.jsonl")) as f:
                records = [json.loads(line) for line in f if line.strip()]
            runs.append((os.path.relpath(root, EXTRA),
                         [r for r in records if r.get("kind") == "epoch"]))
    return runs


def valid_curves(cells: list[Cell]) -> list[tuple[str, list[dict]]]:
    """(label, epoch records) of the finished seed-0 leave-one-out cells, then the extras."""
    curves = [(f"{c.backbone}/{c.variant}{'-' + c.tag if c.tag else ''}", epoch_records(c))
              for c in cells
              if is_done(c) and c.seed == 0 and c.protocol == "leave_one_out"]
    return curves + [(f"extra: {label}", records) for label, records in extra_runs()]


def equal_budget_table(curves: list[tuple[str, list[dict]]], metric: str = "NDCG@10",
                       epochs: tuple[int, ...] = (5, 10, 20)) -> list[str]:
    """Validation metric (%) after the same number of epochs: budget-matched comparison."""
    lines = ["| run | " + " | ".join(f"valid {metric} after {e} epochs" for e in epochs)
             + " | best valid (epoch) |", "|---|" + "---:|" * (len(epochs) + 1)]
    for label, records in curves:
        values = {r["epoch"] + 1: r[f"valid/{metric}"] * 100 for r in records}
        best = max(records, key=lambda r: r[f"valid/{metric}"])
        lines.append(f"| {label} | " + " | ".join(
                f"{values[e]:.2f}" if e in values else "-" for e in epochs)
                + f" | {best[f'valid/{metric}'] * 100:.2f} ({best['epoch'] + 1}) |")
    return lines


def plot_valid_curves(curves: list[tuple[str, list[dict]]], path: str,
                      metric: str = "NDCG@10") -> None:
    backbones = sorted({label.split(": ")[-1].split("/")[0] for label, _ in curves})
    fig, axes = plt.subplots(1, len(backbones), figsize=(6 * len(backbones), 4.5), squeeze=False)
    for ax, backbone in zip(axes[0], backbones):
        for label, records in curves:
            if label.split(": ")[-1].split("/")[0] != backbone:
                continue
            style = ":" if label.startswith("extra") else ("-" if "kdsr" in label else "--")
            ax.plot([r["epoch"] + 1 for r in records],
                    [r[f"valid/{metric}"] * 100 for r in records], style, marker=".",
                    label=label)
        ax.set_xlabel("epochs trained")
        ax.set_ylabel(f"valid {metric} (%)")
        ax.set_title(f"Beauty validation {metric}: {backbone}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def agreement_curves(cells: list[Cell]) -> list[tuple[str, str, str, list[tuple[int, float]]]]:
    """(backbone, variant[-tag], view, [(epoch, agreement)]) of the finished seed-0
    leave-one-out cells that logged 'agreement/<view>' in their epoch records."""
    curves = []
    for cell in cells:
        if not (is_done(cell) and cell.seed == 0 and cell.protocol == "leave_one_out"):
            continue
        records = epoch_records(cell)
        variant = cell.variant + (f"-{cell.tag}" if cell.tag else "")
        for key in sorted({k for r in records for k in r if k.startswith("agreement/")}):
            points = [(r["epoch"], r[key]) for r in records if key in r]
            curves.append((cell.backbone, variant, key.split("/", 1)[1], points))
    return curves


def plot_agreement(curves: list[tuple[str, str, str, list[tuple[int, float]]]],
                   path: str) -> bool:
    """Teacher-student agreement per epoch (`agreement_curves`)."""
    if not curves:
        return False
    fig, ax = plt.subplots(figsize=(9, 5))
    for backbone, variant, view, points in curves:
        epochs, values = zip(*points)
        style = "-" if "kdsr" in variant else "--"
        ax.plot(epochs, values, style, marker=".", label=f"{backbone}/{variant} {view}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("Pearson(teacher corr, student table corr)")
    ax.set_title("Modality forgetting: agreement of the view tables with the teacher")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def agreement_table(curves: list[tuple[str, str, str, list[tuple[int, float]]]]) -> list[str]:
    """First and last logged teacher-student agreement per run and view."""
    lines = ["| run | view | after epoch 1 | at the end (epoch) |", "|---|---|---:|---:|"]
    for backbone, variant, view, points in curves:
        lines.append(f"| {backbone} / {variant} | {view} | {points[0][1]:.3f} | "
                     f"{points[-1][1]:.3f} ({points[-1][0] + 1}) |")
    return lines


def splice(path: str, sections: dict[str, list[str]]) -> list[str]:
    """Replaces the text between `<!-- summarize:NAME -->` and `<!-- /summarize:NAME -->` in
    `path` with section NAME, so the hand-written report always shows the current tables.
    Returns the names it replaced; the file is rewritten only if every marker pair is intact."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    replaced = []
    for name, body in sections.items():
        start, end = f"<!-- summarize:{name} -->", f"<!-- /summarize:{name} -->"
        if start not in text:
            continue
        if text.count(start) != 1 or text.count(end) != 1 or text.index(end) < text.index(start):
            raise ValueError(f"{path}: the markers of section {name!r} are not one ordered pair")
        head, rest = text.split(start)
        _, tail = rest.split(end)
        text = head + start + "\n" + "\n".join(body) + "\n" + end + tail
        replaced.append(name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return replaced


def build_sections(cells: list[Cell], groups: dict, curves: list | None = None,
                   agreement: list | None = None) -> tuple[dict[str, list[str]], dict]:
    """The report's tables (markdown lines by section name) and the summary JSON. `curves`
    (`valid_curves`) and `agreement` (`agreement_curves`) are read from disk when not given."""
    missing = [c.name for c in cells if not is_done(c)]
    sections: dict[str, list[str]] = {}

    main_rows = [(f"{b} / {v}", groups[("leave_one_out", b, v)])
                 for b in MAIN_BACKBONES for v in MAIN_VARIANTS
                 if ("leave_one_out", b, v) in groups]
    sections["main"] = metric_table(main_rows)
    sections["improvement"], imp = improvements(groups, "leave_one_out")
    abl_rows = [(f"{b} / {v}", groups[("leave_one_out", b, v)])
                for b in {c.backbone for c in cells if c.group == "ablation"}
                for v in ("kdsr", *ABLATIONS) if ("leave_one_out", b, v) in groups]
    sections["ablations"] = metric_table([(label, r[:1]) for label, r in abl_rows])
    inv_rows = [(f"{c.backbone} / {c.variant}-{c.tag}", [load(c)]) for c in cells
                if c.group == "investigation" and is_done(c)]
    sections["investigation"] = metric_table(inv_rows)
    ratio_rows = [(f"{c.backbone} / {c.variant}", [load(c)]) for c in cells
                  if c.group == "ratio" and is_done(c)]
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
            sections["teacher_signal"] = [line for line in f.read().splitlines()
                                          if line.startswith("|")]

    summary = {"improvement": imp, "missing": missing,
               "cells": {f"{p}/{b}/{v}": {m: mean_std(r, m) for m in METRICS}
                         for (p, b, v), r in groups.items()}}
    return sections, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--report", default="RESULTS.md",
                        help="markdown file whose <!-- summarize:NAME --> blocks are refreshed "
                             "('' to leave it alone)")
    args = parser.parse_args()
    cells = all_cells()
    groups = grouped(cells)
    curves, agreement = valid_curves(cells), agreement_curves(cells)
    sections, summary = build_sections(cells, groups, curves, agreement)
    titles = {
        "main": "Main table (leave-one-out)",
        "improvement": "Relative improvement of kdsr over the better of id_only and "
                       "feature_init",
        "ablations": "Ablations (seed 0 of kdsr for comparability)",
        "investigation": "Investigation: released autoencoder reduction instead of PCA "
                         "(seed 0)",
        "ratio": "Released `ratio` protocol beside the authors' log",
        "equal_budget": "Validation NDCG@10 after equal numbers of epochs (seed 0; extras: "
                        "longer runs)",
        "agreement": "Teacher-student agreement of the view tables (seed 0)",
        "wall_time": "Wall time (this 2-core CPU)",
        "missing": "Cells not finished",
        "teacher_signal": "Does feature similarity predict the next item? "
                          "(teacher_signal.py, test split)",
    }
    lines = ["# Beauty reproduction study: generated tables", "",
             "Test metrics in %, mean ± sample std over seeds, scored once at the best "
             "validation epoch (NDCG@10).", ""]
    for name, body in sections.items():
        lines += [f"## {titles[name]}", "", *body, ""]

    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "tables.md"), "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(RESULTS, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    if sections["main"][2:]:
        plot_main(groups, os.path.join(RESULTS, "main_comparison.png"))
    plot_agreement(agreement, os.path.join(RESULTS, "agreement.png"))
    if curves:
        plot_valid_curves(curves, os.path.join(RESULTS, "valid_curves.png"))
    print("\n".join(lines))
    if args.report and os.path.exists(args.report):
        print(f"refreshed in {args.report}: {', '.join(splice(args.report, sections)) or '-'}")


if __name__ == "__main__":
    main()
