"""SfV (Chapter 5): 3D facial shape from voice through the anthropometric measurements (AMs) the voice predicts.

Pipeline (Algorithm 2): per gender, N repeated random splits D_t / D_v1 / D_v2 (D_e fixed); AM estimators with
uncertainty (Table 5.2, Eq. 5.2) trained batched over all repeats and genders and selected on D_v1; the predictable
AMs chosen by a one-sided t bound on D_v2 error ratios (Eq. 5.4-5.6); D_e faces reconstructed by the Eq. 5.7 fit on
the top AMs of the repeats' ensemble (Eq. 5.3).
"""
from __future__ import annotations

import os
from pathlib import Path

from .. import DemoSection, Method

SUMMARY = "3D facial shape from voice via predictable anthropometric measurements (Ch. 5, Algorithm 2)"


def train(data, out, config_file=None, overrides=(), seed: int | None = None, force_config: bool = False) -> Path:
    from .train import train as _train

    return _train(data, out, config_file=config_file, overrides=overrides, seed=seed, force_config=force_config)


def evaluate(run, data=None) -> dict:
    from .evaluate import evaluate as _evaluate

    return _evaluate(run, data)


def demo(world: str | os.PathLike, out: str | os.PathLike, seed: int = 0, null_world: bool = False,
         overrides=(), progress: bool = False) -> DemoSection:
    """Train + evaluate SfV on ``world`` with the ``cpu_power`` preset (30 half-width repeats, 6/1/2/1 split: on the
    small world, seed 0, one thread, 202 s of training, recall 0.14 at a false-positive rate of 0 and no AM selected
    on the coupling-0 twin, where the ``cpu`` preset's 10 repeats cost ~230 s and selected none); with
    ``null_world`` also on a coupling-0 twin of the world (same preset and seed, built into OUT/world_coupling0) to
    show how many AMs are selected by chance (off by default: it doubles the demo's time)."""
    import json

    from ... import config as cfgmod
    from ...engine import announce
    from .config import PRESETS, SfVConfig
    from .evaluate import evaluate as _evaluate
    from .train import train as _train

    out = Path(out)
    cfg = cfgmod.load_config(SfVConfig, None, overrides, base=PRESETS["cpu_power"])
    run = _train(world, out / "sfv_run", seed=seed, progress=progress, config=cfg)
    announce("sfv: evaluating (AM selection, Eq. 5.7 fits of the test faces, figures)", progress)
    res = _evaluate(run)
    metrics = dict(res)
    report = (Path(run) / "report.md").read_text(encoding="utf-8").replace("# SfV: shape from voice", "")
    md = ["\n".join(line for line in report.splitlines() if not line.startswith("![")).strip()]
    figs = sorted(str(p) for p in (Path(run) / "figures").glob("*.png"))
    if null_world:
        from ...sim import build_world
        from ...sim.presets import PRESETS, Preset

        info = json.loads((Path(world) / "world.json").read_text())
        pr = info["preset"]
        preset = pr if isinstance(pr, str) else (pr["name"] if pr["name"] in PRESETS else Preset(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in pr.items()}))
        null = out / "world_coupling0"
        build_world(null, preset, seed=int(info["seed"]), coupling=0.0, progress=False)
        run0 = _train(null, out / "sfv_run_coupling0", seed=seed, progress=progress, config=cfg)
        res0 = _evaluate(run0, figures=False)
        metrics.update({f"coupling0_{k}": v for k, v in res0.items()
                        if k in ("sfv_selected_male", "sfv_selected_female", "sfv_false_positive_rate")})
        md.append(f"**Coupling-0 world** (voice carries no facial information): "
                  f"{res0['sfv_selected_male']} male and {res0['sfv_selected_female']} female AMs selected of "
                  f"{res0.get('sfv_truly_unpredictable', 0)} truly unpredictable AM-gender pairs; "
                  f"false-positive rate {res0['sfv_false_positive_rate']:.3f}.")
    intro = ("Per gender, AM estimators with uncertainty (Table 5.2, Eq. 5.2) are trained for N random splits at "
             "once; AMs whose D_v2 error ratio against the training mean has a one-sided CI_u < 1 (Eq. 5.5) are "
             "selected and the top ones drive the Eq. 5.7 fit of the test faces. Recall and false-positive rate use "
             "the world's ground truth of which AMs the voice carries.")
    return DemoSection("SfV: 3D facial shape from voice (Chapter 5)", intro + "\n\n" + "\n\n".join(md),
                       metrics, tuple(figs))


METHOD = Method("sfv", SUMMARY, train, evaluate, demo)

__all__ = ["METHOD", "demo", "evaluate", "train"]
