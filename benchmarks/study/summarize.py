"""Tables and plots of the full study (issue 15) from whatever cells have finished.

    python -m benchmarks.study.summarize            # also refreshes RESULTS.md's study blocks
    python -m benchmarks.study.summarize --report ''

Writes `results/study/tables.md` and `summary.json`, the validation curves and the
modality-forgetting (agreement) curves per dataset (`results/study/*.png`), and the
`<!-- summarize:study_* -->` blocks of RESULTS.md. Every table covers only finished cells;
the rest are listed in `study_missing` (kdsr_tuned as pending until the search has chosen).
Gains: each KD variant against the better baseline (id_only / feature_init by mean test
HR@10) over the seeds both finished: per-seed paired differences, and a paired bootstrap CI
over the same test users from `test_ranks.npy` (`stats.paired_bootstrap`, seeded). The same
comparison against the control (`frozen_features`) says what distillation adds over the
teacher's features used as they are.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from benchmarks.runner import REPO
from benchmarks.study import cells as study
from benchmarks.study import estimate, load, search, stats, tables
from benchmarks.study.plots import plot_agreement, plot_valid_curves
from benchmarks.study.report import splice, write_tables

PAPER_HR_GAIN = 6.8  # the paper's claim: KDSR +6.8% average HR over the best baseline
BOOTSTRAP_SEED = 0
TITLES = {
    "study_verdict": f"Verdict against the paper's +{PAPER_HR_GAIN:g}% HR",
    "study_gain": "Gain of each KD variant over the better baseline (points; CI: paired "
    "bootstrap over test users)",
    "study_control": "Each KD variant against the control, frozen_features (teacher "
    "features fixed, no distillation; points; CI: paired bootstrap over test users)",
    "study_main": "Main table (leave-one-out, test, %, mean ± std over seeds)",
    "study_search": "Loss-weight search (Beauty, SASRec, seed 0, validation NDCG@10)",
    "study_ablations": "Ablations (Beauty, SASRec)",
    "study_agreement": "Modality forgetting: agreement of the view tables with the teacher "
    "(seed 0)",
    "study_wall_time": "Wall time",
    "study_missing": "Cells not finished, with estimated runner-minutes (benchmarks/study/estimate.py)",
}


def folder(root: str, cell: study.Cell) -> str:
    return os.path.join(root, cell.stored_as)


def finished(
    root: str, with_search: bool = False
) -> dict[tuple[str, str, str], list[tuple[study.Cell, dict]]]:
    """(dataset, backbone, variant) -> [(cell, results.json)] of the finished main and
    ablation cells, in seed order; with the search's points too if `with_search` (their
    timings count for the estimates, their results stay out of the tables)."""
    groups: dict[tuple[str, str, str], list[tuple[study.Cell, dict]]] = {}
    for cell in study.all_cells(root):
        if (with_search or cell.group != "search") and load.is_finished(folder(root, cell)):
            groups.setdefault((cell.dataset, cell.backbone, cell.variant), []).append(
                (cell, load.read_results(folder(root, cell)))
            )
    return groups


def results_of(runs: list[tuple[study.Cell, dict]], seeds=None) -> list[dict]:
    return [r for c, r in runs if seeds is None or c.seed in seeds]


def comparisons(root: str, groups: dict, names: tuple[str, ...]) -> list[dict]:
    """Every KD variant against the best of the variants `names` (the baselines, or the
    control alone) on its dataset and backbone, over the seeds all compared finished."""
    out = []
    for dataset in study.DATASETS:
        for backbone in study.BACKBONES:
            bases = {
                v: groups[(dataset, backbone, v)] for v in names if (dataset, backbone, v) in groups
            }
            for variant in study.KD_VARIANTS:
                found = compare(root, groups, (dataset, backbone, variant), bases)
                out += [found] if found else []
    return out


def compare(root: str, groups: dict, key: tuple[str, str, str], bases: dict) -> dict | None:
    """One variant against the best of `bases` (by mean test HR@10 over the seeds all of them
    finished): per-seed differences and the paired bootstrap; None without a common seed."""
    runs = groups.get(key)
    if not runs or not bases:
        return None
    seeds = set.intersection(*({c.seed for c, _ in rs} for rs in (runs, *bases.values())))
    if not seeds:
        return None
    base = stats.better_baseline(
        {v: results_of(rs, seeds) for v, rs in bases.items()}, tuple(bases)
    )
    mine, theirs = results_of(runs, seeds), results_of(bases[base], seeds)
    dataset, backbone, variant = key
    return {
        "dataset": dataset,
        "backbone": backbone,
        "variant": variant,
        "baseline": base,
        "seeds": sorted(seeds),
        "per_seed": {m: stats.per_seed_difference(mine, theirs, m) for m in stats.GAIN_METRICS},
        "bootstrap": bootstrap(root, runs, bases[base], seeds),
    }


def bootstrap(root: str, runs, base_runs, seeds) -> dict | None:
    """The paired bootstrap from both runs' per-user ranks, row i of both from the same seed
    (None if a seed lacks them)."""
    mine, theirs = (
        {c.seed: load.test_ranks(folder(root, c)) for c, _ in rs if c.seed in seeds}
        for rs in (runs, base_runs)
    )
    if any(r is None for r in (*mine.values(), *theirs.values())):
        return None
    return stats.paired_bootstrap(
        np.stack([mine[s] for s in sorted(seeds)]),
        np.stack([theirs[s] for s in sorted(seeds)]),
        seed=BOOTSTRAP_SEED,
    )


def search_points(root: str) -> tuple[list[dict], str | None]:
    """Every design point with its validation score (None until it ran) and the selection."""
    selection = search.read_selection(study.selection_path(root))
    rows = []
    for point in search.points():
        path = folder(root, study.search_cell(point))
        valid = load.read_results(path)["valid"][search.METRIC] if load.is_finished(path) else None
        rows.append(
            {
                "point": search.tag(point),
                "lambda_hol": point[0],
                "lambda_code": point[1],
                "tau": point[2],
                "valid": valid,
            }
        )
    return rows, selection["selected"] if selection else None


def missing(root: str) -> list[str]:
    """Unfinished cells, grouped by run, with the seeds still to do and the estimated
    runner-minutes of each (`estimate`, from every finished cell's timing, the search's
    included), then the estimated total."""
    minutes, cases = estimate.measured(finished(root, with_search=True))
    cases = estimate.with_data_cases(cases)
    todo: dict[str, list[study.Cell]] = {}
    twins = []  # no time of their own: their twin is listed
    for cell in study.all_cells(root):
        if load.is_finished(folder(root, cell)):
            continue
        if cell.twin:
            twins.append(f"- {cell.name}: the run of {cell.twin} (no time of its own)")
        else:
            key = f"{cell.group}: {cell.dataset} / {cell.backbone} / {cell.variant}"
            todo.setdefault(key, []).append(cell)
    pending = [] if search.read_selection(study.selection_path(root)) else study.tuned_cells()
    lines, estimates = [], []
    for key, todo_cells in todo.items():
        found = estimate.estimate(todo_cells[0], minutes, cases)
        estimates += [found] * len(todo_cells)
        seeds = ", ".join(str(c.seed) for c in todo_cells)
        lines.append(f"- {key}: seed {seeds} ({_each(found)})")
    if pending:
        found = [estimate.estimate(c, minutes, cases) for c in pending]
        estimates += found
        known = [e.minutes for e in found if e.minutes is not None]
        lines.append(
            f"- pending until the search has chosen: {study.TUNED} on every dataset "
            f"and backbone, seed {', '.join(map(str, study.SEEDS))} (~{sum(known):.0f} min "
            f"for {len(known)} of its {len(found)} cells, each as its dataset's and "
            "backbone's kdsr)"
        )
    if not lines:
        return twins or ["(none)"]
    return lines + twins + [estimate.total_line(estimates)]


def _each(found: estimate.Estimate) -> str:
    if found.minutes is None:
        return found.basis
    return f"~{found.minutes:.0f} min each: {found.basis}"


def curves(root: str, groups: dict, dataset: str) -> tuple[list, list]:
    """Seed-0 validation curves and agreement curves of one dataset's finished cells."""
    valid, agreement = [], []
    for (d, backbone, variant), runs in groups.items():
        if d != dataset or runs[0][0].seed != 0:
            continue
        records = load.epoch_records(folder(root, runs[0][0]))
        valid.append((f"{backbone}/{variant}", records))
        agreement += [
            (f"{dataset} / {backbone} / {variant}", view, points)
            for view, points in load.agreement_points(records).items()
        ]
    return valid, agreement


def build_sections(root: str) -> tuple[dict[str, list[str]], dict]:
    """The report's tables (markdown lines by section name) and the summary JSON."""
    groups = finished(root)
    main = [
        (" / ".join(k), results_of(groups[k]))
        for k in (
            (d, b, v) for d in study.DATASETS for b in study.BACKBONES for v in study.MAIN_VARIANTS
        )
        if k in groups
    ]
    ablations = [
        (" / ".join(k), results_of(groups[k]))
        for k in (
            (study.ABLATION_DATASET, study.ABLATION_BACKBONE, v) for v in ("kdsr", *study.ABLATIONS)
        )
        if k in groups
    ]
    found = comparisons(root, groups, study.BASELINES)
    against_control = comparisons(root, groups, (study.CONTROL,))
    points, selected = search_points(root)
    sections = {
        "study_verdict": [tables.verdict(g, PAPER_HR_GAIN) for g in found]
        or ["(no comparison has finished yet)"],
        "study_gain": tables.gain_table(found),
        "study_control": tables.gain_table(against_control, baseline_header="control"),
        "study_main": tables.metric_table(main),
        "study_search": tables.search_table(points, selected),
        "study_ablations": tables.metric_table(ablations),
        "study_agreement": tables.agreement_table(
            [row for d in study.DATASETS for row in curves(root, groups, d)[1]]
        ),
        "study_wall_time": tables.timing_table(
            main + [row for row in ablations if row[0] not in dict(main)],
            stop=True,
            host_memory=True,
        ),
        "study_missing": missing(root),
    }
    summary = {
        "gains": found,
        "controls": against_control,
        "search": {"points": points, "selected": selected},
        "means": {
            label: {m: stats.mean_std(r, m) for m in stats.METRICS} for label, r in main + ablations
        },
    }
    return sections, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--results",
        default=os.path.join(REPO, "results"),
        help="the results root the study's cells were copied to",
    )
    parser.add_argument(
        "--report",
        default=os.path.join(REPO, "RESULTS.md"),
        help="markdown file whose <!-- summarize:study_* --> blocks are "
        "refreshed ('' to leave it alone)",
    )
    args = parser.parse_args()
    out = os.path.join(args.results, "study")
    sections, summary = build_sections(args.results)
    heading = [
        "# Full study (issue 15): generated tables",
        "",
        "Test metrics in %, scored once at the best validation epoch (NDCG@10); "
        "only finished cells.",
        "",
    ]
    print(write_tables(os.path.join(out, "tables.md"), heading, sections, TITLES))
    with open(os.path.join(out, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    groups = finished(args.results)
    for dataset in study.DATASETS:
        valid, agreement = curves(args.results, groups, dataset)
        if valid:
            plot_valid_curves(
                valid, os.path.join(out, f"valid_curves_{dataset}.png"), title=dataset.capitalize()
            )
        plot_agreement(
            agreement,
            os.path.join(out, f"agreement_{dataset}.png"),
            title=f"{dataset.capitalize()}: ",
        )
    if args.report and os.path.exists(args.report):
        print(f"refreshed in {args.report}: {', '.join(splice(args.report, sections)) or '-'}")


if __name__ == "__main__":
    main()
