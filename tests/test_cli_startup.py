"""The command line answers at once: nothing heavy is imported until a model is needed."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

BUDGET_S = 2.0  # `decemb --help`, `strategies`, config validation and usage errors; the machine may be busy
HEAVY = ("torch", "transformers", "sentence_transformers", "matplotlib", "sklearn", "scipy")

PROBE = """
import sys
from decemb.cli import main
code = main(sys.argv[1:])
print("HEAVY:" + ",".join(m for m in {heavy!r} if m in sys.modules))
sys.exit(code)
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["strategies"],
        ["train", "--help"],
        ["search", "--help"],
        ["diagnose", "--help"],
        ["compare", "missing.yaml"],
        ["encode", "x"],
    ],
    ids=["help", "strategies", "train-help", "search-help", "diagnose-help", "missing-config", "encode-usage"],
)
def test_cli_answers_without_heavy_imports_within_budget(argv, tmp_path):
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *argv], capture_output=True, text=True, cwd=tmp_path
    )
    seconds = time.perf_counter() - start
    heavy = done.stdout.rsplit("HEAVY:", 1)[-1].strip()
    assert heavy == "", f"`decemb {' '.join(argv)}` imported {heavy}"
    assert seconds < BUDGET_S, f"`decemb {' '.join(argv)}` took {seconds:.2f} s (budget {BUDGET_S} s)"
