"""Tables of the strong-baselines runs (issue 14) from `results/beauty/backbones/**`.

    python -m benchmarks.backbones.summarize

Writes the `<!-- summarize:backbones* -->` blocks of RESULTS.md: the final runs (mean ± std
over the finished seeds, test scored once at the best validation epoch) beside the published
and the RecBole-measured numbers, the validation grid (seed 0, one setting changed per run,
chosen on validation NDCG@10), and wall times. Only finished runs are shown; missing ones are
listed.
"""

from __future__ import annotations

import os

from benchmarks.backbones.cells import FINAL, GRID, SEEDS, Cell
from benchmarks.runner import REPO
from benchmarks.study import load, report, tables

RESULTS = os.path.join(REPO, "results", "beauty", "backbones")
REPORT = os.path.join(REPO, "RESULTS.md")
METRICS = ("HR@10", "NDCG@10", "HR@20", "NDCG@20", "MRR@10")
# Reference numbers of issue 14 (HR@10, NDCG@10), and where they come from.
REFERENCES = (
    (
        "RecBole 1.2.1 SASRec, CE, d 64, same split (measured on a 2-core CPU, 11 epochs, "
        "still rising; issue 14)",
        8.09,
        3.99,
    ),
    ("RecBole SASRec, CE, published user runs (RecBole issue 1290; LETTER issue 20)", 8.25, 4.10),
    ("SASRec with CE over the catalogue at every position (published)", 9.21, 5.31),
    ("eSASRec (RecSys 2025, published)", 9.28, 5.23),
    (
        "ours before issue 14: `sasrec` `id_only`, prefixes, 10-epoch cap "
        "(results/beauty/capped10)",
        6.96,
        3.75,
    ),
)


def run_folder(run: str, seed: int) -> str:
    """Where a run's seed lives (a study twin in the study's folder, see Cell.study_twin)."""
    twin = Cell(run, "", seed).study_twin
    if twin is not None:
        return os.path.join(REPO, "results", twin.name)
    return os.path.join(RESULTS, run, f"seed{seed}")


def finished(run: str) -> list[dict]:
    folders = [run_folder(run, seed) for seed in SEEDS]
    return [load.read_results(f) for f in folders if load.is_finished(f)]


def grid_rows() -> list[tuple[str, list[dict]]]:
    rows = []
    for backbone, cells in GRID.items():
        rows.append(
            (f"{backbone} defaults (= {backbone}-best seed 0)", finished(f"{backbone}-best")[:1])
        )
        rows += [(f"{backbone} {tag}", finished(f"grid/{backbone}-{tag}")) for tag in cells]
    return [(label, results) for label, results in rows if results]


def sections() -> dict[str, list[str]]:
    final = [(run, finished(run)) for run in FINAL]
    done = [(run, results) for run, results in final if results]
    lines = tables.metric_table(done, METRICS) if done else ["(no run has finished yet)"]
    lines += ["", "Reference numbers (not run by this table's code; HR@10 / NDCG@10 in %):", ""]
    lines += [f"- {label}: {hr:.2f} / {ndcg:.2f}" for label, hr, ndcg in REFERENCES]
    missing = [
        f"{run}/seed{seed}"
        for run, results in final
        for seed in SEEDS
        if seed not in {r["config"]["seed"] for r in results}
    ]
    if missing:
        lines += ["", "Not finished yet: " + ", ".join(missing) + "."]
    grid = grid_rows()
    grid_lines = (
        ["Test of the same runs (for information only; the choice uses validation):", ""]
        + tables.metric_table([(label, results) for label, results in grid], ("HR@10", "NDCG@10"))
        if grid
        else ["(no grid run has finished yet)"]
    )
    valid_lines = ["| run | valid HR@10 | valid NDCG@10 | best epoch |", "|---|---:|---:|---:|"]
    for label, results in grid:
        r = results[0]
        valid_lines.append(
            f"| {label} | {100 * r['valid']['HR@10']:.2f} | "
            f"{100 * r['valid']['NDCG@10']:.2f} | {r['best_epoch'] + 1} |"
        )
    timing = tables.timing_table(done + grid, stop=True) if done or grid else []
    return {
        "backbones": lines,
        "backbones_grid": valid_lines + [""] + grid_lines,
        "backbones_time": timing,
    }


def main() -> None:
    replaced = report.splice(REPORT, sections())
    print(f"RESULTS.md blocks rewritten: {replaced}")


if __name__ == "__main__":
    main()
