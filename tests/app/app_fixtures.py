"""Tiny trained runs in the folder layout ``voiceface demo`` writes (``world/``, ``dimnet/dimnet_IG``,
``gan/gan_run``, ``cest/cest_a``, ``sfv/sfv_run``), for the app's tests and benchmark. The runs train for a few
steps only: their outputs are not meaningful faces, they exercise every path of the app."""
from __future__ import annotations

from pathlib import Path

DIMNET_TINY = {"net": {"voice_widths": [8, 8, 8, 8], "face_widths": [4, 4, 4, 4], "face_size": 64},
               "optim": {"steps": 4, "milestones": [3]}, "data": {"voices_per_batch": 4, "faces_per_batch": 4,
                                                                    "min_frames": 64, "max_frames": 96},
               "checkpoint_every": 2, "log_every": 2, "eval": {"n_max": 4}}
GAN_TINY = ["steps=4", "batch_size=8", "log_every=2", "checkpoint_every=2", "encoder.pretrain_steps=2",
            "encoder.pretrain_batch=8", "model.gen_channels=[32,16,16,8,8]", "model.face_channels=[8,8,16,16,16]",
            "data.min_frames=50", "data.max_frames=120", "data.test_frames=200"]
CEST_TINY = {"net": {"image_size": 64, "width_mult": 0.125}, "data": {"clips_per_batch": 2, "frames_per_clip": 2,
             "max_test_frames": 4}, "optim": {"steps": 2}, "log_every": 1, "checkpoint_every": 2}
SFV_TINY = ["train.steps=8", "train.batch_size=8", "train.select_every=4", "train.checkpoint_every=4",
            "train.log_every=4", "select.repeats=2", "model.channels=[8,12,16,16]", "fit.steps=20",
            "fit.components=8", "data.crop_min_s=1.0", "data.crop_max_s=1.5", "data.segment_s=1.5"]


def build_tiny_demo(root: str | Path, methods=("dimnet", "gan", "cest", "sfv")) -> Path:
    """A ``tiny``-preset world and a few-step run of each of ``methods`` under ``root``; returns ``root``."""
    from voiceface import config as cfglib
    from voiceface.sim import build_world

    root = Path(root)
    world = build_world(root / "world", preset="tiny", seed=0, workers=1, progress=False)
    if "dimnet" in methods:
        from voiceface.methods.dimnet import PRESETS, train
        cfg = cfglib.replace(cfglib.replace(PRESETS["cpu"], DIMNET_TINY), {"covariates": "IG"})
        train(world, root / "dimnet" / "dimnet_IG", config=cfg, progress=False)
    if "gan" in methods:
        from voiceface.methods.gan.train import train
        train(world, root / "gan" / "gan_run", overrides=GAN_TINY, seed=0, progress=False)
    if "cest" in methods:
        from voiceface.methods.cest.config import PRESETS
        from voiceface.methods.cest.train import train
        train(world, root / "cest" / "cest_a", config=cfglib.replace(PRESETS["cpu"], CEST_TINY), progress=False)
    if "sfv" in methods:
        from voiceface.methods.sfv.evaluate import evaluate
        from voiceface.methods.sfv.train import train
        evaluate(train(world, root / "sfv" / "sfv_run", overrides=SFV_TINY, seed=0, progress=False), figures=False)
    return root
