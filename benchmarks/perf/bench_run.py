"""End-to-end check: one real Beauty KDSR training epoch through the CLI, peak memory and time.

Runs `python -m corrkd_jax.train --config configs/beauty.py:<backbone>,kdsr` for one epoch
(514 steps, validation, test at the best checkpoint, checkpoints, plots) in a fresh
subprocess and reports its peak resident memory (`ru_maxrss` of the child, i.e. VmHWM), the
wall time, and the trainer's own figures from `results.json` (epoch seconds with and without
compilation, codebook fit, test metrics). This is the trainer's real loop (grain prefetch
thread, donated state, one compile per batch shape), so it cross-checks the extrapolated
epoch times of bench_train.py. Extra `--set` overrides go to the config, e.g.
`--set kd.pack_pairs=False` for the dense pair layout.

    python -m benchmarks.perf.bench_run [--backbone session_graph] [--set ...] [--name run]

Target: peak memory of a whole Beauty KDSR run <= 4 GiB.

`--compare-host-memory` trains the same command with the trainer's default
`--reuse_host_memory` and with `--noreuse_host_memory` (glibc's malloc defaults), alternating,
`--repeats` times each, and reports per setting the median epoch time without compilation, the
process's user and kernel CPU seconds, its minor page faults and its peak RSS
(`corrkd_jax/host_memory.py` says why they differ). `--config-file configs/toys.py` runs
another dataset (its features must be cached or are computed first), e.g.

    python -m benchmarks.perf.bench_run --config-file configs/toys.py --epochs 2 \
        --compare-host-memory --repeats 2 --name host_memory
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks.perf import common


def run_training(
    backbone: str,
    sets: list[str],
    epochs: int,
    config_file: str = "configs/beauty.py",
    flags: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Trains in a subprocess; returns wall time, the child's peak RSS, CPU seconds and page
    faults, and its results.json."""
    with tempfile.TemporaryDirectory(prefix="corrkd_bench_run_") as workdir:
        command = [
            sys.executable,
            "-m",
            "corrkd_jax.train",
            "--config",
            f"{config_file}:{backbone},kdsr",
            "--workdir",
            workdir,
            f"--config.num_epochs={epochs}",
            "--config.progress=False",
            *[f"--config.{item}" for item in sets],
            *flags,
        ]
        print(" ".join(command[1:]), flush=True)
        start = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=common.REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"training failed:\n{output[-3000:]}")
        with open(os.path.join(workdir, "results.json"), encoding="utf-8") as f:
            results = json.load(f)
    return {
        "command": " ".join(command[1:]),
        "wall_seconds": wall,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "user_seconds": usage.ru_utime,
        "system_seconds": usage.ru_stime,
        "minor_page_faults": usage.ru_minflt,
        "timing": results["timing"],
        "teacher": results.get("teacher", {}),
        "test": results["test"],
        "valid": results["valid"],
        "steps": results["steps"],
    }


def to_markdown(result: dict[str, Any]) -> str:
    r = result["run"]
    timing = r["timing"]
    seconds = {view: stats.get("seconds") for view, stats in r["teacher"].items()}
    return "\n".join(
        [
            f"# One real KDSR epoch ({result.get('config_file', 'configs/beauty.py')}:"
            f"{result['backbone']}) through the CLI",
            "",
            common.machine_line(result),
            "",
            f"Command: `{r['command']}` (overrides: {result['settings'] or 'none'}).",
            "",
            "| figure | value |",
            "|---|---:|",
            f"| peak RSS of the whole run (VmHWM) | {r['peak_rss_mib']:.0f} MiB |",
            f"| wall time of the process | {r['wall_seconds']:.0f} s |",
            f"| epoch (train + validation), trainer's figure | {timing['epoch_seconds'][0]:.1f} s |",
            f"| of which compilation | "
            f"{timing['epoch_seconds'][0] - timing['epoch_seconds_excluding_compile'][0]:.1f} s |",
            f"| epoch excluding compilation | {timing['epoch_seconds_excluding_compile'][0]:.1f} s |",
            f"| codebook fit per view (2M pairs) | {seconds} |",
            f"| steps | {r['steps']} |",
            f"| valid NDCG@10 / test NDCG@10 after 1 epoch | {r['valid']['NDCG@10']:.4f} / "
            f"{r['test']['NDCG@10']:.4f} |",
            "",
            "Target: peak memory <= 4 GiB (4096 MiB).",
        ]
    )


HOST_MEMORY_SETTINGS = {"reuse (default)": (), "glibc defaults": ("--noreuse_host_memory",)}


def compare_host_memory(args: argparse.Namespace) -> dict[str, Any]:
    """The same training under both host-memory settings, alternating, `args.repeats` each."""
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in HOST_MEMORY_SETTINGS}
    for _ in range(args.repeats):
        for label, flags in HOST_MEMORY_SETTINGS.items():
            run = run_training(args.backbone, args.sets, args.epochs, args.config_file, flags)
            print(f"{label}: {_epoch_seconds(run):.1f} s/epoch, {_row(run)}", flush=True)
            runs[label].append(run)
    return runs


def _epoch_seconds(run: dict[str, Any]) -> float:
    """The last epoch's seconds without compilation (the first epoch compiles)."""
    return run["timing"]["epoch_seconds_excluding_compile"][-1]


def _row(run: dict[str, Any]) -> str:
    return (
        f"user {run['user_seconds']:.0f} s, kernel {run['system_seconds']:.0f} s, "
        f"{run['minor_page_faults'] / 1e6:.2f} M page faults, peak RSS {run['peak_rss_mib']:.0f} MiB"
    )


def host_memory_markdown(result: dict[str, Any]) -> str:
    lines = [
        f"# Host memory: `--reuse_host_memory` against glibc's malloc defaults ({result['config']})",
        "",
        common.machine_line(result),
        "",
        f"Each setting trained {result['epochs']} epoch(s) in a fresh process, {result['repeats']} "
        "time(s), alternating; medians over the repeats. Epoch: the last epoch's train + "
        "validation seconds without compilation (trainer's figure). CPU and page faults: the "
        "whole process (set-up, compilation and evaluation included).",
        "",
        "| setting | epoch s | user CPU s | kernel CPU s | minor page faults | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, runs in result["runs"].items():
        med = common.median
        lines.append(
            f"| {label} | {med(_epoch_seconds(r) for r in runs):.1f} "
            f"| {med(r['user_seconds'] for r in runs):.0f} "
            f"| {med(r['system_seconds'] for r in runs):.0f} "
            f"| {med(r['minor_page_faults'] for r in runs) / 1e6:.2f} M "
            f"| {med(r['peak_rss_mib'] for r in runs):.0f} |"
        )
    lines += [
        "",
        f"Command: `{result['command']}` (+ `--noreuse_host_memory` for glibc's defaults).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="session_graph")
    parser.add_argument("--config-file", default="configs/beauty.py")
    parser.add_argument("--compare-host-memory", action="store_true")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        dest="sets",
        help="config overrides without the --config. prefix, e.g. kd.pack_pairs=False",
    )
    parser.add_argument("--name", default="run")
    args = parser.parse_args()
    common.print_machine(common.machine_info())
    if args.compare_host_memory:
        runs = compare_host_memory(args)
        info = common.machine_info()
        result = {
            "machine": info,
            "note": common.load_note(info),
            "config": f"{args.config_file}:{args.backbone},kdsr",
            "epochs": args.epochs,
            "repeats": args.repeats,
            "command": next(iter(runs.values()))[0]["command"],
            "runs": runs,
        }
        common.write_outputs(args.name, result, host_memory_markdown(result))
        return
    run = run_training(args.backbone, args.sets, args.epochs, args.config_file)
    print(
        f"peak RSS {run['peak_rss_mib']:.0f} MiB, wall {run['wall_seconds']:.0f} s, epoch "
        f"{run['timing']['epoch_seconds'][0]:.1f} s (excluding compile "
        f"{run['timing']['epoch_seconds_excluding_compile'][0]:.1f} s)",
        flush=True,
    )
    info = common.machine_info()
    result = {
        "machine": info,
        "note": common.load_note(info),
        "config_file": args.config_file,
        "backbone": args.backbone,
        "settings": args.sets,
        "run": run,
    }
    common.write_outputs(args.name, result, to_markdown(result))


if __name__ == "__main__":
    common.run_cli(main)
