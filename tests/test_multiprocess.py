"""Training under JAX's multi-controller runtime: 2 processes on localhost (CPU collectives,
gloo) train the tiny KDSR config and match the 1-process metrics within 1e-5.

Each process runs the real CLI with `JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES` and
`JAX_PROCESS_ID` set (`sharding.maybe_initialize_distributed`), one CPU device each, the same
run directory; process 0 writes the run files, both write their checkpoint shards.
"""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import subprocess
import sys

import pytest

from corrkd_jax.paths import repo_root
from support import tiny_runs as testing

pytestmark = pytest.mark.slow

REPO = repo_root()
METRICS = [f"{m}@{k}" for m in ("HR", "NDCG", "MRR") for k in (5, 10, 20)]
CONFIG = """
from support import tiny_runs as testing


def get_config(arg=None):
    config = testing.tiny_config({data!r}, {encoder!r}, {cache!r})
    config.num_epochs = 2
    config.kd.num_pairs = 1_000
    config.kd.kmeans_iters = 5
    return config
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _environment(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("JAX_COORDINATOR", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID", "SLURM_", "OMPI_")
        )
    }
    env.update(
        JAX_PLATFORMS="cpu",
        PYTHONPATH=os.pathsep.join([REPO, os.path.join(REPO, "tests")]),
        XLA_FLAGS="",
    )
    env.update(extra)
    return env


def _train(config: str, workdir: str, **extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "corrkd_jax.train", f"--config={config}", f"--workdir={workdir}"],
        cwd=REPO,
        env=_environment(**extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# Lines that say why a process died (absl fatal/error logs, C++ checks, the distributed
# runtime); the tail of stderr alone is mostly the thread dump of the abort.
CAUSE = re.compile(
    r"^[FE]\d{4} |Check failed|Fatal Python error|terminate called|DEADLINE_EXCEEDED|"
    r"UNAVAILABLE|Terminating process|distributed service"
)


def _why(err: str) -> str:
    causes = [line for line in err.splitlines() if CAUSE.search(line)]
    return "\n".join(causes[:30]) + "\n... stderr tail:\n" + err[-1500:]


def test_two_processes_match_one_process(tmp_path):
    from support.tiny_encoders import save_tiny_text_encoder

    data = testing.write_tiny_dataset(str(tmp_path / "data"))
    encoder = save_tiny_text_encoder("bert", str(tmp_path / "bert"))
    config = tmp_path / "tiny.py"
    config.write_text(CONFIG.format(data=data, encoder=encoder, cache=str(tmp_path / "cache")))

    # One process (also computes the stage-1 features both runs then share).
    single = _train(str(config), str(tmp_path / "one"))
    out, err = single.communicate(timeout=600)
    assert single.returncode == 0, _why(err)

    port = _free_port()
    workers = [
        _train(
            str(config),
            str(tmp_path / "two"),
            JAX_COORDINATOR_ADDRESS=f"localhost:{port}",
            JAX_NUM_PROCESSES="2",
            JAX_PROCESS_ID=str(i),
        )
        for i in range(2)
    ]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    # Every process's causes: a peer that died first is why the other one aborted.
    failed = [
        f"process {i} (exit {worker.returncode}):\n{_why(err)}"
        for i, (worker, (_, err)) in enumerate(zip(workers, outputs))
        if worker.returncode != 0
    ]
    assert not failed, "\n\n".join(failed)

    one = json.load(open(tmp_path / "one" / "results.json"))
    two = json.load(open(tmp_path / "two" / "results.json"))
    assert two["versions"]["processes"] == "2" and one["versions"]["processes"] == "1"
    # The CLI reuses freed host memory (corrkd_jax.host_memory) where glibc lets it.
    glibc = platform.libc_ver()[0] == "glibc"
    assert one["timing"]["host_memory_reused"] is two["timing"]["host_memory_reused"] is glibc
    assert two["versions"]["devices"].startswith("2 x")
    assert two["best_epoch"] == one["best_epoch"]
    for split in ("valid", "test"):
        for name in METRICS:
            assert two[split][name] == pytest.approx(one[split][name], abs=1e-5), (split, name)
