"""Moved to :mod:`decemb.tasks.mteb_replay` (only the tasks use it); this name re-exports it."""

from __future__ import annotations

from decemb.tasks.mteb_replay import STAND_IN_DIM, RecordingEncoder, ReplayEncoder, evaluate_subsets

__all__ = ["STAND_IN_DIM", "RecordingEncoder", "ReplayEncoder", "evaluate_subsets"]
