"""One line naming the machine a benchmark ran on (cores, CPU model, memory, Python), for its docs section."""

from __future__ import annotations

import os
import platform


def cpu_description() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import psutil

    return (
        f"{os.cpu_count()} cores ({model}), {psutil.virtual_memory().total / 2**30:.0f} GiB, "
        f"CPython {platform.python_version()}"
    )
