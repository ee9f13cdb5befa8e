"""Train a DIMNet (Sec. 2.2.3) on any manifest through ``engine.fit``.

Data: voice and face items of ``data.train_splits`` (default: the ``train`` split); a deterministic
``data.heldout_fraction`` of each training identity's videos (sessions) is held out, whole, for the seen-heard
test (``heldout_mask``). Label encoders (identity, gender, nationality) are fitted on the training items and stored in
the checkpoint and in ``RUN/labels.json``.

Each step draws a mixed minibatch (``data.voices_per_batch`` random voice crops of one length in
[min_frames, max_frames], ``data.faces_per_batch`` faces flipped with probability 0.5) from a generator seeded by
(seed, step, rank), so a resumed run sees exactly the batches an uninterrupted one would; ``Batches`` builds them
on CPU, in the training process or in ``data.workers`` DataLoader processes (``data.pipeline``), with the same
result either way. SGD (momentum, weight
decay) with a step schedule updates voice net, face net and classifiers; the loss's modality switch keeps the
voice and face gradients disjoint. Under ``torchrun`` the parts are DDP-wrapped and each rank draws its own
batches.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from ... import config as cfglib
from ...data.loaders import (FaceBank, LabelEncoder, VoiceBank, default_cache_dir, encoders_from_dict,
                             encoders_to_dict, fit_label_encoders, item_labels, save_label_encoders, to_tensor)
from ...data.pipeline import LoaderOptions
from ...data.manifest import Item, Manifest, read_manifest
from ...data.splits import heldout_sessions
from ...engine import Parts, Run, dist, fit, load_checkpoint
from ...engine.precision import Precision
from ...errors import InputError
from .. import resolve_data
from .config import DIMNetConfig
from .loss import DIMNetLoss
from .model import CovariateHeads, FaceNet, VoiceNet, build_networks

log = logging.getLogger(__name__)
METHOD_NAME = "dimnet"


def heldout_mask(items: Sequence[Item], fraction: float) -> np.ndarray:
    """(n,) bool: items held out of training for the seen-heard test, by whole video (``data.splits.
    heldout_sessions``): about ``fraction`` of each identity's sessions, never all of one modality's."""
    return heldout_sessions(items, fraction)


def training_items(manifest: Manifest, cfg: DIMNetConfig) -> tuple[list[Item], list[Item]]:
    """(training items, seen-heard held-out items) among the voice and face items of the training splits."""
    items = [it for it in manifest if it.modality in ("voice", "face") and it.split in cfg.data.train_splits]
    if not items:
        raise InputError(manifest.root, f"no voice or face items in split(s) {', '.join(cfg.data.train_splits)}")
    mask = heldout_mask(items, cfg.data.heldout_fraction)
    return [it for it, m in zip(items, mask) if not m], [it for it, m in zip(items, mask) if m]


def make_config(config_file: str | os.PathLike | None = None, overrides: Iterable[str] = (),
                seed: int | None = None) -> DIMNetConfig:
    """Defaults (thesis) <- YAML file <- key=value overrides <- explicit seed."""
    cfg = cfglib.load_config(DIMNetConfig, config_file, overrides)
    if seed is not None:
        cfg = cfglib.replace(cfg, {"seed": int(seed)})
    cfg.covariate_weights()  # validates
    return cfg


@dataclass
class TrainData:
    """Banks and encoded labels of the training items."""

    voices: VoiceBank
    faces: FaceBank
    encoders: dict[str, LabelEncoder]
    voice_labels: dict[str, np.ndarray]   # name -> (Nv,) class indices
    face_labels: dict[str, np.ndarray]    # name -> (Nf,)


def load_train_data(manifest: Manifest, cfg: DIMNetConfig, run_path: Path, progress: bool = True) -> TrainData:
    """Banks of the training items; voice features are extracted into the shared cache by rank 0 first (the other
    DDP ranks wait at a barrier, then only read the cache)."""
    train, _ = training_items(manifest, cfg)
    encoders = fit_label_encoders(train)
    cache = Path(cfg.data.cache_dir) if cfg.data.cache_dir else default_cache_dir(manifest, run_path / "cache")
    with dist.main_first():
        voices = VoiceBank(train, cache, workers=cfg.data.extract_workers, progress=progress and dist.is_main())
    faces = FaceBank(train, cfg.net.face_size, root=manifest.root, memory_mb=cfg.data.face_memory_mb)
    for what, bank in (("voice", voices), ("face", faces)):
        for path, msg in bank.failures:
            log.warning("skipped %s item: %s", what, msg)
        if len(bank) == 0:
            raise InputError(manifest.root, f"no usable {what} items to train DIMNet on")
    names = list(cfg.covariate_weights())
    return TrainData(voices, faces, encoders,
                     {n: encoders[n].encode(item_labels(voices.items, n)) for n in names},
                     {n: encoders[n].encode(item_labels(faces.items, n)) for n in names})


@dataclass
class Batches:
    """DIMNet's ``batch_fn``: ``Batches(td, cfg, rank)(step)`` -> the mixed minibatch of ``step`` on CPU.

    {"voices": (Bv, 64, L) float32, "faces": (Bf, 3, S, S) float32, "voice_labels" / "face_labels": {name: (B,)
    int64}}, drawn from ``default_rng([seed, step, rank])`` (each DDP rank its own shard). Unreadable files are
    replaced by the banks (labels follow the replacement). A picklable object, so DataLoader workers can run it
    under any start method."""

    td: TrainData
    cfg: DIMNetConfig
    rank: int = 0

    def __call__(self, step: int) -> dict:
        d, td = self.cfg.data, self.td
        rng = np.random.default_rng([self.cfg.seed, step, self.rank])
        vi = rng.integers(0, len(td.voices), d.voices_per_batch)
        voices, vi = td.voices.sample_crops(vi, rng, d.min_frames, d.max_frames)   # (Bv, 64, L)
        fi = rng.integers(0, len(td.faces), d.faces_per_batch)
        flips = td.faces.random_flips(len(fi), rng) if d.flip else None
        images, fi = td.faces.read(fi)                                              # (Bf, S, S, 3) uint8
        return {"voices": voices, "faces": to_tensor(images, flips),                # (Bf, 3, S, S)
                "voice_labels": {n: torch.from_numpy(v[vi]) for n, v in td.voice_labels.items()},
                "face_labels": {n: torch.from_numpy(v[fi]) for n, v in td.face_labels.items()}}


def build_parts(cfg: DIMNetConfig, classes: dict[str, int], device: torch.device) -> Parts:
    """Voice net, face net, covariate heads (DDP-wrapped under torchrun), SGD and its step schedule."""
    torch.manual_seed(cfg.seed)  # parameter initialisation (seeded, reproducible on CPU)
    voice, face, heads = build_networks(cfg.net, classes)
    models = {"voice": dist.wrap(voice, device), "face": dist.wrap(face, device), "heads": dist.wrap(heads, device)}
    params = [p for m in models.values() for p in m.parameters()]
    o = cfg.optim
    sgd = torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(sgd, milestones=list(o.milestones), gamma=o.gamma)
    return Parts(models=models, optimizers={"sgd": sgd}, schedulers={"lr": sched})


def train(data: str | os.PathLike, out: str | os.PathLike, config_file: str | os.PathLike | None = None,
          overrides: Iterable[str] = (), seed: int | None = None, *, stop_after: int | None = None,
          progress: bool = True, config: DIMNetConfig | None = None, force_config: bool = False) -> Path:
    """Train (or resume) a DIMNet on the manifest ``data`` into the run folder ``out``; returns ``out``.

    ``config`` (a ready ``DIMNetConfig``) replaces ``config_file``/``overrides`` when given; ``seed`` (when not
    None) sets the config's ``seed``. ``force_config`` resumes even if the config changed (see ``Run.create``).
    ``stop_after`` ends after that many steps (tests use it to simulate a kill).
    """
    cfg = make_config(config_file, overrides, seed) if config is None else \
        config if seed is None else cfglib.replace(config, {"seed": int(seed)})
    manifest_path = resolve_data(data)
    manifest = read_manifest(manifest_path)
    device = dist.default_device(cfg.device)
    prec = Precision.resolve(cfg.precision, device)
    dist.init(device)
    run = Run.create(out, METHOD_NAME, cfglib.to_dict(cfg), force_config=force_config,
                     defaults=cfglib.defaults_dict(cfg), data=manifest_path, unchecked=("data.cache_dir",))
    td = load_train_data(manifest, cfg, run.path, progress)
    weights = cfg.covariate_weights()
    classes = {n: len(td.encoders[n]) for n in weights}
    parts = build_parts(cfg, classes, device)
    parts.schedulers.update(prec.states())                      # fp16: the loss scale resumes with the run
    parts.extra.update({"labels": encoders_to_dict(td.encoders), "classes": classes})
    if dist.is_main():
        save_label_encoders(td.encoders, run.path / "labels.json")
    loss = DIMNetLoss(parts.models["voice"], parts.models["face"], parts.models["heads"], weights)
    opt = parts.optimizers["sgd"]
    def step_fn(batch: dict, step: int) -> dict[str, float]:
        opt.zero_grad(set_to_none=True)
        with prec.autocast():
            total, logs = loss.mixed(batch["voices"], batch["faces"], batch["voice_labels"], batch["face_labels"])
        prec.backward(total)
        prec.step(opt)
        prec.update()
        logs["lr"] = opt.param_groups[0]["lr"]
        return logs

    fit(run, parts, method=METHOD_NAME, config=cfglib.to_dict(cfg), batch_fn=Batches(td, cfg, dist.rank()),
        step_fn=step_fn, total_steps=cfg.optim.steps, log_every=cfg.log_every, checkpoint_every=cfg.checkpoint_every,
        progress=progress, stop_after=stop_after, device=device, sources=(td.voices, td.faces), precision=prec.name,
        loader=LoaderOptions(workers=cfg.data.workers, prefetch=cfg.data.prefetch))
    return run.path


# ------------------------------------------------------------------------------------------------ loading


@dataclass
class Trained:
    """A trained DIMNet loaded from a run: nets in eval mode, config, label encoders, training manifest path."""

    config: DIMNetConfig
    voice: VoiceNet
    face: FaceNet
    heads: CovariateHeads
    encoders: dict[str, LabelEncoder]
    data: str
    step: int


def load_trained(run: str | os.PathLike, device: torch.device | str = "cpu") -> Trained:
    """Rebuild the networks of ``RUN/checkpoint.pt`` (self-describing: config, classes, labels inside)."""
    path = Path(run)
    ckpt = load_checkpoint(path / "checkpoint.pt" if path.is_dir() else path, map_location=device)
    if ckpt.get("method") != METHOD_NAME:
        raise InputError(path, f"checkpoint belongs to method '{ckpt.get('method')}', not '{METHOD_NAME}'")
    cfg = cfglib.from_dict(DIMNetConfig, ckpt["config"])
    extra = ckpt["extra"]
    voice, face, heads = build_networks(cfg.net, {k: int(v) for k, v in extra["classes"].items()})
    for name, module in (("voice", voice), ("face", face), ("heads", heads)):
        module.load_state_dict(ckpt["models"][name])
        module.to(device).eval()
    return Trained(cfg, voice, face, heads, encoders_from_dict(extra["labels"]), str(extra.get("data", "")),
                   int(ckpt["step"]))


def load_voice_net(run: str | os.PathLike, device: torch.device | str = "cpu") -> VoiceNet:
    """The trained voice network F_v of a DIMNet run, eval mode: (B, 64, T) -> (B, d); ``.embed_dim`` = d."""
    return load_trained(run, device).voice
