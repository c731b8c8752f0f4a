"""The Beauty study's runner and report (`benchmarks/reproduce/`).

Reads the committed `results/beauty/capped10/**` (no training): the tables in RESULTS.md must be
the ones `summarize.py` builds from the committed results, so the report cannot drift from the data.
"""

from __future__ import annotations

import os
import re

import pytest

from benchmarks.reproduce import cells as study
from benchmarks.reproduce import summarize
from benchmarks.study.report import splice

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

BLOCK = re.compile(r"<!-- summarize:(\w+) -->\n(.*?)\n<!-- /summarize:\1 -->", re.S)


def test_cells_are_unique_and_ordered_seed_zero_first():
    cells = study.all_cells()
    names = [c.name for c in cells]
    assert len(names) == len(set(names))
    main = [c for c in cells if c.group == "main"]
    assert len(main) == len(study.MAIN_BACKBONES) * len(study.MAIN_VARIANTS) * len(study.SEEDS)
    first_other_seed = next(i for i, c in enumerate(cells) if c.seed != 0)
    assert all(c.seed == 0 for c in cells[:first_other_seed])
    assert {c.group for c in cells[:first_other_seed]} == {
        "main",
        "ablation",
        "ratio",
        "investigation",
    }
    # Only the ratio cells score test every epoch (for the best-of-test comparison).
    for cell in cells:
        command = " ".join(cell.command("w"))
        assert ("--config.eval.per_epoch=('agreement','test')" in command) == (
            cell.group == "ratio"
        )
        assert f"--config.seed={cell.seed}" in command
        assert f"--config.data.protocol={cell.protocol}" in command


def test_report_tables_match_the_committed_results():
    with open(os.path.join(ROOT, "RESULTS.md"), encoding="utf-8") as f:
        blocks = {
            name: text
            for name, text in BLOCK.findall(f.read())
            # the full study's and the backbones' blocks: tests/test_study.py
            if not name.startswith(("study_", "backbones"))
        }
    assert {"main", "improvement", "ablations", "ratio", "agreement"} <= set(blocks)
    cwd = os.getcwd()
    os.chdir(ROOT)  # the study's paths are relative to the repository root
    try:
        cells = study.all_cells()
        sections, _ = summarize.build_sections(cells, summarize.grouped(cells))
    finally:
        os.chdir(cwd)
    for name, text in blocks.items():
        assert text == "\n".join(sections[name]), f"RESULTS.md block {name!r} is stale"


def test_splice_replaces_marked_blocks_and_refuses_broken_markers(tmp_path):
    path = tmp_path / "report.md"
    path.write_text("intro\n<!-- summarize:main -->\nold\n<!-- /summarize:main -->\nend\n")
    assert splice(str(path), {"main": ["| a |", "| b |"], "other": ["x"]}) == ["main"]
    assert path.read_text() == (
        "intro\n<!-- summarize:main -->\n| a |\n| b |\n<!-- /summarize:main -->\nend\n"
    )
    broken = "<!-- /summarize:main -->\n<!-- summarize:main -->\n"
    path.write_text(broken)
    with pytest.raises(ValueError, match="main"):
        splice(str(path), {"main": ["y"]})
    assert path.read_text() == broken  # nothing written half-way


def test_teacher_signal_auc_and_tie_broken_ranks_match_brute_force():
    import numpy as np

    from benchmarks.reproduce import teacher_signal

    rng = np.random.default_rng(0)
    positive, negative = rng.integers(0, 6, 300) * 0.5, rng.integers(0, 7, 400) * 0.5
    brute = (positive[:, None] > negative[None, :]).mean() + 0.5 * (
        positive[:, None] == negative[None, :]
    ).mean()
    assert teacher_signal.auc(positive, negative) == pytest.approx(brute)
    # Ties are broken at random: a target tied with every item gets a uniform rank.
    scores = np.zeros((20_000, 11))
    ranks = teacher_signal.tie_broken_ranks(scores, np.full(20_000, 3), rng)
    assert ranks.min() == 1 and ranks.max() == 11 and abs(ranks.mean() - 6) < 0.1
    scores[:, 3] = 1.0  # strictly best: always rank 1
    assert (teacher_signal.tie_broken_ranks(scores, np.full(20_000, 3), rng) == 1).all()
