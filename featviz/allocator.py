"""Keep freed memory in the process rather than handing it back to the OS (glibc only).

glibc serves blocks over a threshold (at most 32 MiB) with mmap and unmaps them on free, and
returns the top of its heap once it passes a trim threshold. An optimization step allocates and
frees the same activation tensors every time, so each step page-faults fresh zeroed pages in:
on the 2-core test machine a third of the CPU time went to the kernel. Turning off mmap for
allocations and raising the trim threshold keeps those pages for the next step (what that is
worth: docs/benchmarks.md). The cost is a process that holds on to its peak memory until it
exits, which suits a one-job command.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
TRIM_THRESHOLD_BYTES = 1 << 30


def keep_freed_memory() -> bool:
    """Configure glibc's malloc for this process; False where the C library is not glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
