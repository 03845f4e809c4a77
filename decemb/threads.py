"""How many CPU threads torch may use: a default that does not collapse on a shared machine.

torch starts one OpenMP thread per core. When other processes already hold those cores, the threads
wait on each other and a run gets several times slower (measured: 732 CPU-seconds instead of 161 for the
same comparison at load 5-12 on 2 cores). The default is therefore the cores that are not busy now —
usable cores minus the 1-minute load average, at least 1 — unless ``OMP_NUM_THREADS`` says otherwise.
"""

from __future__ import annotations

import logging
import os
import sys

logger = logging.getLogger(__name__)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_threads() -> int:
    """``$OMP_NUM_THREADS`` when set, else the usable cores minus the 1-minute load average (at least 1)."""
    explicit = os.environ.get("OMP_NUM_THREADS", "").strip()
    if explicit.isdigit() and int(explicit) > 0:
        return int(explicit)
    cores = usable_cores()
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):
        busy = 0.0
    return max(1, min(cores, cores - round(busy)))


def set_threads(threads: int | None = None) -> int:
    """Give torch ``threads`` intra-op threads (default: :func:`default_threads`); returns the number set.

    Before torch is imported this only sets ``OMP_NUM_THREADS`` (torch reads it when it starts), so a
    command that never needs a model never pays for importing torch."""
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    count = default_threads() if threads is None else threads
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(count)
    else:
        os.environ["OMP_NUM_THREADS"] = str(count)
    logger.info("torch uses %d thread(s)", count)
    return count
