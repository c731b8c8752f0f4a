"""The strong-baselines runs on Amazon Beauty (issue 14), as data.

Final runs (`results/beauty/backbones/<run>/seed<k>/`):
- `sasrec-recbole`: configs/recbole_sasrec.py, RecBole 1.2.1 SASRec's defaults (parity check);
- `sasrec-best`, `gru4rec-best`: configs/beauty.py:<backbone>,id_only, the defaults chosen on
  validation by the grid below.

Grid (`results/beauty/backbones/grid/<backbone>-<tag>/seed0/`): seed 0, each a change of ONE
setting against the chosen defaults, selected by validation NDCG@10 (test is never looked at
for the choice). `base` is the defaults themselves, i.e. the seed-0 run of `<backbone>-best`.

Order (what `run.py` does first): see `all_cells`. When a grid run wins and changes
configs/beauty.py, the old `<backbone>-best/seed0` moves to the grid under the name of what it
was (as `sasrec-best/seed0` became `grid/sasrec-sequences`).
"""

from __future__ import annotations

import dataclasses

from benchmarks.runner import train_command
from benchmarks.study import cells as study

SEEDS = (0, 1, 2)
FINAL = {
    "sasrec-best": "configs/beauty.py:sasrec,id_only",
    "gru4rec-best": "configs/beauty.py:gru4rec,id_only",
    "sasrec-recbole": "configs/recbole_sasrec.py",
}
# One setting changed against configs/beauty.py's defaults per grid cell. SASRec's training
# mode is compared by sasrec-recbole itself (prefixes, batch 2048, otherwise the same model).
SEQUENCES = ("--config.data.train_on=sequences", "--config.batch_size=128")
GRID = {
    # SASRec trained on whole sequences (the first defaults; prefixes won on validation),
    # then one change at a time against the prefix defaults.
    "sasrec": {
        "sequences": SEQUENCES,
        "sequences-dim128": (*SEQUENCES, "--config.model.dim=128"),
        "sequences-dropout0.3": (*SEQUENCES, "--config.model.dropout=0.3"),
        "sequences-buckets50": (*SEQUENCES, "--config.data.length_buckets=(50,)"),
        # Whole sequences with ~3000 targets per step, near the prefix recipe's 2048:
        # does the smaller batch (more, noisier steps per epoch) explain the overfitting?
        "sequences-batch512": ("--config.data.train_on=sequences", "--config.batch_size=512"),
        "dim128": ("--config.model.dim=128",),
        "dropout0.3": ("--config.model.dropout=0.3",),
        "prenorm": ("--config.model.sasrec.norm=pre", "--config.model.sasrec.layer_norm_eps=1e-6"),
        # ~65 steps per epoch at batch 2048: does a larger step learn faster or better?
        "lr0.002": ("--config.optim.lr=0.002",),
    },
    "gru4rec": {
        # GRU4Rec on whole sequences (the first defaults; prefixes won on validation)
        "sequences": SEQUENCES,
        "dropout0.5": ("--config.model.dropout=0.5",),
    },
}


@dataclasses.dataclass(frozen=True)
class Cell:
    """One training run."""

    run: str  # folder under results/beauty/backbones/, e.g. sasrec-best or grid/sasrec-dim128
    config: str  # --config argument
    seed: int = 0
    overrides: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.run}/seed{self.seed}"

    def command(self, workdir: str) -> list[str]:
        return train_command(self.config, workdir, self.seed, *self.overrides)

    @property
    def study_twin(self) -> study.Cell | None:
        """The study cell that is this very run, or None.

        `sasrec-best` is configs/beauty.py:sasrec,id_only, which is also the full study's
        Beauty / SASRec / id_only cell (issue 15; the same command line, tested), so it is
        trained once and kept where the study keeps it (`results/beauty/leave_one_out/
        sasrec/id_only/seed<k>/`), whichever runner reaches it first.
        """
        if self.run == "sasrec-best":
            return study.Cell("main", "beauty", "sasrec", "id_only", self.seed)
        return None


def all_cells() -> list[Cell]:
    """Every run, in the order they are trained."""
    final = {
        (run, seed): Cell(run, config, seed) for seed in SEEDS for run, config in FINAL.items()
    }
    grid = {
        f"{backbone}-{tag}": Cell(f"grid/{backbone}-{tag}", FINAL[f"{backbone}-best"], 0, overrides)
        for backbone, cells in GRID.items()
        for tag, overrides in cells.items()
    }
    # The whole-sequence runs that decided the training mode and the parity run came first
    # (committed). Then the cheap test of whether a larger whole-sequence batch closes the
    # gap to prefixes (it would make the study 3-4x cheaper), the parity seeds, GRU4Rec on
    # prefixes (now gru4rec-best seed 0; the whole-sequence run it replaced is
    # grid/gru4rec-sequences), sasrec-best seed 0 (= the study's first SASRec cell) and
    # gru4rec-best seed 1. Then SASRec's grid on prefixes, before the study's other SASRec
    # cells depend on its defaults, GRU4Rec's last seed and grid run, sasrec-best's seeds, and
    # last the remaining whole-sequence grid (prefixes won; kept for the record).
    first = [grid["sasrec-sequences"], grid["sasrec-sequences-dim128"], final["sasrec-recbole", 0]]
    first += [final["gru4rec-best", 0], grid["sasrec-sequences-batch512"]]
    first += [final["sasrec-recbole", 1], final["sasrec-recbole", 2], grid["gru4rec-sequences"]]
    first += [final["sasrec-best", 0], final["gru4rec-best", 1]]
    first += [grid[f"sasrec-{tag}"] for tag in ("dim128", "dropout0.3", "prenorm", "lr0.002")]
    first += [final["gru4rec-best", 2], grid["gru4rec-dropout0.5"]]
    first += [final["sasrec-best", 1], final["sasrec-best", 2]]
    rest = [c for c in [*grid.values(), *final.values()] if c not in first]
    return first + rest
