"""``decemb serve`` as a command: one-line errors before any model loads (a busy port, a missing extra, a limit
past max_length), and a real server process that answers every in-flight request when it gets SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from helpers import CORPUS, isolate, save_tiny_model, tiny_backbone

import decemb
from decemb.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    yield from isolate(tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("serve") / "tiny")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_busy_port_is_refused_before_the_model_loads(model_dir: Path, capsys) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        started = time.monotonic()
        assert main(["serve", "no-such-model", "--port", str(port)]) == 2
    assert time.monotonic() - started < 5
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--port" in err[0] and str(port) in err[0]


def test_a_token_limit_past_max_length_is_refused(model_dir: Path, capsys) -> None:
    argv = ["serve", str(model_dir), "--max-length", "32", "--max-tokens-per-input", "64", "--port", str(free_port())]
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("Loading weights")]
    assert len(err) == 1 and "--max-tokens-per-input" in err[0] and "max_length (32)" in err[0]


def test_changing_a_saved_models_settings_needs_a_strategy(tmp_path: Path, capsys) -> None:
    model, tokenizer = tiny_backbone("llama")
    saved = tmp_path / "saved"
    decemb.from_backbone(model, tokenizer, "echo").save(str(saved))
    capsys.readouterr()  # the save's progress bars
    assert main(["serve", str(saved), "--normalize", "--port", str(free_port())]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--normalize" in err[0] and "--strategy" in err[0]


@pytest.mark.parametrize("module", ["fastapi", "uvicorn"])
def test_without_the_extra_one_line_names_it(module: str) -> None:
    code = f"import sys; sys.modules[{module!r}] = None; from decemb.cli import main; sys.exit(main(['serve', 'x']))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and f"needs {module}" in lines[0] and "pip install 'decemb[serve]'" in lines[0]


def test_importing_the_app_without_fastapi_names_the_extra() -> None:
    code = "import sys; sys.modules['fastapi'] = None; import decemb.serve.app"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1].endswith("decemb serve needs fastapi: pip install 'decemb[serve]'")


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else "the server exited"
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("the server did not come up")


def test_sigterm_answers_every_in_flight_request_then_stops(model_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "decemb.cli", "serve", str(model_dir), "--strategy", "mean", "--port", str(port)]
    command += ["--max-wait-ms", "1500", "--threads", "1", "--served-model-name", "tiny", "--no-access-log"]
    env = {**os.environ, "DECEMB_API_KEY": "secret", "DECEMB_CACHE": str(tmp_path / "cache")}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_healthy(url, process)
        requests = [[CORPUS[(start + k) % len(CORPUS)] for k in range(3)] for start in range(4)]

        def send(texts: list[str]) -> httpx.Response:
            body = {"input": texts, "model": "tiny", "encoding_format": "float"}
            return httpx.post(url + "/v1/embeddings", json=body, headers={"Authorization": "Bearer secret"}, timeout=60)

        with ThreadPoolExecutor(len(requests)) as pool:
            futures = [pool.submit(send, texts) for texts in requests]
            time.sleep(0.6)  # every request is in; the batcher waits up to 1.5 s for more
            process.send_signal(signal.SIGTERM)
            answers = [future.result() for future in futures]
        assert process.wait(60) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reference = decemb.load(model_dir, "mean")
    for texts, answer in zip(requests, answers):
        assert answer.status_code == 200, answer.text
        got = np.array([item["embedding"] for item in answer.json()["data"]])
        np.testing.assert_allclose(got, reference.encode(texts), atol=1e-5, rtol=0)
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/health", timeout=2)
