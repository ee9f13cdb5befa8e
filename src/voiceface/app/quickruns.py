"""Quickly trained runs in the folder layout ``voiceface demo`` writes (``world/``, ``dimnet/dimnet_IG``,
``gan/gan_run``, ``cest/cest_a``, ``sfv/sfv_run``), for the app's tests and its latency benchmark. The runs train
for a few steps only: their outputs are not meaningful faces; they exercise every path of the app.

``nets="tiny"``: narrow networks, the whole set in about 25 s on one core (tests). ``nets="cpu"``: the
architectures and inference settings of the demo's CPU presets (what the app runs after ``voiceface demo``),
still with a few training steps, so that timings match the demo's runs.
"""
from __future__ import annotations

import os
from pathlib import Path

TINY = {
    "dimnet": {"net": {"voice_widths": [8, 8, 8, 8], "face_widths": [4, 4, 4, 4], "face_size": 64},
               "data": {"voices_per_batch": 4, "faces_per_batch": 4, "min_frames": 64, "max_frames": 96},
               "eval": {"n_max": 4}},
    "gan": ["model.gen_channels=[32,16,16,8,8]", "model.face_channels=[8,8,16,16,16]", "data.min_frames=50",
            "data.max_frames=120", "data.test_frames=200", "batch_size=8", "encoder.pretrain_batch=8",
            "model.prior_channels=[8,8,16,16,16]", "stable.prior_batch=8"],
    "cest": {"net": {"image_size": 64, "width_mult": 0.125}, "data": {"clips_per_batch": 2, "frames_per_clip": 2,
                                                                      "max_test_frames": 4}},
    "sfv": ["train.batch_size=8", "select.repeats=2", "model.channels=[8,12,16,16]", "fit.steps=20",
            "fit.components=8", "data.crop_min_s=1.0", "data.crop_max_s=1.5", "data.segment_s=1.5"],
}
SHORT = {   # few training steps, whatever the networks
    "dimnet": {"optim": {"steps": 4, "milestones": [3]}, "checkpoint_every": 2, "log_every": 2},
    "gan": ["steps=4", "log_every=2", "checkpoint_every=2", "encoder.pretrain_steps=2", "stable.prior_steps=4"],
    "cest": {"optim": {"steps": 2}, "log_every": 1, "checkpoint_every": 2},
    "sfv": ["train.steps=8", "train.select_every=4", "train.checkpoint_every=4", "train.log_every=4"],
}


def build_quick_runs(root: str | os.PathLike, nets: str = "tiny", methods=("dimnet", "gan", "cest", "sfv")) -> Path:
    """A ``tiny``-preset world and a few-step run of each of ``methods`` under ``root`` (see the module doc for
    ``nets``: "tiny" | "cpu"); returns ``root``."""
    from .. import config as cfglib
    from ..sim import build_world

    root, tiny = Path(root), nets == "tiny"
    world = build_world(root / "world", preset="tiny", seed=0, workers=1, progress=False)
    if "dimnet" in methods:
        from ..methods.dimnet import PRESETS, train
        cfg = cfglib.replace(PRESETS["cpu"], {"covariates": "IG", **SHORT["dimnet"]})
        train(world, root / "dimnet" / "dimnet_IG", config=cfglib.replace(cfg, TINY["dimnet"]) if tiny else cfg,
              progress=False)
    if "gan" in methods:
        from ..methods.gan import PRESETS as GAN_PRESETS, GANConfig
        from ..methods.gan.train import train
        cfg = cfglib.load_config(GANConfig, None, SHORT["gan"] + (TINY["gan"] if tiny else []),
                                 base=GAN_PRESETS["cpu"])
        train(world, root / "gan" / "gan_run", config=cfg, seed=0, progress=False)
    if "cest" in methods:
        from ..methods.cest.config import PRESETS
        cfg = cfglib.replace(cfglib.replace(PRESETS["cpu"], {"net": {"image_size": 64}}), SHORT["cest"])
        from ..methods.cest.train import train
        train(world, root / "cest" / "cest_a", config=cfglib.replace(cfg, TINY["cest"]) if tiny else cfg,
              progress=False)
    if "sfv" in methods:
        from ..methods.sfv.config import PRESETS as SFV_PRESETS, SfVConfig
        from ..methods.sfv.evaluate import evaluate
        from ..methods.sfv.train import train
        cfg = cfglib.load_config(SfVConfig, None, SHORT["sfv"] + (TINY["sfv"] if tiny else []),
                                 base=SFV_PRESETS["cpu"])
        run = train(world, root / "sfv" / "sfv_run", config=cfg, seed=0, progress=False)
        evaluate(run, figures=False)
    return root
