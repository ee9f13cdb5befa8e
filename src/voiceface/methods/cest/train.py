"""Train CEST / IEST (Sec. 4.3.3, 4.4.1) through ``engine.fit``.

Each step draws ``data.clips_per_batch`` clips x ``data.frames_per_clip`` frames of the training splits (grouped
by person instead of clip for ablation (f)), from a generator seeded by (seed, step), so a resumed run sees the
batches an uninterrupted one would; one Adam step (lr 1e-3) on Eq. 4.12.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from ... import config as cfglib
from ...engine import Parts, Run, dist, fit, load_checkpoint
from ...engine.precision import Precision
from ...errors import InputError
from .. import resolve_data
from .config import CESTConfig
from .data import load_sim_clips, sample_batch
from .loss import CESTLoss
from .model import CEST, build_model

log = logging.getLogger(__name__)
METHOD_NAME = "cest"


def make_config(config_file: str | os.PathLike | None = None, overrides: Iterable[str] = (),
                seed: int | None = None) -> CESTConfig:
    """Defaults (thesis) <- YAML file <- key=value overrides <- explicit seed."""
    cfg = cfglib.load_config(CESTConfig, config_file, overrides)
    if seed is not None:
        cfg = cfglib.replace(cfg, {"seed": int(seed)})
    return cfg


def build_parts(cfg: CESTConfig, device) -> Parts:
    torch.manual_seed(cfg.seed)        # weight init is part of the run's seed
    model = build_model(cfg.net).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr)
    return Parts(models={"cest": model}, optimizers={"adam": opt})


def train(data: str | os.PathLike, out: str | os.PathLike, config_file: str | os.PathLike | None = None,
          overrides: Iterable[str] = (), seed: int | None = None, *, config: CESTConfig | None = None,
          progress: bool = True, stop_after: int | None = None, force_config: bool = False) -> Path:
    """Train (or resume) CEST on the clips of the manifest / world ``data`` into the run folder ``out``.

    ``config`` (a ready ``CESTConfig``) replaces ``config_file``/``overrides``; ``seed`` (when not None) sets the
    config's ``seed``; ``stop_after`` ends after that many steps (tests use it to simulate a kill);
    ``force_config`` resumes even if the config changed (see ``Run.create``)."""
    cfg = make_config(config_file, overrides, seed) if config is None else \
        config if seed is None else cfglib.replace(config, {"seed": int(seed)})
    manifest_path = resolve_data(data)
    device = dist.default_device(cfg.device)
    prec = Precision.resolve(cfg.precision, device)
    run = Run.create(out, METHOD_NAME, cfglib.to_dict(cfg), force_config=force_config)
    bank = load_sim_clips(manifest_path, cfg.data.train_splits)
    if bank.size != cfg.net.image_size:
        raise InputError(manifest_path, f"clip frames are {bank.size}x{bank.size} but net.image_size is "
                                        f"{cfg.net.image_size} (use a preset of that size)")
    parts = build_parts(cfg, device)
    parts.extra.update({"data": str(Path(manifest_path).resolve())})
    model: CEST = parts.models["cest"]
    net = dist.unwrap(model)
    prec.autocast_modules(net.f_v, net.f_s, net.f_r, net.f_l)   # the CNNs in ``precision``; geometry, renderer in fp32
    loss = CESTLoss(cfg.loss)
    opt = parts.optimizers["adam"]
    d = cfg.data

    def batch_fn(step: int) -> dict:
        rng = np.random.default_rng([cfg.seed, step])
        idx, partners = sample_batch(bank, rng, d.clips_per_batch, d.frames_per_clip,
                                     cfg.loss.consistency_scope, cfg.loss.objective)
        batch = bank.tensors(idx, device)
        batch["partners"] = torch.from_numpy(partners).to(device)
        return batch

    def step_fn(batch: dict, step: int) -> dict:
        return loss.step(model, opt, batch, prec)

    fit(run, parts, method=METHOD_NAME, config=cfglib.to_dict(cfg), batch_fn=batch_fn, step_fn=step_fn,
        total_steps=cfg.optim.steps, log_every=cfg.log_every, checkpoint_every=cfg.checkpoint_every,
        progress=progress, stop_after=stop_after, precision=prec.name)
    return run.path


def load_trained(run: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[CEST, CESTConfig]:
    """The trained CEST module (eval mode) and its config from ``RUN/checkpoint.pt``."""
    path = Path(run)
    ckpt_path = path / "checkpoint.pt" if path.is_dir() else path
    if not ckpt_path.is_file():
        raise InputError(path, "no checkpoint.pt: train the run first (`voiceface train cest`)")
    ckpt = load_checkpoint(ckpt_path, map_location=device)
    if ckpt.get("method") != METHOD_NAME:
        raise InputError(path, f"checkpoint belongs to method '{ckpt.get('method')}', not '{METHOD_NAME}'")
    cfg = cfglib.from_dict(CESTConfig, ckpt["config"])
    model = build_model(cfg.net)
    model.load_state_dict(ckpt["models"]["cest"])
    return model.to(device).eval(), cfg
