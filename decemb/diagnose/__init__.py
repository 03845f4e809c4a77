"""Diagnostics of decoder embeddings: the discrimination gap and the echo probe (``decemb diagnose``).

* :func:`discrimination_gap`: mean cosine of related pairs minus that of unrelated (random) pairs, with the
  distributions for a histogram (:mod:`decemb.diagnose.gap`).
* :func:`echo_probe`: does the representation of a shared prefix A know whether B or a paraphrase B+ or an
  unrelated B− follows? (:mod:`decemb.diagnose.probe`; the shipped item set: :mod:`decemb.diagnose.probeset`).
* :func:`diagnose`: both, for every strategy of one model loaded once (:mod:`decemb.diagnose.run`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from decemb.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, __file__)  # the names below load on first use

if TYPE_CHECKING:
    from decemb.diagnose.gap import Gap, Pairs, discrimination_gap, load_pairs
    from decemb.diagnose.probe import ProbeItem, echo_probe
    from decemb.diagnose.probeset import build_probe_set, load_probe_set
    from decemb.diagnose.report import format_table, plot_histograms
    from decemb.diagnose.run import DiagnoseSettings, diagnose
