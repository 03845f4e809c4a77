"""Every strategy × tiny architecture × side gives the vectors that main gave before the encoding-core
refactor (fixture generated once from commit 1a7cda0 by ``tests/fixtures/make_regression_vectors.py``).

Both entry points are compared: the sentence-transformers model and the comparison engine.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
sys.path.insert(0, str(FIXTURES))

from helpers import ARCHITECTURES, tiny_backbone  # noqa: E402
from make_regression_vectors import CASES, TEXTS, case_key  # noqa: E402

EXPECTED = np.load(FIXTURES / "regression_vectors.npz")


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize(("name", "options"), CASES)
def test_sentence_transformer_vectors_unchanged(arch, name, options):
    import decemb

    model, tokenizer = tiny_backbone(arch)
    st = decemb.from_backbone(model, tokenizer, name, max_length=64, **options)
    for side, encode in (("query", st.encode_query), ("document", st.encode_document)):
        got = encode(TEXTS, batch_size=2)
        np.testing.assert_allclose(got, EXPECTED[case_key(arch, name, options, side)], rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_engine_vectors_unchanged(arch):

    from decemb import build_strategy
    from decemb.engine import EmbeddingJob, Engine
    from decemb.settings import EncodeSettings

    model, tokenizer = tiny_backbone(arch)
    engine = Engine(model, tokenizer, EncodeSettings(max_length=64, batch_size=3))
    jobs, keys = [], []
    for name, options in CASES:
        for side in ("query", "document"):
            jobs.append(EmbeddingJob(build_strategy(name, **options), side, TEXTS))
            keys.append(case_key(arch, name, options, side))
    for key, got in zip(keys, engine.embed(jobs), strict=True):
        np.testing.assert_allclose(got, EXPECTED[key], rtol=1e-5, atol=2e-6)
