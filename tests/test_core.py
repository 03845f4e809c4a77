"""The encoding core's contract: one settings object, checked once; saved folders; thread safety."""

from __future__ import annotations

import json
import sys
import threading
from typing import ClassVar

import numpy as np
import pytest
from helpers import tiny_backbone

import decemb
from decemb.forward import cache_argument
from decemb.settings import EncodeSettings, settings_from
from decemb.st import DecembEmbedder
from decemb.strategies import Strategy

TEXTS = ["A man is playing a guitar.", "The cat sat on the mat.", "Dogs run in the park while children play."]


def test_settings_errors_name_the_key_and_suggest():
    with pytest.raises(ValueError, match=r"^max_lenght: unknown setting \(did you mean 'max_length'\?\)$"):
        settings_from(max_lenght=3)
    with pytest.raises(ValueError, match=r"^padding_side: must be 'left' or 'right'"):
        settings_from(padding_side="top")
    with pytest.raises(ValueError, match="deterministic=True needs padding_side='right'"):
        EncodeSettings(deterministic=True, padding_side="left")
    assert settings_from(EncodeSettings(layer=1), padding_side=None).padding_side == "right"


def test_max_length_is_capped_once_everywhere_and_the_setter_checks_again():
    model, tokenizer = tiny_backbone("gpt2")  # 256 learned positions
    st = decemb.from_backbone(model, tokenizer, "echo", max_length=10_000)
    assert st[0].max_seq_length == 256
    st.max_seq_length = 100_000
    assert st[0].max_seq_length == 256  # the setter caps like the constructor
    with pytest.raises(ValueError, match="leaves no room for the text"):
        st.max_seq_length = 8  # the echo template alone is longer: refused at once, not at encode time
    assert st[0].max_seq_length == 256  # and the model is left as it was


def test_legacy_folder_with_a_pooling_setting_loads_and_follows_the_strategy(tmp_path):
    model, tokenizer = tiny_backbone("llama")
    st = decemb.from_backbone(model, tokenizer, "echo", pooling="last", max_length=64)
    expected = st.encode(TEXTS)
    st.save(str(tmp_path))
    pooling_config = next(tmp_path.glob("*DecembPooling/config.json"))
    # Folders saved before the strategy owned the pooling carried it here too (and could disagree).
    pooling_config.write_text(json.dumps({"pooling": "mean", "embedding_dimension": 32}))
    again = decemb.load(tmp_path)
    np.testing.assert_allclose(again.encode(TEXTS), expected, atol=1e-6, rtol=0)


def test_reload_refuses_unknown_model_kwargs(tmp_path):
    decemb.from_backbone(*tiny_backbone("llama"), "mean").save(str(tmp_path))
    with pytest.raises(ValueError, match=r"model_kwargs \['load_in_8bit'\] are not supported"):
        DecembEmbedder.load(str(tmp_path), model_kwargs={"load_in_8bit": True})


@pytest.mark.parametrize("layer", [1, 0])
def test_threads_encoding_at_an_intermediate_layer_match_sequential_runs(layer):
    model, tokenizer = tiny_backbone("qwen2")
    mid = decemb.from_backbone(model, tokenizer, "mean", layer=layer)
    top = decemb.from_backbone(model, tokenizer, "mean")
    expected = {"mid": mid.encode(TEXTS), "top": top.encode(TEXTS)}
    failures: list[str] = []

    def work(which: str) -> None:
        for _ in range(15):
            try:
                got = (mid if which == "mid" else top).encode(TEXTS)
            except Exception as error:  # another thread's hook firing here would raise inside our forward
                failures.append(f"{which}: {type(error).__name__}")
                continue
            if not np.allclose(got, expected[which], atol=1e-6, rtol=0):
                failures.append(which)

    threads = [threading.Thread(target=work, args=(w,)) for w in ("mid", "top", "mid", "top")]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: inside every forward
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert not failures


def test_the_cache_argument_is_read_from_the_signature():
    class New:
        def forward(self, input_ids=None, cache=None): ...

    class Old:
        def forward(self, input_ids=None, past_key_values=None): ...

    assert cache_argument(New) == "cache"
    assert cache_argument(Old) == "past_key_values"


def test_a_strategy_option_may_not_shadow_a_setting():
    class Clashing(Strategy):
        name: ClassVar[str] = "clashing"
        layer: int = 0

    with pytest.raises(ValueError, match=r"option\(s\) \['layer'\] clash with encode settings"):
        decemb.register(Clashing)


def test_only_instruct_asks_for_a_task_instruction():
    instruct = decemb.build_strategy("instruct")
    assert instruct.task_instruction("scifact", "retrieval").startswith("Given a scientific claim")
    assert instruct.task_instruction("my-task", "sts") == decemb.instruction_for("sts")
    assert decemb.build_strategy("instruct", instruction="x").task_instruction("scifact", "retrieval") is None
    for name in decemb.list_strategies():
        if name != "instruct":
            assert decemb.build_strategy(name).task_instruction("scifact", "retrieval") is None


def test_numpy_string_arrays_are_texts_like_lists():
    st = decemb.from_backbone(*tiny_backbone("llama"), "echo")
    np.testing.assert_array_equal(st.encode(np.array(TEXTS)), st.encode(TEXTS))
    with pytest.raises(TypeError, match="expected a str or a list of str, got ndarray"):
        st.encode(np.array([TEXTS]))  # 2-D: not a list of texts
    with pytest.raises(ValueError, match="input 1 is an empty string"):
        st.encode(np.array(["a", ""]))
