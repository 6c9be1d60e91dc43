"""The C allocator's setting for long-running kevents processes: large blocks go back to the OS.

glibc's malloc serves a block of 128 KiB or more with its own mmap, unmapped when freed, but
each time it frees such a block it raises that threshold to the block's size (up to 32 MiB).
After the first large API answer or checkpoint document, blocks of a few hundred KiB come
from the heap instead, and the holes they leave between long-lived allocations stay in RSS
for good. `tune()` fixes the threshold at 128 KiB (glibc's initial value, which also stops
the trim threshold from following it), as `MALLOC_MMAP_THRESHOLD_=131072` would. Measured on
the ApiServerSource adapter (issue 24): RSS grew 6.6 MiB instead of 9.2 MiB over 10,000
new ConfigMaps, its checkpoint written every 5 s meanwhile. The cost is an mmap and munmap
per block that large (a large event body), small beside handling such a body.

Other C libraries (musl) are left as they are.
"""

from __future__ import annotations

import ctypes
import logging

logger = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3
"""glibc's `mallopt` parameter number (malloc.h)."""
MMAP_THRESHOLD = 128 * 1024
"""Bytes from which a block gets its own mapping: glibc's initial threshold."""


def tune() -> bool:
    """Fix glibc's mmap threshold; False when the C library has no such setting."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    if not done:
        logger.debug("The C library did not take mallopt(M_MMAP_THRESHOLD); left as it is.")
    return done
