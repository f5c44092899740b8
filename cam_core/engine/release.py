"""Handing freed memory back to the operating system, so a long-running server's resident size follows its caches."""

from __future__ import annotations

import ctypes
import sys

M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 4 << 20


def _glibc():
    """glibc, or None where the C library is another (macOS, Windows, musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None


_GLIBC = _glibc()


def steady_heap() -> bool:
    """Serve allocations of 4 MiB and more (large tensors) straight from the OS, so freeing them returns the memory.

    glibc's default raises this threshold after every large free (up to 32 MiB), after which large tensors come from
    the heap and fragment it: a dashboard server grew by 500 MiB over 100 uploads with a 128 MiB cache. A fixed 4 MiB
    keeps the speed (a 128 KiB threshold made passes about twice as slow). True where it took effect.
    """
    return _GLIBC is not None and _GLIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1


def return_free_memory() -> None:
    """Give the C allocator's free pages back to the OS (glibc malloc_trim; nothing elsewhere).

    Large tensors freed by a dropped analysis otherwise stay in glibc's heaps, whose threshold for returning memory
    rises with every large free, and a server that analyses one image after another grows without bound.
    """
    if _GLIBC is not None:
        _GLIBC.malloc_trim(0)
