"""Giving freed memory back to the system between the stages of a large build.

A million-student build frees gigabytes of intermediate columns stage by stage. Both Arrow's allocator and
glibc's keep freed blocks for reuse, so the process would hold them as if still in use and its peak would
be the sum of every stage, not the largest. These two calls make freed memory count as free.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys

import pyarrow as pa

RETURN_AFTER_MS = 1000


def use_returning_allocator() -> None:
    """Arrow allocates through jemalloc, which hands freed blocks back to the system a second after they
    were freed (and at once on :func:`release_freed_memory`).

    Not at once on every free: a build allocates and frees column-sized blocks thousands of times, and
    each block handed back is faulted in again, page by page, when the next is allocated. With no delay a
    1M-student build spent 13 s of CPU in the kernel doing that; with a second's delay, 5 s, for a peak
    about 5% higher. Where this pyarrow has no jemalloc, nothing changes.
    """
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
        pa.jemalloc_set_decay_ms(RETURN_AFTER_MS)
    except (NotImplementedError, pa.ArrowNotImplementedError):
        pass


def release_freed_memory() -> None:
    """Collect garbage and ask glibc's malloc (numpy's and pandas' allocator) to return free pages."""
    gc.collect()
    pa.default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        name = ctypes.util.find_library("c")
        if name:
            trim = getattr(ctypes.CDLL(name), "malloc_trim", None)
            if trim is not None:
                trim(0)
