"""corrkd_jax.host_memory: freed large blocks are reused instead of re-faulted from the kernel."""

import platform
import subprocess
import sys

from corrkd_jax import host_memory

# A worker thread allocates, touches and frees 80 MB five times (as XLA's worker threads do
# with a step's temporaries) and prints the page faults of the last four rounds.
ROUNDS = """
import ctypes, resource, sys, threading
from corrkd_jax import host_memory
applied = host_memory.reuse_freed_memory() if sys.argv[1] == "reuse" else False
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
faults = []

def rounds():
    for i in range(5):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block = libc.malloc(80_000_000)
        ctypes.memset(block, 1, 80_000_000)
        libc.free(ctypes.c_void_p(block))
        if i:
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)

worker = threading.Thread(target=rounds)
worker.start()
worker.join()
print(applied, sum(faults))
"""


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], int(out[1])


def test_freed_large_blocks_are_reused_instead_of_faulted_in_again():
    """Runs on Linux with glibc (CI); elsewhere the setting does not apply and says so."""
    applied, reused = _faults("reuse")
    _, default = _faults("default")
    if platform.libc_ver()[0] != "glibc":
        assert applied == "False"
        return
    assert applied == "True"
    # glibc's default maps each 80 MB block afresh: ~19.5k page faults a round (4 KiB pages)
    assert default > 4 * 10_000
    assert reused < default / 20


def test_other_c_libraries_are_left_alone(monkeypatch):
    monkeypatch.setattr(platform, "libc_ver", lambda: ("musl", "1.2"))
    assert host_memory.reuse_freed_memory() is False
