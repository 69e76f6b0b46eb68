"""glibc's allocator told to keep freed memory, so large tensors stop costing page faults.

By default glibc serves large blocks (above a threshold that adapts up to 32 MB) with fresh ``mmap``
calls and returns freed memory to the kernel, so a training step that allocates and frees the same
feature maps every step pays a page fault per 4 KB of them, again and again, in kernel time. On a
2-core VM this was half of FRNet's forward + backward: 1.5 s of 3.3 s ``sys`` time per 5 steps
(``bench/allocator.py``). :func:`keep_freed_memory` makes every allocation come from the heap and
keeps what is freed for reuse: the process holds on to its peak memory instead. Results are
bitwise unchanged (tests/test_allocator.py). Other C libraries (musl, macOS) are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD = -1  # mallopt parameters (malloc.h)
M_MMAP_MAX = -4
TRIM_THRESHOLD = 1 << 30  # free heap top above this is returned to the kernel: effectively never


@functools.cache
def keep_freed_memory() -> bool:
    """Set glibc's ``M_MMAP_MAX`` to 0 and ``M_TRIM_THRESHOLD`` to 1 GiB in this process (once);
    True where it took effect, False where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
