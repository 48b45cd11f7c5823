"""Peak host memory of one inference: the process's peak resident set above the loaded model's.

Why not simply "peak RSS during the timed runs minus RSS before them" (which read 0 MB for PyTorch): freed
memory stays in the process. glibc keeps freed blocks in its heap (its mmap threshold grows after the first
large free), and ONNX Runtime keeps its arena, so after the first call at a sequence length the next calls
reuse resident pages and add nothing. Here, before the measured call, freed memory is handed back to the
OS (`malloc_trim`; for ONNX Runtime the call before uses arena shrinkage), the high-water mark VmHWM is
reset through /proc/self/clear_refs, and the measured call's peak above the resident set before it is
what the configuration needs. Native allocations (oneDNN, MLAS, ONNX Runtime) count, which tracemalloc
would miss. Where VmHWM cannot be reset (not Linux) the peak is unknown: None, never a made-up 0.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
from collections.abc import Callable, Iterator

_MiB = 2**20


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc; the process's own symbols include libc's
    except (OSError, AttributeError):
        return None


def release_freed_memory() -> None:
    """Return memory the C allocator holds but nothing uses to the OS (glibc; a no-op elsewhere)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:  # size resident ... in pages
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / _MiB


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current resident set (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    raise OSError("no VmHWM in /proc/self/status")


class PeakMemory:
    """Result holder of `measure_host_peak`: `mb` is None when the peak could not be measured."""

    mb: float | None = None


@contextlib.contextmanager
def measure_host_peak() -> Iterator[PeakMemory]:
    """`with measure_host_peak() as m: run()` -> m.mb, the peak resident MB above the resident set at entry."""
    out = PeakMemory()
    release_freed_memory()
    try:
        ok, base = reset_peak_rss(), rss_mb()
    except OSError:
        ok, base = False, 0.0
    yield out
    if ok:
        out.mb = max(peak_rss_mb() - base, 0.0)


def host_peak_of(run: Callable[[], object], release: Callable[[], object] | None = None) -> float | None:
    """Peak MB of one `run()` above the memory of the loaded model; `release()` first hands back what an
    earlier call left in runtime-owned pools (an ONNX Runtime run with arena shrinkage)."""
    if release is not None:
        release()
    with measure_host_peak() as peak:
        run()
    return peak.mb


@contextlib.contextmanager
def measure_cuda_peak() -> Iterator[PeakMemory]:
    """Like `measure_host_peak` for torch's CUDA allocator: peak allocated above what was allocated at entry."""
    import torch

    out = PeakMemory()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    yield out
    torch.cuda.synchronize()
    out.mb = max(torch.cuda.max_memory_allocated() - base, 0) / _MiB
