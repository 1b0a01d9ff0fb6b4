"""Decoders declare their options once: the typed keyword-only constructor. Decoder.keep_options checks each value
against its annotation (range, literal, type) for the Python API, as svdd_lightning/options.py does for a config,
and settings() reports exactly the options kept."""

import inspect

import pytest

from svdd_lightning.decoders.beam import BeamSearch
from svdd_lightning.decoders.best_of_n import BestOfN
from svdd_lightning.decoders.dps import DPS
from svdd_lightning.decoders.pretrained import PretrainedSampler
from svdd_lightning.decoders.smc import SMC
from svdd_lightning.decoders.svdd import SVDD, SVDDR
from svdd_lightning.ranges import NonNegative
from svdd_lightning.values.posterior_mean import PosteriorMeanValue
from tests.helpers import gc_reward, tiny_masked

CLASSES = [PretrainedSampler, BestOfN, SVDD, SVDDR, SMC, BeamSearch, DPS]


def steering(cls):
    reward = gc_reward()  # differentiable: DPS needs no value
    takes_value = "value" in inspect.signature(cls).parameters and cls is not DPS
    return {"reward": reward, **({"value": PosteriorMeanValue(reward=reward, diffusion=tiny_masked())}
                                 if takes_value else {})}


def options_of(cls):
    return [n for n in inspect.signature(cls).parameters if n not in ("reward", "value")]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_settings_report_every_declared_option(cls):
    decoder = cls(**steering(cls))
    settings = decoder.settings()
    for name in options_of(cls):
        assert name in settings, f"{cls.__name__}.settings() lacks its option {name}"
    assert settings["num_candidates"] >= 1


@pytest.mark.parametrize("cls,option,bad", [
    (SVDD, "num_candidates", 0), (SVDD, "alpha", -1.0), (SVDD, "max_batch", -5), (SVDD, "dedup", "yes"),
    (SVDDR, "resample_fraction", 1.5), (SVDDR, "replace", "highest"), (BestOfN, "num_particles", 0),
    (SMC, "alpha", 0.0), (SMC, "ess_threshold", 2.0), (SMC, "resampling", "stratified"), (BeamSearch, "beams", 0),
    (DPS, "guidance_scale", float("nan")), (PretrainedSampler, "dedup", 1)])
def test_a_value_outside_its_declaration_is_refused_by_name(cls, option, bad):
    with pytest.raises(ValueError, match=f"^{option} must be"):
        cls(**steering(cls), **{option: bad})


def test_a_subclass_declares_its_own_options_and_keeps_its_parents():
    class Tempered(SVDD):
        def __init__(self, *, reward, value, temperature: NonNegative = 1.0, num_candidates: int = 4) -> None:
            super().__init__(reward=reward, value=value, num_candidates=num_candidates)
            self.keep_options(locals())

    decoder = Tempered(**steering(SVDD), temperature=0.5)
    settings = decoder.settings()
    assert settings["temperature"] == 0.5 and settings["num_candidates"] == 4 and settings["alpha"] == 0.0
    with pytest.raises(ValueError, match="^temperature must be"):
        Tempered(**steering(SVDD), temperature=-1.0)
    with pytest.raises(ValueError, match="^num_candidates must be"):  # the parent's declaration still holds
        Tempered(**steering(SVDD), num_candidates=0)
