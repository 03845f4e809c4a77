"""The int8 CPU backend (decemb.backends, decemb.int8): every strategy runs on it, its vectors stay close to
float32, batch invariance holds, the caller's model is never changed, and the fingerprint records it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import CASE_IDS, CASES, tiny_backbone

import decemb
from decemb.backends import backend_of, with_backend
from decemb.engine import fingerprint
from decemb.int8 import RowInt8Linear

# Architectures whose projections are torch.nn.Linear (GPT-2's are Conv1D: nothing to quantize there).
INT8_ARCHITECTURES = ["llama", "qwen2", "gemma3_text"]
TARGET = "A man is playing a guitar."
OTHERS = ["Hi", "Dogs run in the park while children play football, and the cat sat on the mat."]
# Measured on the tiny models: worst cosine(int8, float32) 0.9992 over 4 architectures x 13 strategy cases.
# 0.995 leaves 6x headroom on 1 - cosine; a wrong scale, rotation or layout gives cosines far below 0.9.
MIN_COSINE = 0.995


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.parametrize(("name", "options"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("arch", INT8_ARCHITECTURES)
def test_every_strategy_runs_on_int8_close_to_float32_and_batch_invariant(arch, name, options):
    model, tokenizer = tiny_backbone(arch)
    reference = decemb.from_backbone(model, tokenizer, name, **options)
    int8 = decemb.from_backbone(model, tokenizer, name, backend="int8", **options)
    assert backend_of(int8[0].auto_model) == "int8"
    for kind in ("encode_query", "encode_document"):
        expected = getattr(reference, kind)([TARGET, *OTHERS])
        got = getattr(int8, kind)([TARGET, *OTHERS])
        assert np.isfinite(got).all()
        assert _cosines(got, expected).min() >= MIN_COSINE, (kind, _cosines(got, expected))
        alone = getattr(int8, kind)([TARGET])[0]
        batch = getattr(int8, kind)([OTHERS[0], TARGET, OTHERS[1]], batch_size=8)
        np.testing.assert_allclose(batch[1], alone, atol=1e-5, rtol=0)


def test_int8_vectors_differ_from_float32_so_the_bound_is_not_trivial():
    model, tokenizer = tiny_backbone("llama")
    a = decemb.from_backbone(model, tokenizer, "mean").encode([TARGET, *OTHERS])
    b = decemb.from_backbone(model, tokenizer, "mean", backend="int8").encode([TARGET, *OTHERS])
    assert np.abs(a - b).max() > 1e-4  # int8 really runs (else the closeness test above proves nothing)


def test_layer_choice_and_padding_side_on_int8():
    model, tokenizer = tiny_backbone("llama")
    left = decemb.from_backbone(model, tokenizer, "echo", layer=1, padding_side="left", backend="int8")
    right = decemb.from_backbone(model, tokenizer, "echo", layer=1, padding_side="right", backend="int8")
    np.testing.assert_allclose(left.encode([TARGET, *OTHERS]), right.encode([TARGET, *OTHERS]), atol=1e-5, rtol=0)


def test_row_int8_linear_is_exactly_row_independent_and_close_to_float():
    torch.manual_seed(0)
    linear = torch.nn.Linear(128, 48)
    rows = torch.randn(6, 128)
    rows[0] *= 50  # an outlier row (an attention sink) must not change its neighbours' results
    quantized = RowInt8Linear(linear)
    together = quantized(rows)
    for index in range(len(rows)):
        assert torch.equal(quantized(rows[index : index + 1])[0], together[index])
    expected = linear(rows).detach()
    assert float((together - expected).norm() / expected.norm()) < 0.03


def test_the_callers_model_is_not_changed_and_the_fingerprint_records_the_backend():
    model, _ = tiny_backbone("llama")
    before = fingerprint(model)
    converted = with_backend(model, "int8")
    assert converted is not model
    assert fingerprint(model) == before and backend_of(model) == "torch"
    assert all(not isinstance(module, RowInt8Linear) for module in model.modules())
    assert fingerprint(converted) != before
    assert with_backend(model, "torch") is model


def test_int8_model_refuses_to_save(tmp_path):
    model, tokenizer = tiny_backbone("llama")
    st = decemb.from_backbone(model, tokenizer, "mean", backend="int8")
    with pytest.raises(ValueError, match="cannot be saved"):
        st.save(str(tmp_path / "out"))


def test_bad_backend_name_is_one_line_with_a_suggestion_before_loading():
    with pytest.raises(ValueError) as caught:
        decemb.load("no-such-model-anywhere", backend="int9")  # the backend is checked before the source
    message = str(caught.value)
    assert "\n" not in message and "did you mean 'int8'" in message.lower()
