"""Train the SfV estimators (Sec. 5.2.1, Algorithm 2 line 5): every (gender, repeat) network at once, batched.

``train(data, out, config_file, overrides, seed)`` builds the stacked ``AMNet`` (M = genders x repeats networks),
one SGD optimiser, and calls ``engine.fit``. Every ``select_every`` steps each network is scored on its own D_v1
(squared error of the fused whole-recording predictions, Eq. 5.3, 5.4) and its best weights so far are kept in the ``best``
model (estimator selection). Resumable: the loop restores both models, the optimiser and the scores.

Batches come through the shared input pipeline (``data.workers`` DataLoader processes, ``Batches``); under
``torchrun`` the trained networks are DDP-wrapped (every rank scores D_v1 with the same synchronised weights and
BatchNorm statistics, so ``best`` stays equal across ranks).
"""
from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ... import config as cfgmod
from ...data.pipeline import LoaderOptions
from ...engine import Parts, Run, dist, fit
from ...engine.precision import Precision
from ...errors import InputError
from .config import SfVConfig
from .data import Triplets, crop_batch, from_csv, from_world, pad_rows, synthetic
from .loss import SfVLoss
from .model import AMNet, where_nets
from .select import Layout, make_layout, normalised_targets, predict

log = logging.getLogger(__name__)
METHOD_NAME = "sfv"


def load_triplets(data: str | os.PathLike, cfg: SfVConfig) -> Triplets:
    """``synthetic:key=value,...`` (a generated set, see ``data.synthetic``), a CSV with voice/mesh columns (real
    adapter), or a simulated world folder / manifest."""
    text = str(data)
    if text.startswith("synthetic:"):
        kw = {}
        for part in filter(None, text[len("synthetic:"):].split(",")):
            k, v = part.split("=")
            kw[k] = float(v) if "." in v else int(v)
        return synthetic(n_mels=cfg.model.n_mels, **kw)
    p = Path(text)
    if p.suffix == ".csv" and p.is_file():
        with open(p, encoding="utf-8") as f:
            header = f.readline()
        if "voice" in header.split(",") or "mesh" in [h.strip() for h in header.split(",")]:
            return from_csv(p, norm=cfg.data.feature_norm, max_s=cfg.data.max_test_s)
    return from_world(p, norm=cfg.data.feature_norm, max_s=cfg.data.max_test_s)


class BestNets(nn.Module):
    """The selected estimators: per network, the weights with the lowest D_v1 loss so far, and that loss (M,)."""

    def __init__(self, net: AMNet):
        super().__init__()
        self.net = net
        self.register_buffer("score", torch.full((net.n_nets,), float("inf")))


def build(data: Triplets, cfg: SfVConfig, seed: int) -> tuple[Layout, AMNet, BestNets]:
    """The layout of networks and two stacked models (training and best-so-far), seeded."""
    for g in cfg.data.genders:
        if (data.gender == g).sum() < 10:
            raise InputError(None, f"gender '{g}' has {(data.gender == g).sum()} people; SfV needs >= 10 per gender")
    layout = make_layout(data, cfg.data.genders, cfg.select.repeats, cfg.data.split, seed)
    n_nets = layout.n_nets * (data.n_ams if cfg.model.per_am else 1)
    n_out = 1 if cfg.model.per_am else data.n_ams
    torch.manual_seed(seed)   # module init draws from the default generator; seeded explicitly here
    model = AMNet(n_nets, n_out, cfg.model.n_mels, cfg.model.channels, cfg.model.uncertainty)
    best = BestNets(AMNet(n_nets, n_out, cfg.model.n_mels, cfg.model.channels, cfg.model.uncertainty))
    best.net.load_state_dict(model.state_dict())
    return layout, model, best


def val1_scores(model: AMNet, data: Triplets, layout: Layout, cfg: SfVConfig) -> torch.Tensor:
    """Estimator selection (Algorithm 2 line 5): the D_v1 mean squared error of every stacked network's fused
    whole-recording predictions (Eq. 5.3, 5.4) in normalised AM units. (M,) per (gender, repeat) network (mean over
    AMs), or (M * A,) per AM network with ``per_am``."""
    table, lens = layout.tables["val1"]
    fps = cfg.data.frames_per_s
    m_hat, _ = predict(model, data, table, int(cfg.data.segment_s * fps), int(cfg.data.max_test_s * fps),
                       cfg.model.per_am)
    target = normalised_targets(data, layout, table)                       # (M, n, A)
    valid = np.arange(table.shape[1])[None, :] < lens[:, None]             # (M, n)
    err = ((m_hat - target) ** 2 * valid[..., None]).sum(1) / lens[:, None]   # (M, A)
    err = torch.from_numpy(np.nan_to_num(err, nan=np.inf)).float()
    return err.reshape(-1) if cfg.model.per_am else err.mean(1)


def v2v_setup(data: Triplets, layout: Layout, components: int) -> dict[str, np.ndarray]:
    """Direct voice-to-vertex regression baseline (Fig. 5.1b): 1 + G networks (mixed genders, then one per gender) that
    regress the eigenface coefficients of the shape. Uses repeat 0's D_t of each gender (mixed: their union).

    Returns train table (1 + G, n_max), lengths (1 + G,), eigenface mean (3V,), basis (3V, d), coefficient std (d,) and the
    (P, d) normalised coefficients of every person.
    """
    rows = [np.concatenate([layout.splits[g].train[0] for g in layout.genders])]
    rows += [layout.splits[g].train[0] for g in layout.genders]
    table, lens = pad_rows(rows)
    mean, basis, _ = eigenfaces(data.vertices[rows[0]], components)
    coeff = (data.vertices.reshape(len(data.vertices), -1) - mean) @ basis        # (P, d)
    std = coeff[rows[0]].std(0) + 1e-8
    return {"table": table, "lens": lens, "mean": mean, "basis": basis, "std": std, "coeff": coeff / std}


def eigenfaces(shapes: np.ndarray, components: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigenfaces (Sec. 5.2.3) of training shapes (n, V, 3): mean (3V,), orthonormal basis P (3V, d) and the
    per-component standard deviations (d,), d = min(components, n - 1)."""
    b = shapes.reshape(len(shapes), -1).astype(np.float64)                         # (n, 3V)
    mean = b.mean(0)
    _, s, vt = np.linalg.svd(b - mean, full_matrices=False)
    d = min(components, len(shapes) - 1)
    return mean, vt[:d].T, s[:d] / np.sqrt(max(len(shapes) - 1, 1))


@dataclass
class Batches:
    """SfV's ``batch_fn``: ``Batches(...)(step)`` -> (x (B, M, n_mels, L), target (B, M, A), v2v x (B, 1 + G,
    n_mels, L), v2v target (B, 1 + G, d)) CPU tensors, drawn from ``default_rng([seed, step])`` on rank 0 (the
    batches of a single-process run) and ``default_rng([seed, step, rank])`` on the other DDP ranks: one crop length
    per minibatch, every stacked network its own people (``data.crop_batch``). Each DDP rank draws its own shard; a
    resumed run sees the batches an uninterrupted one would."""

    data: Triplets
    layout: Layout
    v2v: dict[str, np.ndarray]
    cfg: SfVConfig
    rank: int = 0

    def __call__(self, step: int):
        cfg, data, lay = self.cfg, self.data, self.layout
        fps = cfg.data.frames_per_s
        rng = np.random.default_rng([cfg.seed, step] + ([self.rank] if self.rank else []))
        crop = int(rng.integers(int(cfg.data.crop_min_s * fps), int(cfg.data.crop_max_s * fps) + 1))
        table, n_train = lay.tables["train"]
        x, people = crop_batch(data, table, n_train, cfg.train.batch_size, crop, rng)
        nets = np.arange(lay.n_nets)
        target = (data.ams[people] - lay.am_mean[nets]) / lay.am_std[nets]              # (B, M, A)
        xv, pv = crop_batch(data, self.v2v["table"], self.v2v["lens"], cfg.train.batch_size, crop, rng)
        return (torch.from_numpy(x), torch.from_numpy(target).float(), torch.from_numpy(xv),
                torch.from_numpy(self.v2v["coeff"][pv]).float())


def make_config(config_file: str | os.PathLike | None = None, overrides=(), seed: int | None = None,
                config: SfVConfig | None = None) -> SfVConfig:
    """Defaults (paper) <- YAML file <- key=value overrides (or a ready ``config``) <- explicit seed."""
    cfg = config if config is not None else cfgmod.load_config(SfVConfig, config_file, overrides)
    return cfg if seed is None else cfgmod.replace(cfg, {"seed": int(seed)})


def train(data: str | os.PathLike, out: str | os.PathLike, config_file: str | os.PathLike | None = None,
          overrides=(), seed: int | None = None, stop_after: int | None = None, progress: bool = True, *,
          config: SfVConfig | None = None, force_config: bool = False) -> Path:
    """Train all SfV estimators into the run folder ``out`` (resumes when it holds a checkpoint) on the device of
    ``cfg.device`` (auto: CUDA when present), in ``cfg.precision``; under ``torchrun`` the trained models are
    DDP-wrapped, each rank draws its own batches and rank 0 alone writes.

    ``config`` (a ready ``SfVConfig``, e.g. a ``PRESETS`` entry) replaces ``config_file``/``overrides``; ``seed``
    (when not None) sets the config's ``seed``; ``force_config`` resumes even if the config changed."""
    cfg = make_config(config_file, overrides, seed, config)
    seed = cfg.seed
    device = dist.default_device(cfg.device)
    prec = Precision.resolve(cfg.precision, device)
    dist.init(device)
    triplets = load_triplets(data, cfg)
    layout, model, best = build(triplets, cfg, seed)
    model, best = dist.wrap(model, device), best.to(device)
    run_cfg = cfgmod.to_dict(cfg)
    run = Run.create(out, METHOD_NAME, run_cfg, force_config=force_config, defaults=cfgmod.defaults_dict(cfg),
                     data=data)
    t = cfg.train
    opt = torch.optim.SGD(model.parameters(), lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    loss = SfVLoss(model, opt, cfg.model.uncertainty, t.grad_clip, prec)
    v2v = v2v_setup(triplets, layout, cfg.fit.components)
    torch.manual_seed(seed + 1)
    v2v_net = dist.wrap(AMNet(len(v2v["lens"]), v2v["coeff"].shape[1], cfg.model.n_mels, cfg.model.channels,
                              uncertainty=False), device)
    v2v_opt = torch.optim.SGD(v2v_net.parameters(), lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    v2v_prec = Precision.resolve(cfg.precision, device)                          # its own fp16 loss scale
    v2v_loss = SfVLoss(v2v_net, v2v_opt, uncertainty=False, grad_clip=t.grad_clip, precision=v2v_prec)
    parts = Parts({"model": model, "best": best, "v2v": v2v_net}, {"sgd": opt, "v2v_sgd": v2v_opt},
                  {**prec.states(), **v2v_prec.states("v2v_grad_scaler")})
    plain = dist.unwrap(model)

    def step_fn(batch, step: int):
        x, target, xv, tv = batch
        if cfg.model.per_am:
            b, m, f, tt = x.shape
            x = x[:, :, None].expand(b, m, triplets.n_ams, f, tt).reshape(b, m * triplets.n_ams, f, tt)
            target = target.reshape(b, m * triplets.n_ams, 1)
        values = loss.estimator_step(x, target)
        values["v2v/mse"] = v2v_loss.estimator_step(xv, tv)["loss/mse"]
        if (step + 1) % t.select_every == 0 or step + 1 == t.steps:
            dist.sync_buffers(model)                 # BatchNorm statistics of rank 0: equal scores on every rank
            score = val1_scores(plain, triplets, layout, cfg).to(device)         # (M,), in float32
            better = score < best.score
            best.net.load_state_dict(where_nets(better, plain.state_dict(), best.net.state_dict()))
            best.score.copy_(torch.where(better, score, best.score))
        if torch.isfinite(best.score).all():   # logged every step, so the loop's window average is the value
            values["val1/best_mse"] = best.score.mean().item()
        return values

    light = dataclasses.replace(triplets, measure=None)   # what batches read: picklable for any worker start method
    fit(run, parts, method=METHOD_NAME, config=run_cfg, batch_fn=Batches(light, layout, v2v, cfg, dist.rank()),
        step_fn=step_fn, total_steps=t.steps, log_every=t.log_every, checkpoint_every=t.checkpoint_every,
        progress=progress, stop_after=stop_after, precision=prec.name, device=device, sources=(triplets.voices,),
        loader=LoaderOptions(workers=cfg.data.workers, prefetch=cfg.data.prefetch))
    return run.path
