"""Peak memory of a block of code: on a GPU torch.cuda's peak allocation, on CPU the process's peak
resident set size (Linux VmHWM, reset through /proc/self/clear_refs), each as the increase over what
was held when the block began.

The CPU number counts everything the process touches (allocator slack included) and is only clean in a
process that has not run a bigger workload before: benchmarks measure each method in a fresh process.
"""

import re
from pathlib import Path

import torch

from diffusion.device import is_cuda

STATUS, CLEAR_REFS = Path("/proc/self/status"), Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int:
    return int(re.search(rf"^{field}:\s+(\d+) kB", STATUS.read_text(), re.M).group(1))


class PeakMemory:
    """with PeakMemory(device) as peak: ...; then peak.bytes (the increase) and peak.source (what was read)."""

    def __init__(self, device: torch.device):
        self.cuda = is_cuda(device)
        self.source = "torch.cuda.max_memory_allocated" if self.cuda else "process peak RSS (VmHWM)"
        if not self.cuda and not CLEAR_REFS.exists():
            raise RuntimeError("peak RSS needs Linux's /proc/self/clear_refs; run on Linux or on a GPU")
        self.bytes = 0

    def __enter__(self) -> "PeakMemory":
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._start = torch.cuda.memory_allocated()
        else:
            CLEAR_REFS.write_text("5")  # resets VmHWM to the current RSS
            self._start = _status_kib("VmRSS") * 1024
        return self

    def __exit__(self, *exc) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            self.bytes = torch.cuda.max_memory_allocated() - self._start
        else:
            self.bytes = _status_kib("VmHWM") * 1024 - self._start
