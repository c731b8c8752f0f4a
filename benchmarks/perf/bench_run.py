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


def run_training(backbone: str, sets: list[str], epochs: int) -> dict[str, Any]:
    """Trains in a subprocess; returns wall time, the child's peak RSS and its results.json."""
    with tempfile.TemporaryDirectory(prefix="corrkd_bench_run_") as workdir:
        command = [
            sys.executable,
            "-m",
            "corrkd_jax.train",
            "--config",
            f"configs/beauty.py:{backbone},kdsr",
            "--workdir",
            workdir,
            f"--config.num_epochs={epochs}",
            "--config.progress=False",
            *[f"--config.{item}" for item in sets],
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
        "timing": results["timing"],
        "teacher": results.get("teacher", {}),
        "test": results["test"],
        "valid": results["valid"],
        "steps": results["steps"],
    }


def to_markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    r = result["run"]
    timing = r["timing"]
    seconds = {view: stats.get("seconds") for view, stats in r["teacher"].items()}
    return "\n".join(
        [
            f"# One real Beauty KDSR epoch ({result['backbone']}) through the CLI",
            "",
            f"Machine: {m['usable_cores']} cores ({m['cpu_model']}), {m['device_kind']}; jax "
            f"{m['jax']}. {result['note']}.",
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="session_graph")
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
    run = run_training(args.backbone, args.sets, args.epochs)
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
        "backbone": args.backbone,
        "settings": args.sets,
        "run": run,
    }
    common.write_outputs(args.name, result, to_markdown(result))


if __name__ == "__main__":
    common.run_cli(main)
