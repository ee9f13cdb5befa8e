"""Train CEST / IEST (Sec. 4.3.3, 4.4.1) through ``engine.fit``.

Data: the clips of a simulated world (``WORLD/clips/*.npz``, held in memory as a :class:`~.data.ClipBank`), or
real video frames streamed from disk (:class:`~.data.FrameStore`): a tree of frame folders
(``<id>/<video>/<frame>.jpg``, VoxCeleb-style) or a manifest whose ``clip`` items are such folders. Real frames are
detected, aligned and segmented once into a crop cache (``data.cache_dir``) by DDP rank 0 first, the other ranks
waiting at a barrier; frames that fail to decode are logged as ``bad_input`` events and left out of their clip,
and a cached crop that fails to decode mid-training is replaced by another frame of its clip and logged.

Each step draws ``data.clips_per_batch`` clips x ``data.frames_per_clip`` frames of the training splits (grouped
by person instead of clip for ablation (f)) from a generator seeded by (seed, step, rank) (:class:`Batches`; rank
0 draws what a single process draws), so a resumed run sees the batches an uninterrupted one would; batches are
built in the training process or in ``data.workers`` DataLoader processes (``data.pipeline``), with the same
result either way. One Adam step (lr 1e-3) on Eq. 4.12. Under ``torchrun`` the model is DDP-wrapped, each rank
draws its own batches and rank 0 alone writes the log and the checkpoint.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from ... import config as cfglib
from ...data.pipeline import LoaderOptions
from ...engine import Parts, Run, dist, fit, load_checkpoint
from ...engine.precision import Precision
from ...errors import InputError
from .. import resolve_data
from .config import CESTConfig
from .data import (ClipBank, ClipFolder, FrameStore, flip_frames, folder_clips, load_sim_clips, manifest_clips,
                   prepare_frames, sample_batch)
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
    model = dist.wrap(build_model(cfg.net), device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr)
    schedulers = {}
    if cfg.optim.schedule == "cosine":
        schedulers["lr"] = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.optim.steps)
    return Parts(models={"cest": model}, optimizers={"adam": opt}, schedulers=schedulers)


def _cache_root(cfg: CESTConfig, data_root: Path, run_path: Path) -> Path:
    if cfg.data.cache_dir:
        return Path(cfg.data.cache_dir)
    return data_root / ".cest_cache" if os.access(data_root, os.W_OK) else run_path / "cache"


def find_clips(data: str | os.PathLike, cfg: CESTConfig) -> tuple[list[ClipFolder] | None, Path]:
    """(the real clips of ``data`` or None for a simulated world's clips, the path recorded as the run's data).

    A folder without ``manifest.csv`` is a tree of frame folders; a manifest whose clips are folders names frame
    folders too (its ``train_splits``); otherwise the simulated world's clip files."""
    p = Path(data)
    if p.is_dir() and not (p / "manifest.csv").is_file():
        return folder_clips(p), p
    p = resolve_data(data)
    return manifest_clips(p, cfg.data.train_splits), p


def load_clips(clips: list[ClipFolder] | None, data_path: Path, cfg: CESTConfig, run: Run, *, detector=None
               ) -> ClipBank | FrameStore:
    """The training clips: the world's clips in memory, or real frames through :func:`~.data.prepare_frames`
    (rank 0 first; ``detector`` default dlib) as a streaming :class:`~.data.FrameStore`; preparation counts and
    undecodable frames go to the run's log."""
    if clips is None:
        bank = load_sim_clips(data_path, cfg.data.train_splits)
        if bank.size != cfg.net.image_size:
            raise InputError(data_path, f"clip frames are {bank.size}x{bank.size} but net.image_size is "
                                        f"{cfg.net.image_size} (use a preset of that size)")
        return bank
    root = data_path if data_path.is_dir() else data_path.parent
    with dist.main_first():
        store, report = prepare_frames(clips, _cache_root(cfg, root, run.path), cfg.net.image_size,
                                       detector=detector, face_fraction=cfg.net.face_fraction)
    for _, msg in report.failures:
        log.warning("left out an unreadable frame: %s", msg)
    if dist.is_main():
        run.log(0, event="frames", clips=report.clips, frames=report.frames, prepared_clips=report.prepared,
                no_face=report.no_face, bad_frames=len(report.failures))
        for path, msg in report.failures:
            run.log(0, event="bad_input", stage="prepare", path=path, error=msg)
    return store


@dataclass
class Batches:
    """CEST's ``batch_fn``: ``Batches(bank, cfg, rank)(step)`` -> images (B, 3, S, S), masks (B, 1, S, S),
    landmarks (B, 68, 2) and partners (B, P) on CPU, drawn from ``default_rng([seed, step])`` on rank 0 and
    ``default_rng([seed, step, rank])`` on the other DDP ranks; with ``data.flip`` each group is mirrored with
    probability 1/2 (one more draw from the same generator). Picklable (DataLoader workers)."""

    bank: ClipBank | FrameStore
    cfg: CESTConfig
    rank: int = 0

    def __call__(self, step: int) -> dict:
        d = self.cfg.data
        key = [self.cfg.seed, step] + ([self.rank] if self.rank else [])
        rng = np.random.default_rng(key)
        idx, partners = sample_batch(self.bank, rng, d.clips_per_batch, d.frames_per_clip,
                                     self.cfg.loss.consistency_scope, self.cfg.loss.objective)
        batch = self.bank.tensors(idx)
        if d.flip:                                   # after the draws above: the frames drawn do not change
            flip = torch.from_numpy(rng.random(d.clips_per_batch) < 0.5).repeat_interleave(d.frames_per_clip)
            batch = flip_frames(batch, flip)
        batch["partners"] = torch.from_numpy(partners)
        return batch


def train(data: str | os.PathLike, out: str | os.PathLike, config_file: str | os.PathLike | None = None,
          overrides: Iterable[str] = (), seed: int | None = None, *, config: CESTConfig | None = None,
          progress: bool = True, stop_after: int | None = None, force_config: bool = False, detector=None) -> Path:
    """Train (or resume) CEST on the clips of ``data`` (a world / manifest, or a tree of frame folders, see
    :func:`load_clips`) into the run folder ``out``.

    ``config`` (a ready ``CESTConfig``) replaces ``config_file``/``overrides``; ``seed`` (when not None) sets the
    config's ``seed``; ``stop_after`` ends after that many steps (tests use it to simulate a kill);
    ``force_config`` resumes even if the config changed (see ``Run.create``); ``detector``: the face front end for
    real frames (default dlib)."""
    cfg = make_config(config_file, overrides, seed) if config is None else \
        config if seed is None else cfglib.replace(config, {"seed": int(seed)})
    device = dist.default_device(cfg.device)
    prec = Precision.resolve(cfg.precision, device)
    dist.init(device)
    clips, data_path = find_clips(data, cfg)
    run = Run.create(out, METHOD_NAME, cfglib.to_dict(cfg), force_config=force_config,
                     defaults=cfglib.defaults_dict(cfg), data=data_path, unchecked=("data.cache_dir", "eval.iest_run"))
    bank = load_clips(clips, data_path, cfg, run, detector=detector)
    parts = build_parts(cfg, device)
    parts.schedulers.update(prec.states())                      # fp16: the loss scale resumes with the run
    model = parts.models["cest"]
    net = dist.unwrap(model)
    prec.autocast_modules(net.f_v, net.f_s, net.f_r, net.f_l)   # the CNNs in ``precision``; geometry, renderer in fp32
    loss = CESTLoss(cfg.loss)
    opt = parts.optimizers["adam"]

    def step_fn(batch: dict, step: int) -> dict:
        return loss.step(model, opt, batch, prec)

    fit(run, parts, method=METHOD_NAME, config=cfglib.to_dict(cfg), batch_fn=Batches(bank, cfg, dist.rank()),
        step_fn=step_fn, total_steps=cfg.optim.steps, log_every=cfg.log_every,
        checkpoint_every=cfg.checkpoint_every, progress=progress, stop_after=stop_after, device=device,
        loader=LoaderOptions(workers=cfg.data.workers, prefetch=cfg.data.prefetch),
        sources=(bank,) if isinstance(bank, FrameStore) else (), precision=prec.name)
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
