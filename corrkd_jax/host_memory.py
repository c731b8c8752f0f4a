"""Host memory: let glibc's malloc reuse freed blocks instead of returning them to the kernel.

On the CPU backend XLA allocates every step's large temporaries (tens to hundreds of MB: the
`[C, N]` output layer, attention scores, the KD pair blocks) with `posix_memalign` from its
worker threads and frees them at the end of the step. glibc serves blocks that large from a
fresh `mmap` (a worker thread's arena cannot hold them) and unmaps them on `free`, so every
step touches hundreds of MB of new pages: ~70-80k page faults per second, a fifth to a third of the
process's CPU time in the kernel (measured on the study's Toys and Sports cells, 2026-12-02).
With one arena, no `mmap` for large blocks and no trimming, the blocks come from the heap and
are reused by the next step: a Toys session-graph KDSR epoch takes 134 s instead of 190 s,
with 0.3 M page faults and 3 s of kernel CPU per run instead of 23.9 M and 94 s, and the same
metrics (benchmarks/perf/host_memory.md).

The cost: the process keeps its peak heap (nothing is handed back to the kernel until it
exits), and all threads share one malloc arena (fine for XLA's few large blocks; a program
with many threads doing small allocations may prefer glibc's defaults).

Only the training entry point calls this, first thing, before JAX creates its backend: the
setting is process-wide, and a thread that allocated before it keeps its own arena. Importing
`corrkd_jax` changes nothing. `python -m corrkd_jax.train --noreuse_host_memory` keeps glibc's
defaults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

# mallopt parameters, <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_TRIM_NEVER = 2**31 - 1  # mallopt takes an int: 2 GiB of free heap top before trimming


def reuse_freed_memory() -> bool:
    """Sets glibc malloc to one arena, no `mmap` for large blocks, no heap trimming.

    Returns True if applied; False on a C library other than glibc (macOS, musl: nothing to
    do).
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    settings = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _TRIM_NEVER))
    return all(libc.mallopt(param, value) == 1 for param, value in settings)
