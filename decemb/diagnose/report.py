"""Showing diagnostics: a text table with one-line histograms, and a PNG of the cosine distributions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

BARS = " ▁▂▃▄▅▆▇█"
BINS = np.linspace(-0.2, 1.0, 25)  # cosines below -0.2 land in the first bin


def sparkline(values: np.ndarray, bins: np.ndarray = BINS) -> str:
    """A histogram of ``values`` as one line of block characters (height ∝ count)."""
    if values.size == 0:
        return ""
    counts, _ = np.histogram(np.clip(values, bins[0], bins[-1]), bins=bins)
    top = counts.max() or 1
    return "".join(BARS[int(np.ceil(count / top * (len(BARS) - 1)))] for count in counts)


def _number(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def format_table(results: list[dict[str, Any]]) -> str:
    """The per-strategy table (gap and echo probe), then the cosine histograms over [-0.2, 1]."""
    width = max([8, *(len(result["label"]) for result in results)])
    header = "related  unrelated  gap     low-scored  prefix B+ wins  prefix ties  embedding B+ wins"
    rule = "-------  ---------  ------  ----------  --------------  -----------  -----------------"
    lines = [f"{'strategy':<{width}}  {header}", f"{'-' * width}  {rule}"]
    for result in results:
        gap, probe = result.get("gap") or {}, result.get("probe") or {}
        cells = [
            f"{result['label']:<{width}}",
            f"{_number(gap.get('related')):>7}",
            f"{_number(gap.get('unrelated')):>9}",
            f"{_number(gap.get('gap')):>6}",
            f"{_number(gap.get('low_scored')):>10}",
            f"{_percent(probe.get('prefix_accuracy')):>14}",
            f"{_percent(probe.get('prefix_ties')):>11}",
            f"{_percent(probe.get('embedding_accuracy')):>17}",
        ]
        lines.append("  ".join(cells))
    histograms = [result for result in results if result.get("cosines")]
    if histograms:
        lines += ["", f"cosine histograms, {BINS[0]:g} … {BINS[-1]:g} (R related, U unrelated random pairs)"]
        for result in histograms:
            cosines = result["cosines"]
            lines.append(f"{result['label']:<{width}}  R {sparkline(cosines['related'])}")
            lines.append(f"{'':<{width}}  U {sparkline(cosines['unrelated'])}")
    return "\n".join(lines) + "\n"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def plot_histograms(results: list[dict[str, Any]], path: str | Path, title: str) -> Path:
    """One panel per strategy: density histograms of related, low-scored and random-pair cosines (each
    panel's x range starts at its lowest cosine)."""
    from decemb.errors import require_extra

    require_extra("matplotlib", "plots", "the gap histograms")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    shown = [result for result in results if result.get("cosines")]
    if not shown:
        raise ValueError("no discrimination-gap results to plot")
    columns = min(4, len(shown))
    rows = -(-len(shown) // columns)
    figure = Figure(figsize=(3.6 * columns, 2.8 * rows + 0.6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    limits = shown[0].get("gap_settings") or {}
    series = [("related", f"related (gold ≥ {limits.get('related_min', 4.0):g})", "tab:green")]
    series += [("unrelated", "random pairs", "tab:red")]
    series += [("low_scored", f"low-scored (gold ≤ {limits.get('unrelated_max', 1.0):g})", "tab:orange")]
    for axis, result in zip(axes, shown):
        arrays = {key: np.asarray(result["cosines"].get(key, [])) for key, _, _ in series}
        low = min((float(values.min()) for values in arrays.values() if values.size), default=0.0)
        bins = np.linspace(max(-1.0, low - 0.01), 1.0, 41)  # per panel: raw decoder states crowd near 1
        for key, label, color in series:
            if arrays[key].size:
                axis.hist(arrays[key], bins=bins, density=True, alpha=0.5, color=color, label=label)
        gap = result["gap"]
        axis.set_title(f"{result['label']}: gap {gap['gap']:.3f}", fontsize=10)
        axis.set_xlabel("cosine")
    for axis in axes[len(shown) :]:
        axis.set_visible(False)
    axes[0].legend(fontsize=7, loc="upper left")
    figure.suptitle(title, fontsize=11)
    target = Path(path)
    figure.savefig(target, dpi=110)
    return target
