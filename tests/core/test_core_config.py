from dataclasses import dataclass, field

import pytest

from voiceface.config import from_dict, load_config, parse_overrides, to_dict
from voiceface.errors import ConfigError, InputError


@dataclass(frozen=True)
class Optim:
    lr: float = 0.1
    milestones: tuple[int, ...] = (10, 20)


@dataclass(frozen=True)
class Cfg:
    name: str = "x"
    steps: int = 5
    covariates: tuple[str, ...] = ("I",)
    optim: Optim = field(default_factory=Optim)
    device: str | None = None


def test_overrides_nested_and_typed():
    cfg = load_config(Cfg, overrides=["optim.lr=0.01", "steps=7", "covariates=[I, G]", "optim.milestones=[1,2,3]"])
    assert cfg.optim.lr == 0.01 and cfg.steps == 7
    assert cfg.covariates == ("I", "G") and cfg.optim.milestones == (1, 2, 3)
    assert from_dict(Cfg, to_dict(cfg)) == cfg


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match="optim.lrr"):
        load_config(Cfg, overrides=["optim.lrr=1"])


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match="steps"):
        load_config(Cfg, overrides=["steps=abc"])
    with pytest.raises(ConfigError, match="not of the form"):
        parse_overrides(["steps"])


def test_yaml_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("steps: 3\noptim:\n  lr: 0.5\n")
    cfg = load_config(Cfg, f)
    assert cfg.steps == 3 and cfg.optim.lr == 0.5
    with pytest.raises(InputError, match="config file not found"):
        load_config(Cfg, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(InputError, match="mapping"):
        load_config(Cfg, bad)


@pytest.mark.parametrize("method", ["dimnet", "gan", "cest", "sfv"])
def test_every_method_has_one_seed_field_and_the_auto_device_rule(method):
    import importlib

    from voiceface.config import load_config

    mod = importlib.import_module(f"voiceface.methods.{method}.config")
    cls = {"dimnet": "DIMNetConfig", "gan": "GANConfig", "cest": "CESTConfig", "sfv": "SfVConfig"}[method]
    cfg = load_config(getattr(mod, cls), overrides=["seed=7"])
    assert cfg.seed == 7 and cfg.device == "auto"


def test_no_cuda_literals_in_the_package():
    """Devices come from one rule (engine.dist.default_device), never a hard-coded ``.cuda()``."""
    import re
    from pathlib import Path

    import voiceface

    root = Path(voiceface.__file__).parent
    hits = [str(p.relative_to(root)) for p in root.rglob("*.py") if re.search(r"\.cuda\(\s*\)", p.read_text())]
    assert hits == []
