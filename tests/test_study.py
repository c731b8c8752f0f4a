"""The full study's machinery (`benchmarks/study/`): statistics, cell list, search selection,
runner copying and a summary of a partial study, all on tiny fake results (no training)."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys

import numpy as np
import pytest

from benchmarks import runner
from benchmarks.study import cells as study
from benchmarks.study import estimate, load, patience, search, stats, summarize, tables
from benchmarks.study import run as study_run
from benchmarks.study.report import splice
from corrkd_jax.trainer.config_files import load_config_file

# ------------------------------------------------------------------------------ statistics


def test_bootstrap_of_identical_ranks_is_zero():
    ranks = np.random.default_rng(0).integers(1, 100, (2, 500))
    for gain in stats.paired_bootstrap(ranks, ranks).values():
        assert gain == {"diff": 0.0, "low": 0.0, "high": 0.0}


def test_bootstrap_ci_holds_a_known_shift_and_is_seeded():
    rng = np.random.default_rng(1)
    users = 4000
    base = rng.integers(1, 60, users)
    # 10% of the users move from rank > 10 to rank 1: the HR@10 gain in the population is
    # 10 points x P(rank > 10) = 10 x 49/59.
    better = np.where(rng.random(users) < 0.1, 1, base)
    gains = stats.paired_bootstrap(better, base, seed=3)
    true_shift = 10 * 49 / 59
    hr = gains["HR@10"]
    assert hr["low"] < true_shift < hr["high"]
    assert hr["diff"] == pytest.approx(100 * ((better <= 10).mean() - (base <= 10).mean()))
    assert gains["NDCG@10"]["low"] > 0 and gains["rel_HR"]["low"] > 0
    assert stats.paired_bootstrap(better, base, seed=3) == gains  # seeded: reproducible
    assert stats.paired_bootstrap(better, base, seed=4)["HR@10"]["low"] != hr["low"]
    with pytest.raises(ValueError, match="unpaired"):
        stats.paired_bootstrap(better[None], np.stack([base, base]))


def test_per_seed_differences_pair_by_seed():
    def result(seed, hr):
        return {"config": {"seed": seed}, "test": {"HR@10": hr}}

    mine = [result(0, 0.10), result(2, 0.12)]
    theirs = [result(2, 0.11), result(1, 0.5), result(0, 0.08)]
    assert stats.per_seed_difference(mine, theirs, "HR@10") == pytest.approx([2.0, 1.0])


# ------------------------------------------------------------------------------ cells


def test_cell_list_counts_and_order(tmp_path):
    cells = study.all_cells(str(tmp_path))  # no selection: kdsr_tuned is pending
    per_seed = len(study.DATASETS) * len(study.BACKBONES) * (len(study.MAIN_VARIANTS) - 1)
    points = len(search.points()) - 1  # the defaults are kdsr's own seed-0 cell
    ablations = len(study.ABLATIONS) * len(study.SEEDS)
    assert len(cells) == per_seed * len(study.SEEDS) + points + ablations
    assert len({c.name for c in cells}) == len(cells)
    first = cells[:per_seed]  # seed 0 of every dataset's main cells first, Beauty first
    assert all(c.group == "main" and c.seed == 0 for c in first)
    assert [c.dataset for c in first] == sorted(
        [c.dataset for c in first], key=list(study.DATASETS).index
    )
    assert first[0].dataset == "beauty"
    assert sorted(study.RUN_ORDER) == sorted(study.MAIN_VARIANTS)
    assert sorted(study.RUN_BACKBONES) == sorted(study.BACKBONES)
    # the baselines, then kdsr: the first comparison lands before frozen_features
    assert [c.variant for c in first[:3]] == ["id_only", "feature_init", "kdsr"]
    groups = [c.group for c in cells]
    assert groups.index("search") == per_seed < groups.index("ablation")
    assert [c.seed for c in cells if c.group == "main"][per_seed] == 1
    for cell in cells:
        command = " ".join(cell.command("w"))
        assert "num_epochs" not in command  # no epoch cap: early stopping ends runs
        assert f"--config.seed={cell.seed}" in command
    assert not any(c.variant == study.TUNED for c in cells)


def test_tuned_cells_follow_the_selection(tmp_path):
    selection = search.select({p: 0.01 * i for i, p in enumerate(search.points())})
    search.write_selection(study.selection_path(str(tmp_path)), selection)
    cells = study.all_cells(str(tmp_path))
    tuned = [c for c in cells if c.variant == study.TUNED]
    assert len(tuned) == len(study.DATASETS) * len(study.BACKBONES) * len(study.SEEDS)
    command = tuned[0].command("w")
    assert f"{study.DATASETS[tuned[0].dataset]}:{tuned[0].backbone},kdsr" in command
    assert list(search.overrides(search.points()[-1])) == command[-3:]
    # seed-0 tuned cells come right after the search, before the ablations
    groups = [c.group for c in cells]
    first_tuned = cells.index(tuned[0])
    assert groups[first_tuned - 1] == "search" and tuned[0].seed == 0
    assert groups.index("ablation") > first_tuned


def test_fractional_design_covers_the_weight_grid():
    points = search.points("fractional")
    assert search.DEFAULT in points and len(points) == 9
    assert {(h, c) for h, c, _ in points} == {
        (h, c) for h in search.LAMBDA_HOL for c in search.LAMBDA_CODE
    }
    assert {t for _, _, t in points} == set(search.TAU)
    for tau in search.TAU:  # every tau level meets every level of both weights
        assert {h for h, _, t in points if t == tau} == set(search.LAMBDA_HOL)
        assert {c for _, c, t in points if t == tau} == set(search.LAMBDA_CODE)
    assert len(search.points("full")) == 18


# ------------------------------------------------------------------------------ fake results


def fake_cell(
    root,
    cell: study.Cell,
    ndcg: float,
    ranks=None,
    users=300,
    seconds=60.0,
    train_cases=None,
    epoch_seconds=10.0,
    reused=None,
) -> None:
    """Writes a finished cell as the runner would copy it (`reused` None: timed before
    results.json recorded `host_memory_reused`)."""
    timing = {"mean_epoch_seconds_excluding_compile": epoch_seconds, "total_seconds": seconds}
    if reused is not None:
        timing["host_memory_reused"] = reused
    folder = os.path.join(root, cell.name)
    os.makedirs(folder, exist_ok=True)
    metrics = {m: ndcg * (1 + i / 10) for i, m in enumerate(stats.METRICS)}
    with open(os.path.join(folder, "metrics.jsonl"), "w") as f:
        for epoch in range(3):
            f.write(
                json.dumps(
                    {
                        "step": epoch,
                        "kind": "epoch",
                        "epoch": epoch,
                        "valid/NDCG@10": ndcg * (epoch + 1) / 3,
                        "agreement/title": 1 - 0.1 * epoch,
                    }
                )
                + "\n"
            )
    if ranks is not None:
        np.save(os.path.join(folder, "test_ranks.npy"), ranks.astype(np.int32))
    with open(os.path.join(folder, "results.json"), "w") as f:
        json.dump(
            {
                "config": {"seed": cell.seed},
                "valid": metrics,
                "test": metrics,
                "best_epoch": 2,
                "epochs_trained": 3,
                "stop_reason": "early stopping: no NDCG@10 improvement for 10 epochs",
                "timing": timing,
                **({"data": {"train_cases": train_cases}} if train_cases else {}),
            },
            f,
        )


def main_cell(variant, seed, dataset="beauty", backbone="sasrec"):
    return study.Cell("main", dataset, backbone, variant, seed)


def test_selection_is_written_once_every_point_finished(tmp_path):
    root = str(tmp_path)
    points = search.points()
    for i, point in enumerate(points[:-1]):  # the first point is the best, not the defaults
        fake_cell(root, study.search_cell(point), 0.01 * (len(points) - i))
    assert not study_run.write_selection_when_ready(root)
    assert search.read_selection(study.selection_path(root)) is None
    fake_cell(root, study.search_cell(points[-1]), 0.001)
    assert study_run.write_selection_when_ready(root)
    selection = search.read_selection(study.selection_path(root))
    assert selection["selected"] == search.tag(points[0])  # the best validation score
    assert len(selection["points"]) == len(points)
    # the next cell in the queue is now built with the tuned overrides
    fake_for = {
        c.name
        for c in study.all_cells(root)
        if c.seed == 0 and c.group == "main" and c.variant != study.TUNED
    }
    for name in fake_for:
        dataset, _, backbone, variant, _ = name.split("/")
        fake_cell(root, main_cell(variant, 0, dataset, backbone), 0.02)
    nxt = study_run.next_cell(root, set(), "")
    assert nxt.variant == study.TUNED and nxt.seed == 0
    assert study_run.next_cell(root, {nxt.name}, "").name != nxt.name
    held = study_run.next_cell(root, set(), "", hold=(f"/{nxt.backbone}/",))
    assert held.backbone != nxt.backbone  # --skip leaves a backbone's cells out of the queue


def select_point(root, best):
    """Writes a selection in which the design point `best` has the best validation score."""
    scores = {p: 0.05 if p == best else 0.01 for p in search.points()}
    search.write_selection(study.selection_path(root), search.select(scores))


def test_the_tuned_cell_of_the_selected_point_is_its_search_run_not_a_second_one(tmp_path):
    root = str(tmp_path)
    best = next(p for p in search.points() if p != search.DEFAULT)
    select_point(root, best)
    cells = study.all_cells(root)
    (twin,) = [c for c in cells if c.twin]
    searched = study.search_cell(best)
    assert (twin.variant, twin.dataset, twin.backbone, twin.seed) == (
        study.TUNED,
        study.SEARCH_DATASET,
        study.SEARCH_BACKBONE,
        0,
    )
    assert twin.twin == searched.name == twin.stored_as
    assert twin.command("W") == searched.command("W")  # the very same training run
    # never queued: the runner trains the search point, and its folder serves both
    queued = []
    while (c := study_run.next_cell(root, set(queued), "")) is not None:
        queued.append(c.name)
    assert searched.name in queued and twin.name not in queued
    missing = "\n".join(summarize.missing(root))
    assert f"{twin.name}: the run of {searched.name} (no time of its own)" in missing
    fake_cell(root, searched, 0.05, np.arange(1, 301))
    assert summarize.folder(root, twin) == os.path.join(root, searched.name)
    groups = summarize.finished(root)
    (run,) = groups[(twin.dataset, twin.backbone, study.TUNED)]
    assert run[0] == twin and run[1]["valid"]["NDCG@10"] > 0.05
    assert twin.name not in "\n".join(summarize.missing(root))


def test_with_the_defaults_selected_every_tuned_cell_is_its_kdsr_cell(tmp_path):
    root = str(tmp_path)
    select_point(root, search.DEFAULT)
    tuned = [c for c in study.all_cells(root) if c.variant == study.TUNED]
    assert len(tuned) == len(study.DATASETS) * len(study.BACKBONES) * len(study.SEEDS)
    for cell in tuned:
        assert cell.twin == main_cell("kdsr", cell.seed, cell.dataset, cell.backbone).name
    for path in study.DATASETS.values():  # the overrides change nothing there
        for backbone in study.BACKBONES:
            kd = load_config_file(os.path.join(runner.REPO, path), f"{backbone},kdsr").kd
            assert (kd.lambda_hol, kd.lambda_code, kd.tau) == search.DEFAULT


def test_verdict_counts_seeds_and_says_what_a_one_seed_ci_covers():
    gain = {"dataset": "beauty", "backbone": "sasrec", "variant": "kdsr", "baseline": "id_only"}
    gain["bootstrap"] = {"rel_HR": {"diff": -1.0, "low": -3.0, "high": 1.0}}
    one = tables.verdict({**gain, "seeds": [0]}, claim=6.8)
    assert "(1 seed)" in one and "not seed-to-seed noise" in one
    assert "not distinguishable" in one and "excluded by the CI" in one
    three = tables.verdict({**gain, "seeds": [0, 1, 2]}, claim=6.8)
    assert "(3 seeds)" in three and "seed-to-seed" not in three


def test_summary_of_a_partial_study(tmp_path):
    root = str(tmp_path)
    rng = np.random.default_rng(0)
    base = rng.integers(1, 40, (3, 300))
    for seed in (0, 1):
        fake_cell(root, main_cell("id_only", seed), 0.030, base[seed])
        fake_cell(root, main_cell("feature_init", seed), 0.032, base[seed])
        fake_cell(root, main_cell("kdsr", seed), 0.031, np.maximum(base[seed] - 2, 1))
    fake_cell(root, main_cell("kdsr", 2), 0.031, base[2])  # no baseline for seed 2
    fake_cell(root, main_cell("kdsr_released", 0), 0.029)  # no per-user ranks
    fake_cell(root, main_cell("id_only", 0, "toys", "session_graph"), 0.02)
    fake_cell(root, main_cell("frozen_features", 1), 0.03, np.maximum(base[1] - 4, 1))
    sections, summary = summarize.build_sections(root)

    gains = {g["variant"]: g for g in summary["gains"]}
    assert set(gains) == {"kdsr", "kdsr_released"}
    assert gains["kdsr"]["baseline"] == "feature_init"  # the higher mean HR@10
    assert gains["kdsr"]["seeds"] == [0, 1]  # only seeds both finished
    assert gains["kdsr"]["bootstrap"]["HR@10"]["low"] > 0
    assert gains["kdsr_released"]["bootstrap"] is None
    assert any("no per-user ranks" in line for line in sections["study_verdict"])
    # the control: kdsr against frozen_features over the one seed both finished
    (control,) = summary["controls"]
    assert (control["variant"], control["baseline"], control["seeds"]) == (
        "kdsr",
        "frozen_features",
        [1],
    )
    assert control["bootstrap"]["HR@10"]["high"] < 0  # frozen's ranks are better here
    assert "| control |" in sections["study_control"][0]
    assert any("better than the better baseline" in line for line in sections["study_verdict"])
    assert "| beauty / sasrec / kdsr | 3 |" in "\n".join(sections["study_main"])
    assert "| toys / session_graph / id_only | 1 |" in "\n".join(sections["study_main"])
    missing = "\n".join(sections["study_missing"])
    assert "beauty / sasrec / id_only: seed 2" in missing
    assert "sports / sasrec / kdsr: seed 0, 1, 2" in missing
    assert "pending until the search has chosen" in missing
    assert (
        sum("not run yet" in line for line in sections["study_search"]) == len(search.points()) - 1
    )  # the defaults point is kdsr's seed-0 cell, finished
    assert "| early | no |" in "\n".join(sections["study_wall_time"])
    assert "beauty / sasrec / kdsr | title | 1.000 | 0.800 (3)" in "\n".join(
        sections["study_agreement"]
    )

    report = tmp_path / "RESULTS.md"
    report.write_text("x\n<!-- summarize:study_gain -->\nold\n<!-- /summarize:study_gain -->\n")
    assert splice(str(report), sections) == ["study_gain"]
    assert "feature_init" in report.read_text()


def test_remaining_time_is_estimated_from_the_nearest_finished_cells(tmp_path):
    root = str(tmp_path)
    fake_cell(root, main_cell("id_only", 0), 0.03, seconds=120, train_cases=100)
    fake_cell(root, main_cell("id_only", 0, backbone="session_graph"), 0.03, seconds=60)
    fake_cell(root, main_cell("kdsr", 0, backbone="session_graph"), 0.03, seconds=300)
    fake_cell(root, main_cell("id_only", 0, "toys", "session_graph"), 0.02, train_cases=50)
    minutes, cases = estimate.measured(summarize.finished(root))

    def guess(cell):
        return estimate.estimate(cell, minutes, cases)

    own = guess(main_cell("id_only", 1))
    assert own.minutes == 2.0 and "measured" in own.basis
    assert own.own and own.margin == estimate.OWN_MARGIN
    other_dataset = guess(main_cell("id_only", 0, "toys"))
    # beauty's 2 min x the measured toys / beauty ratio (1 min each), not x 50 / 100 cases
    assert other_dataset.minutes == 2.0
    assert "toys / beauty session_graph id_only, measured" in other_dataset.basis
    # carried over from another dataset: a wider --stop-at margin than the cell's own mean
    assert not other_dataset.own and other_dataset.margin > own.margin
    other_backbone = guess(main_cell("kdsr", 0))
    assert other_backbone.minutes == 10.0  # session_graph kdsr 5 min x sasrec/sg id_only 2
    tuned = guess(study.Cell("search", "beauty", "sasrec", "hol1_code2_tau1.5", 0))
    assert tuned.minutes == 10.0  # search points cost what kdsr costs
    unscaled = guess(main_cell("id_only", 0, "sports"))
    assert unscaled.minutes == 2.0 and "unscaled" in unscaled.basis
    assert guess(main_cell("frozen_features", 0)).minutes is None

    missing = "\n".join(summarize.build_sections(root)[0]["study_missing"])
    assert "beauty / sasrec / id_only: seed 1, 2 (~2 min each: beauty / sasrec / id_only" in missing
    assert "cells have no basis yet" in missing and "runner-hours" in missing

    # without the same variant measured on both datasets: the geometric mean of all shared
    fake_cell(root, main_cell("kdsr", 0, "toys", "session_graph"), 0.02, seconds=450)
    minutes, _ = estimate.measured(summarize.finished(root))
    minutes[("beauty", "sasrec", "feature_init")] = 4.0
    pooled = estimate.estimate(main_cell("feature_init", 0, "toys"), minutes, cases)
    assert pooled.minutes == pytest.approx(4.0 * (1.0 * 1.5) ** 0.5)  # id_only 1x, kdsr 1.5x
    assert "measured over 2 shared cells" in pooled.basis


def test_finished_search_points_time_kdsr_but_stay_out_of_the_tables(tmp_path):
    root = str(tmp_path)
    fake_cell(root, main_cell("kdsr", 0), 0.03, seconds=4000, epoch_seconds=200)
    point = study.search_cells()[0]
    fake_cell(root, point, 0.03, seconds=6000, epoch_seconds=150, reused=True)
    assert ("beauty", "sasrec", point.variant) not in summarize.finished(root)
    minutes, _ = estimate.measured(summarize.finished(root, with_search=True))
    # the search point's 100 min, and seed 0's 66.7 min at its epoch ratio 150 / 200
    assert minutes[("beauty", "sasrec", "kdsr")] == pytest.approx((100 + 4000 / 60 * 0.75) / 2)
    missing = "\n".join(summarize.missing(root))
    assert "main: beauty / sasrec / kdsr: seed 1, 2 (~75 min each" in missing
    # kdsr_released runs the same KD terms: timed only without reuse, it takes kdsr's ratio
    fake_cell(root, main_cell("kdsr_released", 0), 0.03, seconds=3000, epoch_seconds=180)
    minutes, _ = estimate.measured(summarize.finished(root, with_search=True))
    assert minutes.rescaled[("beauty", "sasrec", "kdsr_released")] == pytest.approx(0.75)
    assert minutes[("beauty", "sasrec", "kdsr_released")] == pytest.approx(37.5)


def test_times_before_host_memory_reuse_are_rescaled_by_measured_pairs(tmp_path):
    root = str(tmp_path)
    # Beauty session graph id_only: seed 0 timed without reuse, seed 1 with it (half the epoch).
    sg = "session_graph"
    fake_cell(root, main_cell("id_only", 0, backbone=sg), 0.03, seconds=1200, epoch_seconds=80)
    fake_cell(
        root,
        main_cell("id_only", 1, backbone=sg),
        0.03,
        seconds=720,
        epoch_seconds=40.0,
        reused=True,
    )
    fake_cell(root, main_cell("kdsr", 0, backbone=sg), 0.03, seconds=6000, epoch_seconds=200)
    fake_cell(root, main_cell("kdsr", 0), 0.03, seconds=6000, epoch_seconds=150)
    minutes, cases = estimate.measured(summarize.finished(root))

    # Seeds of both kinds: the old one at its own ratio (20 min x 0.5), mean with the new 12.
    both = estimate.estimate(main_cell("id_only", 2, backbone=sg), minutes, {})
    assert both.minutes == 11.0 and both.own
    # Only timed without reuse: x 0.5 (the measured epoch ratio), not its own measurement.
    old = estimate.estimate(main_cell("kdsr", 1, backbone=sg), minutes, {})
    assert old.minutes == pytest.approx(50.0) and not old.own
    assert "without host-memory reuse x 0.50" in old.basis
    # SASRec has no pair of its own: another backbone's ratio does not carry over.
    assert minutes[("beauty", "sasrec", "kdsr")] == 100.0
    assert minutes.rescaled == {("beauty", sg, "kdsr"): 0.5}

    # A pair of the same backbone and cost variant (on Sports) comes before the backbone's
    # median: session-graph kdsr is compute-bound (0.8), its id_only is not (0.5).
    sports = dict(backbone=sg, dataset="sports")
    fake_cell(root, main_cell("kdsr", 0, **sports), 0.03, seconds=6000, epoch_seconds=200)
    fake_cell(
        root, main_cell("kdsr", 1, **sports), 0.03, seconds=4800, epoch_seconds=160, reused=True
    )
    minutes, _ = estimate.measured(summarize.finished(root))
    assert minutes.rescaled[("beauty", sg, "kdsr")] == pytest.approx(0.8)
    assert minutes[("beauty", sg, "kdsr")] == pytest.approx(80.0)
    for seed in (0, 1):
        shutil.rmtree(os.path.join(root, main_cell("kdsr", seed, **sports).name))

    # No pair anywhere: old times stand unscaled (an over-estimate, never an under-estimate).
    os.remove(os.path.join(root, main_cell("id_only", 1, backbone=sg).name, "results.json"))
    minutes, _ = estimate.measured(summarize.finished(root))
    assert minutes[("beauty", sg, "kdsr")] == 100.0 and not minutes.rescaled
    assert estimate.estimate(main_cell("kdsr", 1, backbone=sg), minutes, {}).own


def test_cells_that_reused_host_memory_before_it_was_recorded_are_read_as_such(tmp_path):
    (name, *_) = load.REUSED_HOST_MEMORY_UNRECORDED
    for cell in (name, "toys/leave_one_out/session_graph/kdsr/seed0"):
        os.makedirs(tmp_path / cell)
        (tmp_path / cell / "results.json").write_text(json.dumps({"timing": {}}))
    assert load.read_results(str(tmp_path / name))["timing"]["host_memory_reused"] is True
    other = load.read_results(str(tmp_path / "toys/leave_one_out/session_graph/kdsr/seed0"))
    assert "host_memory_reused" not in other["timing"]


def test_datasets_without_finished_cells_are_scaled_by_their_counted_data():
    """Needs ../shared/data/amazon-{beauty,sports,toys} (present in CI)."""
    cases = estimate.with_data_cases({"beauty": 100})
    assert cases["beauty"] == 100  # a finished cell's count wins
    beauty = load.read_results(
        os.path.join(runner.REPO, "results", main_cell("id_only", 0, "beauty").name)
    )
    assert estimate.data_cases("beauty") == beauty["data"]["train_cases"]  # what training saw
    assert cases["sports"] > estimate.data_cases("beauty") > cases["toys"] > 0
    minutes = {("beauty", "sasrec", "id_only"): 10.0}
    scaled = estimate.estimate(main_cell("id_only", 0, "toys"), minutes, cases)
    assert scaled.minutes == pytest.approx(10.0 * cases["toys"] / 100)
    assert "toys / beauty training cases" in scaled.basis


def test_patience_replay_stops_where_the_trainer_would():
    curve = [0.01, 0.02, 0.015, 0.014, 0.013, 0.03]
    assert patience.replay(curve, 3) == (2, 0.02, 5)  # three epochs without improvement
    assert patience.replay(curve, 4) == (6, 0.03, 6)  # the late best survives a longer wait


def test_patience_replay_reads_every_datasets_early_stopped_runs(tmp_path):
    root = str(tmp_path)
    cells = [main_cell("id_only", 0), main_cell("kdsr", 0, "toys", "session_graph")]
    for cell in cells:
        fake_cell(root, cell, 0.03)
        path = os.path.join(root, cell.name, "results.json")
        result = load.read_results(os.path.dirname(path))
        result["config"]["eval"] = {"patience": 6}
        with open(path, "w") as f:
            json.dump(result, f)
    found = patience.runs(root)
    assert sorted(label for label, _, _ in found) == sorted(c.name for c in cells)
    assert all(used == 6 and len(curve) == 3 for _, curve, used in found)


# ------------------------------------------------------------------------------ runner


class ScriptCell:
    """A cell whose 'training' is a tiny script writing the trainer's outputs."""

    name = "beauty/leave_one_out/sasrec/id_only/seed0"

    def command(self, workdir):
        code = (
            "import json, os, sys, numpy as np; w = sys.argv[1]; "
            "[open(os.path.join(w, n), 'w').write('{}') for n in "
            "('results.json', 'metrics.jsonl', 'curves.png')]; "
            "np.save(os.path.join(w, 'test_ranks.npy'), np.arange(1, 4, dtype=np.int32))"
        )
        return [sys.executable, "-c", code, workdir]


def test_runner_copies_a_finished_cell_with_its_ranks(tmp_path):
    results, runs = str(tmp_path / "results"), str(tmp_path / "runs")
    runner.run_cell(ScriptCell(), results, runs)
    folder = os.path.join(results, ScriptCell.name)
    assert load.is_finished(folder)
    assert load.test_ranks(folder).tolist() == [1, 2, 3]
    assert not os.path.exists(folder + ".partial")


def test_stop_at_reads_a_clock_time_and_refuses_the_past_or_garbage():
    import datetime

    now = datetime.datetime(2026, 12, 1, 8, 30)
    assert runner.parse_stop_at("10:40", now) == datetime.datetime(2026, 12, 1, 10, 40).timestamp()
    assert runner.parse_stop_at("9:05", now) == datetime.datetime(2026, 12, 1, 9, 5).timestamp()
    later = "2026-12-02T01:00"
    assert runner.parse_stop_at(later, now) == datetime.datetime(2026, 12, 2, 1).timestamp()
    with pytest.raises(SystemExit, match="has passed"):
        runner.parse_stop_at("08:00", now)
    with pytest.raises(SystemExit, match="expected HH:MM"):
        runner.parse_stop_at("half past ten", now)


class SleepingCell(ScriptCell):
    """A cell whose 'training' outlasts any stop time in these tests."""

    def command(self, workdir):
        return [sys.executable, "-c", "import time; time.sleep(120)"]


def test_a_cell_still_training_at_the_stop_time_is_stopped_and_never_copied(tmp_path):
    import time

    results, runs = str(tmp_path / "results"), str(tmp_path / "runs")
    assert not runner.run_cell(SleepingCell(), results, runs, stop_at=time.time() + 1)
    assert not os.path.exists(os.path.join(results, SleepingCell.name))
    assert runner.minutes_left(time.time() - 60) < 0 and runner.minutes_left(None) > 1e9


RUNNER_OF_A_SLEEPING_CELL = """
import os, sys
sys.path.insert(0, {repo!r})
from benchmarks import runner

class Cell:
    name = "beauty/leave_one_out/sasrec/id_only/seed0"

    def command(self, workdir):
        code = "import os, time; open({pid!r}, 'w').write(str(os.getpid())); time.sleep(120)"
        return [sys.executable, "-c", code]

runner.run_cell(Cell(), {results!r}, {runs!r})
"""


def _start_runner_and_its_trainer(tmp_path, name):
    """A runner process training a sleeping cell; (runner, the trainer's pid)."""
    import subprocess
    import time

    pid_file = str(tmp_path / f"{name}.pid")
    script = RUNNER_OF_A_SLEEPING_CELL.format(
        repo=runner.REPO,
        pid=pid_file,
        results=str(tmp_path / "results"),
        runs=str(tmp_path / "runs"),
    )
    process = subprocess.Popen([sys.executable, "-c", script])
    for _ in range(600):
        if os.path.exists(pid_file) and open(pid_file).read():
            return process, int(open(pid_file).read())
        time.sleep(0.05)
    process.kill()
    raise AssertionError("the runner never started its trainer")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_runner_stopped_with_sigterm_stops_its_trainer(tmp_path):
    import signal

    process, trainer = _start_runner_and_its_trainer(tmp_path, "term")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) != 0
    alive = _alive(trainer)
    if alive:
        os.kill(trainer, signal.SIGKILL)
    assert not alive  # killed and reaped by the runner, not orphaned


def test_the_trainer_of_a_killed_runner_keeps_the_cells_lock(tmp_path):
    import signal

    process, trainer = _start_runner_and_its_trainer(tmp_path, "kill")
    try:
        process.kill()  # SIGKILL: no handler runs, the trainer is orphaned
        process.wait(timeout=30)
        assert _alive(trainer)
        # a second runner must not start another trainer on the same workdir
        results, runs = str(tmp_path / "results"), str(tmp_path / "runs")
        assert not runner.run_cell(ScriptCell(), results, runs)
        assert not os.path.exists(os.path.join(results, ScriptCell.name))
    finally:
        os.kill(trainer, signal.SIGKILL)


def test_with_a_stop_time_the_study_runner_starts_only_cells_that_fit(tmp_path):
    """Needs ../shared/data (present in CI): Sports and Toys are scaled by their data."""
    import time

    root, runs = str(tmp_path / "results"), str(tmp_path / "runs")
    fake_cell(root, main_cell("id_only", 0), 0.03, seconds=3600)  # sasrec: 60 min
    fake_cell(root, main_cell("id_only", 0, backbone="session_graph"), 0.03, seconds=600)
    fits = study_run.fits_before(time.time() + 30 * 60, root, runs)
    # SASRec id_only cells (~60 min each) do not fit in 30 min; session-graph ones (~10) do
    assert study_run.next_cell(root, set(), "sasrec/id_only", (), fits) is None
    cell = study_run.next_cell(root, set(), "id_only", (), fits)
    assert cell.backbone == "session_graph" and cell.variant == "id_only"
    # a cell with a checkpoint continues only if what is left of its estimate fits
    started = study_run.next_cell(root, set(), "sasrec/id_only", ())
    os.makedirs(os.path.join(runs, started.name, "checkpoints", "latest"))
    assert study_run.next_cell(root, set(), "sasrec/id_only", (), fits) is None  # 0 epochs done
    epochs = [
        {"step": 10 * (e + 1), "kind": "epoch", "epoch": e, "seconds": 600} for e in range(12)
    ]
    epochs.insert(3, epochs[2])  # logged twice (stopped before its save): counted once
    with open(os.path.join(runs, started.name, "metrics.jsonl"), "w") as f:
        f.writelines(json.dumps(record) + "\n" for record in epochs)
    assert runner.remaining_minutes(started, runs, 150) == 30  # 150 - 12 epochs x 10 min
    # past its estimate, a started cell still needs one more epoch (its slowest): it fits
    assert runner.remaining_minutes(started, runs, 60) == 10
    assert study_run.next_cell(root, set(), "sasrec/id_only", (), fits) == started
    assert runner.remaining_minutes(started, runs, None) is None
    assert runner.remaining_minutes(main_cell("kdsr", 0), runs, 60) == 60  # not started
    assert study_run.next_cell(root, set(), "frozen_features", (), fits) is not None
    assert runner.fits(None, time.time() + 60) and not runner.fits(28, time.time() + 30 * 60)
    assert runner.fits(19, time.time() + 30 * 60) and not runner.fits(19, time.time() + 1800, 1.6)
    assert study_run.fits_before(None, root, runs)(started)


def test_carry_over_continues_a_started_cell_first_then_the_next_in_run_order(tmp_path):
    root, runs = str(tmp_path / "results"), str(tmp_path / "runs")
    fake_cell(root, main_cell("id_only", 0), 0.03, seconds=3600)
    first = study_run.next_cell(root, set(), "/sasrec/")
    assert study_run.carry_over_cell(root, runs, set(), "/sasrec/") == first
    todo = [
        c
        for c in study.all_cells(root)
        if "/sasrec/" in c.name and not load.is_finished(os.path.join(root, c.name))
    ]
    later = todo[-1]
    assert later != first
    os.makedirs(os.path.join(runs, later.name, "checkpoints", "latest"))
    assert study_run.carry_over_cell(root, runs, set(), "/sasrec/") == later
    assert study_run.carry_over_cell(root, runs, {later.name}, "/sasrec/") == first
    assert study_run.carry_over_cell(root, runs, set(), "/sasrec/", (later.variant,)) == first


def test_carry_over_without_a_stop_time_is_refused(tmp_path):
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.study.run", "--carry-over", "--results", str(tmp_path)],
        cwd=runner.REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "--carry-over needs --stop-at" in done.stderr
    assert not os.listdir(tmp_path)


def test_report_study_blocks_match_the_committed_results():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "RESULTS.md"), encoding="utf-8") as f:
        blocks = dict(
            re.findall(
                r"<!-- summarize:(study_\w+) -->\n(.*?)\n<!-- /summarize:\1 -->", f.read(), re.S
            )
        )
    sections, _ = summarize.build_sections(os.path.join(root, "results"))
    assert set(blocks) == set(sections)
    for name, text in blocks.items():
        assert text == "\n".join(sections[name]), f"RESULTS.md block {name!r} is stale"


def test_report_backbones_blocks_match_the_committed_results():
    """RESULTS.md's Backbones section shows exactly what results/beauty/backbones holds."""
    from benchmarks.backbones import summarize as backbones

    with open(backbones.REPORT, encoding="utf-8") as f:
        report_text = f.read()
    for name, body in backbones.sections().items():
        start, end = f"<!-- summarize:{name} -->\n", f"\n<!-- /summarize:{name} -->"
        block = report_text.split(start)[1].split(end)[0]
        assert block == "\n".join(body), f"RESULTS.md block {name!r} is stale"


def test_sasrec_best_is_the_study_cell_it_shares_results_with():
    """`sasrec-best` is stored as the study's Beauty/SASRec/id_only cell: the two must be the
    same training run (same command line but for the study's explicit default protocol)."""
    from benchmarks.backbones import cells as backbones

    for seed in backbones.SEEDS:
        best = backbones.Cell("sasrec-best", backbones.FINAL["sasrec-best"], seed)
        twin = best.study_twin
        assert twin is not None and twin.seed == seed
        protocol = f"--config.data.protocol={study.PROTOCOL}"
        assert twin.command("W") == [*best.command("W"), protocol]
    config = load_config_file(os.path.join(runner.REPO, "configs", "beauty.py"), "sasrec,id_only")
    assert config.data.protocol == study.PROTOCOL  # so the study's explicit flag changes nothing
    others = [c for c in backbones.all_cells() if c.run != "sasrec-best"]
    assert others and all(c.study_twin is None for c in others)


def test_seen_items_masking_removes_only_the_past_and_never_the_target():
    from benchmarks.backbones.seen_items import mask_seen
    from corrkd_jax.metrics import target_ranks

    scores = np.array([[5.0, 4.0, 3.0, 2.0], [1.0, 2.0, 3.0, 4.0]], np.float32)
    targets = np.array([2, 0])  # items 3 and 1
    # user 0 saw items 1 and 2 (both above its target); user 1 saw its target (a repeat) and 4
    pasts = [np.array([1, 2]), np.array([1, 4])]
    assert np.asarray(target_ranks(scores, targets)).tolist() == [3, 4]
    mask_seen(scores, targets, pasts)
    assert np.asarray(target_ranks(scores, targets)).tolist() == [1, 3]
    assert scores[1, 0] == 1.0 and np.isneginf(scores[1, 3])


def test_agreement_plot_reads_both_studies_labels_and_writes_a_png(tmp_path):
    from benchmarks.study import plots

    falling = [(0, 0.95), (1, 0.8), (2, 0.6)]
    held = [(0, 0.99), (1, 0.99), (2, 0.98)]
    curves = [
        ("beauty / sasrec / feature_init", "title", falling),
        ("beauty / sasrec / kdsr", "title", held),
        ("beauty / session_graph / kdsr", "attr", held),
        ("session_graph / kdsr-nohol", "title", held),  # capped study's labels, a tagged run
    ]
    assert plots._backbone_variant(curves[0][0]) == ("sasrec", "feature_init")
    assert plots._backbone_variant(curves[3][0]) == ("session_graph", "kdsr-nohol")
    path = tmp_path / "agreement.png"
    assert plots.plot_agreement(curves, str(path))
    assert path.read_bytes().startswith(b"\x89PNG")
    assert not plots.plot_agreement([], str(tmp_path / "none.png"))
    assert not (tmp_path / "none.png").exists()
