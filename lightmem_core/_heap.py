"""Freed memory is overwritten, so that no file written later can carry it.

Chroma's HNSW writer (hnswlib) persists buffers it allocated with ``malloc`` and never
zeroed, in ``data_level0.bin`` and ``length.bin`` (chroma-core/chroma#7688): whatever was on
the process heap before lands in the files, other users' metadata and vectors among it. A
user erased from the store could so survive, in a file written after the erasure, as bytes
of recycled memory. glibc's ``M_PERTURB`` makes ``free`` overwrite what it frees and
``malloc`` fill what it hands out, so a new buffer holds zeros instead of old data.

Set once per process, in any process that opens an embedded store (it is the process that
writes the HNSW files). Off Linux/glibc this does nothing: ``docs/reliability.md`` says
what that leaves.
"""

from __future__ import annotations

import ctypes
import sys
import threading

__all__ = ["overwrite_freed_memory"]

_M_PERTURB = -6  # glibc's malloc.h
# free() writes this byte, malloc() its complement: 0xFF makes new buffers zero.
_PERTURB_BYTE = 0xFF

_done = False
_lock = threading.Lock()


def overwrite_freed_memory() -> bool:
    """Ask glibc to overwrite freed heap memory from now on; whether it is in effect."""
    global _done
    with _lock:
        if _done:
            return True
        if not sys.platform.startswith("linux"):
            return False
        try:
            mallopt = ctypes.CDLL(None).mallopt
        except (OSError, AttributeError):  # not glibc (musl has no mallopt)
            return False
        mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        mallopt.restype = ctypes.c_int
        _done = bool(mallopt(_M_PERTURB, _PERTURB_BYTE))
        return _done
