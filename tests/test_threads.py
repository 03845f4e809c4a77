"""The thread default follows the machine's free cores; an explicit setting wins."""

from __future__ import annotations

import pytest
import torch

from decemb import threads


@pytest.mark.parametrize(("cores", "load", "expected"), [(2, 0.1, 2), (2, 1.2, 1), (2, 7.5, 1), (16, 3.4, 13)])
def test_default_is_the_cores_not_already_busy(monkeypatch, cores, load, expected):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: cores)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (load, load, load))
    assert threads.default_threads() == expected


def test_omp_num_threads_wins(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (50.0, 50.0, 50.0))
    assert threads.default_threads() == 3


def test_before_torch_loads_only_the_environment_is_set(tmp_path):
    import os
    import subprocess
    import sys

    probe = "import os, sys; from decemb.threads import set_threads; set_threads(1); "
    probe += "assert 'torch' not in sys.modules; import torch; print(torch.get_num_threads())"
    env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert done.stdout.strip() == "1", done.stderr


def test_set_threads_sets_torch_and_refuses_nonsense():
    before = torch.get_num_threads()
    try:
        assert threads.set_threads(2) == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="threads must be >= 1"):
        threads.set_threads(0)


def test_a_comparison_config_sets_threads_unless_the_command_line_does(tmp_path, monkeypatch):
    import yaml
    from helpers import make_config, save_tiny_model

    import decemb.threads as threads_module
    from decemb.cli import main

    calls: list[int | None] = []
    monkeypatch.setattr(threads_module, "set_threads", lambda n=None: calls.append(n) or 1)
    monkeypatch.setenv("DECEMB_CACHE", str(tmp_path / "cache"))
    config = make_config(save_tiny_model(tmp_path / "model"), tmp_path, threads=1)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["compare", str(path), "--quiet", "--out", str(tmp_path / "a")]) == 0
    assert calls == [None, 1]  # the default first, then the config's
    calls.clear()
    assert main(["compare", str(path), "--quiet", "--threads", "2", "--out", str(tmp_path / "b")]) == 0
    assert calls == [2]
