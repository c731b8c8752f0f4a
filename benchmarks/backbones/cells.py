"""The strong-baselines runs on Amazon Beauty (issue 14), as data.

Final runs (`results/beauty/backbones/<run>/seed<k>/`):
- `sasrec-recbole`: configs/recbole_sasrec.py, RecBole 1.2.1 SASRec's defaults (parity check);
- `sasrec-best`, `gru4rec-best`: configs/beauty.py:<backbone>,id_only, the defaults chosen on
  validation by the grid below.

Grid (`results/beauty/backbones/grid/<backbone>-<tag>/seed0/`): seed 0, each a change of ONE
setting against the chosen defaults, selected by validation NDCG@10 (test is never looked at
for the choice). `base` is the defaults themselves, i.e. the seed-0 run of `<backbone>-best`.

Order (what `run.py` does first): seed 0 of sasrec-best and gru4rec-best, the d 128 grid run,
the RecBole-parity run, the rest of the grid, then seeds 1 and 2 (a grid winner changes
configs/beauty.py before seeds 1-2 run; move the old `<backbone>-best/seed0` aside then).
"""

from __future__ import annotations

import dataclasses

from benchmarks.runner import train_command

SEEDS = (0, 1, 2)
FINAL = {
    "sasrec-best": "configs/beauty.py:sasrec,id_only",
    "gru4rec-best": "configs/beauty.py:gru4rec,id_only",
    "sasrec-recbole": "configs/recbole_sasrec.py",
}
# One setting changed against configs/beauty.py's defaults per grid cell. SASRec's training
# mode is compared by sasrec-recbole itself (prefixes, batch 2048, otherwise the same model).
GRID = {
    "sasrec": {
        "dim128": ("--config.model.dim=128",),
        "dropout0.3": ("--config.model.dropout=0.3",),
        "buckets50": ("--config.data.length_buckets=(50,)",),
        "lr2e-3": ("--config.optim.lr=0.002",),
        "prenorm": ("--config.model.sasrec.norm=pre", "--config.model.sasrec.layer_norm_eps=1e-6"),
    },
    "gru4rec": {
        "dropout0.5": ("--config.model.dropout=0.5",),
        "prefixes": ("--config.data.train_on=prefixes", "--config.batch_size=2048"),
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


def all_cells() -> list[Cell]:
    """Every run, in the order they are trained."""
    first = [Cell(run, config, 0) for run, config in FINAL.items()]
    grid = [
        Cell(f"grid/{backbone}-{tag}", FINAL[f"{backbone}-best"], 0, overrides)
        for backbone, cells in GRID.items()
        for tag, overrides in cells.items()
    ]
    rest = [Cell(run, config, seed) for seed in SEEDS[1:] for run, config in FINAL.items()]
    # The parity run (prefixes) early: it tells whether our SASRec matches RecBole's; then
    # the rest of the grid, which decides the defaults of sasrec-best / gru4rec-best.
    return first[:2] + grid[:1] + first[2:] + grid[1:3] + grid[-1:] + grid[3:-1] + rest
