"""Every user-facing preset ``configs/<method>/<name>.yaml`` is exactly the code preset ``PRESETS[<name>]`` of its
method's ``config.py`` (the demos use the code presets), so the two can never drift apart."""
from __future__ import annotations

from pathlib import Path

import pytest

from voiceface.config import load_config
from voiceface.methods.cest.config import PRESETS as CEST_PRESETS, CESTConfig
from voiceface.methods.dimnet.config import PRESETS as DIMNET_PRESETS, DIMNetConfig
from voiceface.methods.gan.config import PRESETS as GAN_PRESETS, GANConfig
from voiceface.methods.sfv.config import PRESETS as SFV_PRESETS, SfVConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
METHODS = {"cest": (CESTConfig, CEST_PRESETS), "dimnet": (DIMNetConfig, DIMNET_PRESETS),
           "gan": (GANConfig, GAN_PRESETS), "sfv": (SfVConfig, SFV_PRESETS)}
CASES = sorted((m, n) for m, (_, presets) in METHODS.items() for n in presets)


def test_every_yaml_has_a_code_preset_and_back():
    for method, (_, presets) in METHODS.items():
        files = {p.stem for p in (CONFIGS / method).glob("*.yaml")}
        assert files == set(presets), method
    assert {p.name for p in CONFIGS.iterdir() if p.is_dir()} == set(METHODS)


@pytest.mark.parametrize("method,name", CASES, ids=[f"{m}/{n}" for m, n in CASES])
def test_yaml_preset_equals_code_preset(method, name):
    cls, presets = METHODS[method]
    assert isinstance(presets[name], cls)
    assert load_config(cls, CONFIGS / method / f"{name}.yaml") == presets[name]
