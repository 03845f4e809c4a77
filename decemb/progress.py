"""Progress bars: transformers' own (weight loading) follow decemb's ``show_progress``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["transformers_progress"]


@contextlib.contextmanager
def transformers_progress(enabled: bool) -> Iterator[None]:
    """Show transformers' own progress bars (weight loading) only when ours are shown."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.is_progress_bar_enabled()
    if before and not enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if before and not enabled:
            hf_logging.enable_progress_bar()
