"""The loss registry is the one table of loss facts: the config's literal, the option checks, the shape checks,
the samplers and the builders all follow it."""

from __future__ import annotations

import pytest
from helpers import tiny_backbone
from pydantic import ValidationError

import decemb
from decemb.errors import ConfigError
from decemb.train.config import LOSS_OPTIONS, LOSSES, LossSection, TrainConfig
from decemb.train.loss_registry import LOSS_SPECS
from decemb.train.losses import build_loss, check_loss_data
from decemb.train.records import TrainData
from decemb.train.sampler import WholePassNoDuplicatesBatchSampler
from decemb.train.source_sampler import SourcePlan
from decemb.train.sources import config_sources
from decemb.train.trainer import batch_samplers

DATA = {
    "pairs": TrainData("pairs", {"anchor": ["a", "b"], "positive": ["c", "d"]}, {"anchor": "query"}, "p"),
    "scored": TrainData("scored", {"sentence1": ["a"], "sentence2": ["b"], "score": [0.5]}, {}, "s"),
    "texts": TrainData("texts", {"text": ["a", "b"]}, {"text": "query"}, "t"),
}


def test_the_config_literal_is_the_registry():
    assert tuple(LOSS_SPECS) == LOSSES
    for name in LOSS_SPECS:
        assert LossSection(name=name).name == name
    with pytest.raises(ValidationError):
        LossSection(name="triplet")


def test_every_option_belongs_to_the_losses_whose_spec_lists_it():
    options = set(LossSection.model_fields) - {"name"}
    assert set(LOSS_OPTIONS) == options, "every loss option is some spec's and no spec names an unknown one"
    for option, losses in LOSS_OPTIONS.items():
        assert set(losses) == {name for name, spec in LOSS_SPECS.items() if option in spec.options}


def _source(loss: str):
    config = TrainConfig.model_validate({"data": {"path": "x.csv", "columns": {"text": "t"}}, "loss": loss})
    return config_sources(config)[0]


@pytest.mark.parametrize("loss", list(LOSS_SPECS))
def test_each_loss_accepts_its_shapes_only(loss):
    spec = LOSS_SPECS[loss]
    for shape, data in DATA.items():
        if shape in spec.shapes:
            check_loss_data(_source(loss), data)
        else:
            with pytest.raises(ConfigError, match=f"loss '{loss}' needs {spec.shapes[0]}") as caught:
                check_loss_data(_source(loss), data)
            assert caught.value.key == "loss.name"


@pytest.mark.parametrize("loss", list(LOSS_SPECS))
def test_in_batch_negatives_choose_the_no_duplicates_sampler(loss):
    sampler, _ = batch_samplers([SourcePlan(loss, 1.0, LOSS_SPECS[loss].in_batch_negatives)])
    assert (sampler is WholePassNoDuplicatesBatchSampler) == (loss in ("mnrl", "cached_mnrl", "simcse"))


def test_builders_make_the_sentence_transformers_losses():
    from sentence_transformers.sentence_transformer import losses

    backbone, tokenizer = tiny_backbone("llama")
    model = decemb.from_backbone(backbone, tokenizer, "mean")
    expected = {
        "mnrl": (losses.MultipleNegativesRankingLoss, {"scale": 20.0}),
        "cached_mnrl": (losses.CachedMultipleNegativesRankingLoss, {"scale": 20.0, "mini_batch_size": 16}),
        "cosent": (losses.CoSENTLoss, {"scale": 20.0}),
        "angle": (losses.AnglELoss, {"scale": 20.0}),
        "simcse": (losses.MultipleNegativesRankingLoss, {"scale": 20.0}),
    }
    for name, (cls, attributes) in expected.items():
        built = build_loss(_source(name), model)
        assert type(built) is cls, name
        for attribute, value in attributes.items():
            assert getattr(built, attribute) == pytest.approx(value), (name, attribute)
