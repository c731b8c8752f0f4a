"""The cells of the full study (issue 15), as data, in the order they are run.

A cell is one training run. Main cells: dataset x backbone x variant x seed, each to early
stopping (no epoch cap), results at `results/<dataset>/leave_one_out/<backbone>/<variant>/
seed<k>/`. The search (`search.py`) runs on Beauty / SASRec seed 0 under
`results/beauty/search/sasrec/<point>/seed0/`; its selection file turns into the overrides
of `kdsr_tuned`, which cannot be built before (`pending`).

No run is trained twice: once the search has chosen, the `kdsr_tuned` cell that is the chosen
point's own search run (Beauty / SASRec seed 0; every `kdsr_tuned` cell if the defaults win)
is not queued but read from that run's folder (`Cell.twin`, `Cell.stored_as`).

Order: seed 0 of every dataset's main cells (Beauty first; `RUN_BACKBONES` and `RUN_ORDER`
within), then the search, then the `kdsr_tuned` seed-0 cells, the ablations' seed 0, seeds 1-2
of the main cells, and last the ablations' seeds 1-2. A partial study is therefore already a
single-seed comparison on every dataset, then gains its tuned variant, then its error bars.
"""

from __future__ import annotations

import dataclasses
import os

from benchmarks.runner import train_command
from benchmarks.study import search

DATASETS = {
    "beauty": "configs/beauty.py",
    "sports": "configs/sports.py",
    "toys": "configs/toys.py",
}  # beauty: views title + attr; sports, toys: text
BACKBONES = ("sasrec", "session_graph")
# Run order within a dataset: the paper's backbone first, since SASRec's defaults could still
# change with issue 14's grid on prefixes (benchmarks/backbones, RESULTS.md "Backbones").
RUN_BACKBONES = ("session_graph", "sasrec")
BASELINES = ("id_only", "feature_init")  # "the better baseline" is the better of these
KD_VARIANTS = ("kdsr", "kdsr_released", "kdsr_tuned")  # compared against it
# The control: the teacher's features fixed in the tables, no distillation. A KD variant
# against it asks whether distilling adds anything over using the features as they are.
CONTROL = "frozen_features"
MAIN_VARIANTS = (
    "id_only",
    "feature_init",
    "frozen_features",
    "kdsr",
    "kdsr_released",
    "kdsr_tuned",
)
TUNED = "kdsr_tuned"  # kdsr with the search's selected overrides
# Within a dataset and backbone: the baselines, then the distilled variants, so the first
# finished cells already answer "does kdsr beat the better baseline?"; frozen_features last.
RUN_ORDER = ("id_only", "feature_init", "kdsr", "kdsr_released", "frozen_features", "kdsr_tuned")
ABLATION_DATASET, ABLATION_BACKBONE = "beauty", "sasrec"
ABLATIONS = ("kdsr_no_holistic", "kdsr_no_codes", "kdsr_no_async")
SEARCH_DATASET, SEARCH_BACKBONE = "beauty", "sasrec"
SEEDS = (0, 1, 2)
PROTOCOL = "leave_one_out"


@dataclasses.dataclass(frozen=True)
class Cell:
    """One training run of the study."""

    group: str  # main | search | ablation
    dataset: str
    backbone: str
    variant: str  # the folder name (kdsr_tuned, a search point's tag, ...)
    seed: int = 0
    overrides: tuple[str, ...] = ()
    twin: str = ""  # another cell's name if that cell is this very run (see `twin_of`)

    @property
    def name(self) -> str:
        """Folder under the results root (`results/`) and the runs root (`runs/study/`)."""
        section = "search" if self.group == "search" else PROTOCOL
        return f"{self.dataset}/{section}/{self.backbone}/{self.variant}/seed{self.seed}"

    @property
    def stored_as(self) -> str:
        """The results folder holding this run: its twin's if it has one (never trained
        twice), else its own."""
        return self.twin or self.name

    @property
    def trained_variant(self) -> str:
        """The trainer's `model.variant` (tuned and search cells are `kdsr` with overrides)."""
        return "kdsr" if self.group == "search" or self.variant == TUNED else self.variant

    def command(self, workdir: str) -> list[str]:
        """The training command line (run from the repo root); no epoch cap."""
        return train_command(
            f"{DATASETS[self.dataset]}:{self.backbone},{self.trained_variant}",
            workdir,
            self.seed,
            f"--config.data.protocol={PROTOCOL}",
            *self.overrides,
        )


def selection_path(results_root: str) -> str:
    """The committed search selection, read by the kdsr_tuned cells."""
    return os.path.join(results_root, SEARCH_DATASET, "search", SEARCH_BACKBONE, "selection.json")


def main_cells(seeds, tuned: tuple[str, ...] | None) -> list[Cell]:
    """Main cells of `seeds`, datasets in DATASETS order; kdsr_tuned only when `tuned` (its
    overrides) is known."""
    return [
        Cell("main", d, b, v, s, tuned if v == TUNED else ())
        for s in seeds
        for d in DATASETS
        for b in RUN_BACKBONES
        for v in RUN_ORDER
        if v != TUNED or tuned is not None
    ]


def search_cell(point: tuple[float, float, float]) -> Cell:
    """The cell scoring a design point; kdsr's defaults are its seed-0 main cell."""
    if point == search.DEFAULT:
        return Cell("main", SEARCH_DATASET, SEARCH_BACKBONE, "kdsr", 0)
    return Cell(
        "search", SEARCH_DATASET, SEARCH_BACKBONE, search.tag(point), 0, search.overrides(point)
    )


def search_cells() -> list[Cell]:
    """The search's own runs (every design point but the defaults)."""
    return [search_cell(p) for p in search.points() if p != search.DEFAULT]


def ablation_cells(seeds) -> list[Cell]:
    return [
        Cell("ablation", ABLATION_DATASET, ABLATION_BACKBONE, v, s)
        for s in seeds
        for v in ABLATIONS
    ]


def twin_of(cell: Cell, selected: str) -> str:
    """Name of the cell that is `cell`'s very run once the search selected the point tagged
    `selected`, or "". A kdsr_tuned cell on the search's dataset and backbone at seed 0 is the
    selected point's own search run (the same command line); with the defaults selected,
    every kdsr_tuned cell is its kdsr cell (the same config: no overrides are its defaults)."""
    if cell.variant != TUNED:
        return ""
    if selected == search.tag(search.DEFAULT):
        return Cell("main", cell.dataset, cell.backbone, "kdsr", cell.seed).name
    if (cell.dataset, cell.backbone, cell.seed) == (SEARCH_DATASET, SEARCH_BACKBONE, 0):
        (point,) = [p for p in search.points() if search.tag(p) == selected]
        return search_cell(point).name
    return ""


def all_cells(results_root: str) -> list[Cell]:
    """Every cell that can be built now, in run order (kdsr_tuned needs the selection; a
    tuned cell that is another cell's run carries that cell's name as its `twin`)."""
    selection = search.read_selection(selection_path(results_root))
    tuned = tuple(selection["overrides"]) if selection else None
    first, rest = SEEDS[:1], SEEDS[1:]
    main_first = main_cells(first, tuned)
    tuned_first = [c for c in main_first if c.variant == TUNED]
    cells = (
        [c for c in main_first if c.variant != TUNED]
        + search_cells()
        + tuned_first
        + ablation_cells(first)
        + main_cells(rest, tuned)
        + ablation_cells(rest)
    )
    if not selection:
        return cells
    return [dataclasses.replace(c, twin=twin_of(c, selection["selected"])) for c in cells]


def tuned_cells() -> list[Cell]:
    """The kdsr_tuned cells, without overrides (pending while the selection file is missing)."""
    return [c for c in main_cells(SEEDS, ()) if c.variant == TUNED]


def tuned_names() -> list[str]:
    """Names of the kdsr_tuned cells."""
    return [c.name for c in tuned_cells()]
