"""Training of the voice-to-face GAN: F_e pretraining (own choice), the face prior (``stable.prior_steps`` > 0: a
face autoencoder with F_g as decoder, then a ridge map from voice embeddings to codes), and Algorithm 1 (or the
stable recipe) through ``engine.fit``; each stage is a resumable run folder (RUN/encoder, RUN/prior, RUN).

Data (any manifest: the simulated world or a prepared corpus):

* training identities = identities of ``data.train_splits`` with both voice and face items (classifier labels);
* their voice recordings minus held-out sessions (``data.heldout_sessions``, the last sessions by name of each
  identity; an identity with a single session keeps it) train the GAN; the held-out recordings give the
  thesis's "test recordings of the speakers in the training set" (identity top-1/top-5);
* faces: the 64x64 crops named by the extra column ``path64`` (else ``path`` resized), scaled to [-1, 1].

Voice crops: each minibatch draws one crop length in [min_frames, max_frames] (3-8 s at 100 frames/s) and a
random start per recording; recordings shorter than the crop are repeated cyclically. Everything a batch holds is
derived from (seed, step, rank), so a resumed run sees the batches an uninterrupted one would.

Banks and pipeline: voices and faces live in the project's one voice bank and face bank (``data.loaders``:
``VoiceBank`` / ``FaceBank``), batches are built by ``Batches`` through ``engine.fit``'s input pipeline
(``data.workers`` DataLoader processes, ``data.prefetch``); a file that fails to decode mid-training (banks larger
than ``data.voice_memory_mb`` / ``data.face_memory_mb`` are read from disk) is logged, counted and replaced.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ... import config as cfglib
from ...audio.encoders import GE2EEncoder, LogMelEncoder, VoiceEncoder, dimnet_encoder, logmel_features
from ...audio.io import load_audio
from ...data.loaders import FaceBank, VoiceBank, default_cache_dir, to_tensor
from ...data.pipeline import LoaderOptions
from ...data.manifest import Item, Manifest, read_manifest
from ...engine import Parts, Run, dist, fit, load_checkpoint
from ...engine.precision import Precision
from ...errors import ConfigError, InputError, VoicefaceError
from .. import resolve_data
from .config import GANConfig, StableConfig
from .loss import GANLoss, StableGANLoss, masked_gender_loss
from .model import (FaceAutoencoder, FaceCritics, FaceEncoder, Generator, GeneratorEMA, SpeakerClassifier,
                    SpeakerHead, VoiceEmbedNet, dcgan_init)

log = logging.getLogger(__name__)
METHOD_NAME = "gan"


# ------------------------------------------------------------------------------------------------ data banks
def voice_bank(kind: str, items: Sequence[Item], manifest: Manifest | None, fallback_cache: Path,
               memory_mb: float = 1024.0) -> VoiceBank:
    """The front-end features of voice items for encoder ``kind`` in the project's one voice bank
    (``data.loaders.VoiceBank``); a recording that fails is logged, recorded in ``bank.failures`` and left out.

    log-mel (own / dimnet): the cached ``.npy`` per recording, shared with other runs under ``<world>/cache/logmel64``
    (read from disk when more than ``memory_mb``; reads that fail mid-training are replaced); GE2E: its 40-band mel,
    cached in ``fallback_cache/ge2e.npz``, in memory. Under DDP rank 0 fills the caches first, the others then read
    them (``dist.main_first``).
    """
    with dist.main_first():
        if feature_kind(kind) == "logmel":
            bank = VoiceBank(items, default_cache_dir(manifest, fallback_cache), memory_mb=memory_mb)
        else:
            feats, kept, failed = _ge2e_features(items, Path(fallback_cache) / "ge2e.npz")
            bank = VoiceBank.from_arrays(feats, kept)
            bank.record_failures(failed)
    for path, message in bank.failures:
        log.warning("skipping %s", message)
    return bank


def _ge2e_features(items: Sequence[Item], cache: Path) -> tuple[list[np.ndarray], list[Item], list[tuple[str, str]]]:
    """GE2E mel features (T, 40) of the readable items, those items, and (path, message) of the others; new
    features are added to ``cache`` (rank 0 writes)."""
    cached: dict[str, np.ndarray] = {}
    if cache.is_file():
        with np.load(cache) as z:
            cached = {str(p): z[f"f{i}"] for i, p in enumerate(z["paths"])}
    front = feature_fn("ge2e")
    feats, kept, failed, fresh = [], [], [], False
    for it in items:
        f = cached.get(it.path)
        if f is None:
            try:
                f = front(load_audio(it.path), path=it.path)
            except VoicefaceError as e:
                failed.append((it.path, str(e)))
                continue
            cached[it.path], fresh = f, True
        feats.append(f)
        kept.append(it)
    if fresh and dist.is_main():
        paths = sorted(cached)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + ".tmp.npz")
        np.savez(tmp, paths=np.array(paths), **{f"f{i}": cached[p] for i, p in enumerate(paths)})
        os.replace(tmp, cache)
    return feats, kept, failed


def voice_features(kind: str, items: Sequence[Item], manifest: Manifest | None, fallback_cache: Path
                   ) -> tuple[list[np.ndarray], list[Item]]:
    """(T, F) features of the usable voice items for encoder ``kind`` (``voice_bank``), and those items."""
    bank = voice_bank(kind, items, manifest, fallback_cache)
    return [bank.features(i) for i in range(len(bank))], list(bank.items)


def load_faces64(items: Sequence[Item], root: Path | None) -> tuple[np.ndarray, list[Item]]:
    """(M, 3, 64, 64) uint8 RGB faces (``path64`` or ``path`` resized) through ``data.loaders.FaceBank``;
    unreadable files are logged and skipped."""
    bank = FaceBank(items, 64, root=root)
    for _, message in bank.failures:
        log.warning("skipping face %s", message)
    return bank.images(np.arange(len(bank))).transpose(0, 3, 1, 2), list(bank.items)


def to_unit(faces_u8: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, 64, 64) -> float (B, 3, 64, 64) in [-1, 1] ((x - 127.5) / 127.5, Sec. 3.3)."""
    x = torch.as_tensor(faces_u8).float()
    return (x - 127.5) / 127.5


# ------------------------------------------------------------------------------------------------ splits
@dataclass
class GANData:
    """Everything training and evaluation read from a manifest."""

    manifest: Manifest
    identities: list[str]             # classifier label order (training identities)
    train_voice: list[Item]
    heldout_voice: list[Item]         # held-out sessions of training identities
    test_voice: list[Item]            # unseen identities (data.test_splits)
    train_face: list[Item]
    test_face: list[Item]

    @functools.cached_property
    def identity_gender(self) -> np.ndarray:
        """(k,) float32 gender of each identity label (``identity_genders``), computed once."""
        return identity_genders(self.manifest, self.identities)


def split_data(manifest: Manifest, cfg: GANConfig) -> GANData:
    """Training identities, held-out sessions and unseen test identities (module docstring)."""
    dc = cfg.data
    voices = manifest.select(modality="voice", split=dc.train_splits)
    faces = manifest.select(modality="face", split=dc.train_splits)
    ids = sorted({v.identity for v in voices} & {f.identity for f in faces})
    if len(ids) < 2:
        raise InputError(manifest.root, f"need voice and face items of >= 2 identities in splits {dc.train_splits}")
    idset = set(ids)
    by_id: dict[str, list[Item]] = {}
    for v in voices:
        if v.identity in idset:
            by_id.setdefault(v.identity, []).append(v)
    train_v, held_v = [], []
    for ident in ids:
        items = by_id[ident]
        sessions = sorted({v.session for v in items})
        held = set(sessions[-dc.heldout_sessions:]) if len(sessions) > dc.heldout_sessions and dc.heldout_sessions else set()
        for v in items:
            (held_v if v.session in held else train_v).append(v)
    return GANData(manifest, ids, train_v, held_v,
                   list(manifest.select(modality="voice", split=dc.test_splits)),
                   [f for f in faces if f.identity in idset],
                   list(manifest.select(modality="face", split=dc.test_splits)))


# ------------------------------------------------------------------------------------------------ encoder
@contextlib.contextmanager
def seeded(seed: int):
    """Module initialisation from ``seed`` without touching the caller's global RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def build_voice_net(cfg: GANConfig, seed: int) -> VoiceEmbedNet:
    with seeded(seed):
        return VoiceEmbedNet(cfg.model.mel_bins, cfg.model.voice_channels, cfg.model.embed_dim)


def pretrain_own(run_dir: Path, bank: VoiceBank, labels: np.ndarray, n_speakers: int, cfg: GANConfig, seed: int,
                 device: torch.device, progress: bool = False, force_config: bool = False,
                 speaker_gender: np.ndarray | None = None) -> VoiceEmbedNet:
    """Speaker-classification pretraining of ``VoiceEmbedNet`` (Sec. 3.2.1) on ``bank`` (speaker ``labels`` (N,))
    through ``engine.fit`` and the input pipeline, in ``cfg.precision``.

    Cross-entropy of a linear head on the pooled embedding; Adam(encoder.pretrain_lr); crops as for the GAN. With
    ``encoder.gender_weight`` > 0, + that weight * the cross-entropy of a linear gender head on the same embedding
    (``speaker_gender`` (n_speakers,): 1 male, 0 female, -1 unknown, left out). Resumable: ``run_dir`` is its own
    run folder (method ``gan-encoder``).
    """
    ec = cfg.encoder
    net = build_voice_net(cfg, seed)
    with seeded(seed + 1):
        head = SpeakerHead(cfg.model.embed_dim, n_speakers)
        g_head = torch.nn.Linear(cfg.model.embed_dim, 1).to(device) if ec.gender_weight > 0 else None
    if g_head is not None and speaker_gender is None:
        raise ConfigError("encoder.gender_weight needs the speakers' genders")
    net, head = net.to(device), head.to(device)
    classifier = dist.wrap(SpeakerClassifier(net, head, g_head), device)
    opt = torch.optim.Adam(classifier.parameters(), lr=ec.pretrain_lr)
    models = {"voice": net, "head": head, **({"gender_head": g_head} if g_head is not None else {})}
    parts = Parts(models=models, optimizers={"adam": opt})
    run = Run.create(run_dir, "gan-encoder", {"encoder": cfglib.to_dict(ec), "n_speakers": n_speakers},
                     force_config=force_config, defaults={"encoder": cfglib.defaults_dict(ec)})
    prec = Precision.resolve(cfg.precision, device)
    sp_gender = torch.as_tensor(speaker_gender, device=device) if g_head is not None else None

    def step_fn(batch, step: int):
        mel, y = batch[0].to(device), batch[1].to(device)
        opt.zero_grad(set_to_none=True)
        out = {}
        with prec.autocast():
            logits = classifier(mel)
            loss = loss_s = torch.nn.functional.cross_entropy(logits[:, :n_speakers], y)
            if sp_gender is not None:
                loss_g, right = masked_gender_loss(logits[:, n_speakers].float(), sp_gender[y].float())
                loss = loss + ec.gender_weight * loss_g
                out = {"loss/gender": loss_g.item(), "acc/gender": right.float().mean().item()}
        loss.backward()
        opt.step()
        return {**out, "loss/speaker": loss_s.item(),
                "acc/speaker": (logits[:, :n_speakers].argmax(1) == y).float().mean().item()}

    fit(run, parts, method="gan-encoder", config=run.config, batch_fn=SpeakerBatches(cfg, bank, labels, seed,
                                                                                     dist.rank()),
        step_fn=step_fn, total_steps=ec.pretrain_steps, log_every=max(1, min(cfg.log_every, ec.pretrain_steps)),
        checkpoint_every=cfg.checkpoint_every, progress=progress, precision=prec.name, device=device,
        sources=(bank,), loader=LoaderOptions(workers=cfg.data.workers, prefetch=cfg.data.prefetch))
    return net.eval()


@dataclass
class SpeakerBatches:
    """F_e pretraining's ``batch_fn``: step -> (crops (B, F, L), speaker labels (B,)) from
    ``default_rng([seed, 7, step, rank])``; unreadable recordings replaced (labels follow)."""

    cfg: GANConfig
    bank: VoiceBank
    labels: np.ndarray
    seed: int
    rank: int = 0

    def __call__(self, step: int):
        dc = self.cfg.data
        rng = np.random.default_rng([self.seed, 7, step, self.rank])
        idx = rng.integers(0, len(self.bank), self.cfg.encoder.pretrain_batch)
        mel, used = self.bank.sample_crops(idx, rng, dc.min_frames, dc.max_frames)
        return mel, torch.from_numpy(self.labels[used])


def make_encoder(cfg: GANConfig, device: torch.device, net: torch.nn.Module | None = None) -> VoiceEncoder:
    """The F_e of ``encoder.kind`` (``net``: the own network, already trained or loaded)."""
    kind = cfg.encoder.kind
    if kind == "own":
        if net is None:
            raise ConfigError("encoder.kind=own needs the pretrained voice network")
        return LogMelEncoder(net, "own", cfg.model.embed_dim, device)
    if kind == "ge2e":
        return GE2EEncoder(device)
    if kind == "dimnet":
        if not cfg.encoder.dimnet_run:
            raise ConfigError("encoder.kind=dimnet needs encoder.dimnet_run=RUN")
        return dimnet_encoder(cfg.encoder.dimnet_run, device)
    raise ConfigError(f"encoder.kind '{kind}' is not one of own, dimnet, ge2e")


def feature_kind(kind: str) -> str:
    return "ge2e" if kind == "ge2e" else "logmel"


def feature_fn(kind: str, device: torch.device | str = "cpu"):
    """The front end of encoder ``kind``: ``f(samples, use_vad=True, path=None) -> (T, F)``."""
    return GE2EEncoder(device).features if kind == "ge2e" else logmel_features


# ------------------------------------------------------------------------------------------------ GAN
def build_gan(cfg: GANConfig, n_identities: int, embed_dim: int, seed: int) -> tuple[Generator, FaceCritics]:
    m = cfg.model
    prior = cfg.stable.prior_steps > 0            # F_g = decoder of m.embed_dim codes behind a map from embed_dim
    with seeded(seed + 2):
        gen = Generator(m.embed_dim if prior else embed_dim, m.gen_channels, pixel_norm=m.gen_pixel_norm,
                        upsample=m.gen_upsample, in_dim=embed_dim if prior else 0)
        crit = FaceCritics(n_identities, m.face_channels, m.face_embed, m.face_kernel, cfg.leaky_slope, m.share_trunk,
                           m.spectral_norm, m.mbstd_group if m.mbstd else 0, embed_dim if m.projection else 0,
                           gender_head=cfg.stable.gender_weight > 0, gender_projection=m.gender_projection)
        if cfg.init_std > 0:
            dcgan_init(gen, cfg.init_std)
            dcgan_init(crit, cfg.init_std)
    return gen, crit


def identity_genders(manifest: Manifest, identities: Sequence[str]) -> np.ndarray:
    """(k,) float32 gender of each identity label from the manifest: 1 male ('m'), 0 female ('f'), -1 unknown."""
    table = manifest.identity_table()
    code = {"m": 1.0, "f": 0.0}
    return np.array([code.get(table.get(i, {}).get("gender", ""), -1.0) for i in identities], dtype=np.float32)


def uses_stable_loss(cfg: GANConfig) -> bool:
    """Whether training runs ``StableGANLoss`` (any stable training switch on, or a projection D) rather than
    Algorithm 1's ``GANLoss`` (the sample-grid switches change nothing in training)."""
    plain = cfglib.replace(cfg.stable, {"sample_every": 0, "sample_probes": StableConfig().sample_probes})
    return plain != StableConfig() or cfg.model.projection or cfg.model.gender_projection


class FacesByIdentity:
    """Face indices grouped by identity label, to draw a face of a given identity: ``draw(rng, labels) -> (B,)``."""

    def __init__(self, face_labels: np.ndarray, n_labels: int):
        self.order = np.argsort(face_labels, kind="stable")
        self.count = np.bincount(face_labels, minlength=n_labels)
        self.start = np.concatenate([[0], np.cumsum(self.count)[:-1]])

    def draw(self, rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
        pick = (rng.random(len(labels)) * self.count[labels]).astype(np.int64)
        return self.order[self.start[labels] + pick]


def make_optimizers(cfg: GANConfig, gen: Generator, crit: FaceCritics) -> dict[str, torch.optim.Optimizer]:
    betas = (cfg.beta1, cfg.beta2)
    return {"g": torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=betas),
            "d": torch.optim.Adam(crit.d_parameters(), lr=cfg.lr, betas=betas),
            "c": torch.optim.Adam(crit.c_parameters(), lr=cfg.lr, betas=betas)}


def lr_factor(cfg: GANConfig, step: int) -> float:
    """Multiplier of ``cfg.lr`` at ``step`` (0-based): 1 until ``lr_decay_start * steps``, then linear towards 0
    at ``steps`` (a function of the step alone, so a resumed run gets the same schedule)."""
    start = cfg.lr_decay_start * cfg.steps
    if cfg.lr_decay_start >= 1.0 or step <= start:
        return 1.0
    return max(0.0, (cfg.steps - step) / (cfg.steps - start))


def set_lr(opts: dict[str, torch.optim.Optimizer], lr: float) -> None:
    for opt in opts.values():
        for group in opt.param_groups:
            group["lr"] = lr


@dataclass
class TrainBanks:
    """The training banks (``data.loaders``) and their identity labels (indices into ``GANData.identities``)."""

    voices: VoiceBank
    faces: FaceBank
    voice_labels: np.ndarray          # (N_v,) int64
    face_labels: np.ndarray           # (N_f,) int64

    def paired_voices(self, n_ids: int) -> np.ndarray:
        """(P,) indices of the voice recordings whose identity has at least one face in the face bank."""
        return np.flatnonzero(np.bincount(self.face_labels, minlength=n_ids)[self.voice_labels] > 0)


def load_banks(gd: GANData, cfg: GANConfig, out: Path) -> TrainBanks:
    """Voice bank of the training recordings (encoder ``kind``'s features) and 64x64 face bank of the training faces
    (decoded once when within ``data.face_memory_mb``, else read per batch)."""
    manifest = gd.manifest
    label = {k: i for i, k in enumerate(gd.identities)}
    voices = voice_bank(cfg.encoder.kind, gd.train_voice, manifest, out / "cache", cfg.data.voice_memory_mb)
    if not len(voices):
        raise InputError(manifest.root, "no usable training voice recordings")
    faces = FaceBank(gd.train_face, 64, root=manifest.root, memory_mb=cfg.data.face_memory_mb)
    for _, message in faces.failures:
        log.warning("skipping face %s", message)
    if not len(faces):
        raise InputError(manifest.root, "no readable training face images")
    return TrainBanks(voices, faces, np.array([label[it.identity] for it in voices.items], dtype=np.int64),
                      np.array([label[it.identity] for it in faces.items], dtype=np.int64))


# ------------------------------------------------------------------------------------------------ face prior
@dataclass
class FaceBatches:
    """The face prior's ``batch_fn``: step -> (faces (B, 3, 64, 64) in [-1, 1], code noise (B, code_dim)) drawn
    from ``default_rng([seed, 17, step, rank])`` (flipped like the GAN's real faces)."""

    cfg: GANConfig
    faces: FaceBank
    seed: int
    rank: int = 0

    def __call__(self, step: int):
        sc = self.cfg.stable
        rng = np.random.default_rng([self.seed, 17, step, self.rank])
        idx = rng.integers(0, len(self.faces), sc.prior_batch)
        flips = self.faces.random_flips(len(idx), rng) if self.cfg.data.flip_faces else None
        images, _ = self.faces.read(idx)
        noise = sc.prior_noise * rng.standard_normal((len(idx), self.cfg.model.embed_dim))
        return to_tensor(images, flips), torch.from_numpy(noise.astype(np.float32))


def pretrain_prior(run_dir: Path, faces: FaceBank, gen: Generator, cfg: GANConfig, seed: int, device: torch.device,
                   progress: bool = False, force_config: bool = False) -> FaceEncoder:
    """The face prior, stage 1: a face autoencoder, ``FaceEncoder`` -> unit code -> F_g's decoder (``gen.net``),
    trained on the real training faces by mean absolute pixel error for ``stable.prior_steps`` (codes perturbed by
    ``prior_noise``, so nearby codes decode to nearby faces). Leaves the trained decoder in ``gen``; returns the
    encoder. Resumable: ``run_dir`` is its own run folder (method ``gan-prior``)."""
    sc = cfg.stable
    with seeded(seed + 3):
        enc = FaceEncoder(cfg.model.prior_channels, cfg.model.embed_dim).to(device)
    gen.to(device)
    ae = dist.wrap(FaceAutoencoder(enc, gen.net), device)
    opt = torch.optim.Adam(ae.parameters(), lr=sc.prior_lr, betas=(0.5, 0.999))
    parts = Parts(models={"face_encoder": enc, "decoder": gen.net}, optimizers={"adam": opt})
    stored = {"model": cfglib.to_dict(cfg.model), "stable": cfglib.to_dict(sc), "flip_faces": cfg.data.flip_faces}
    run = Run.create(run_dir, "gan-prior", stored, force_config=force_config,
                     defaults={"model": cfglib.defaults_dict(cfg.model), "stable": cfglib.defaults_dict(sc)})
    prec = Precision.resolve(cfg.precision, device)

    def step_fn(batch, step: int):
        f, noise = batch[0].to(device), batch[1].to(device)
        opt.zero_grad(set_to_none=True)
        with prec.autocast():
            loss = (ae(f, noise).float() - f).abs().mean()
        loss.backward()
        opt.step()
        return {"loss/prior_l1": loss.item()}

    fit(run, parts, method="gan-prior", config=run.config, batch_fn=FaceBatches(cfg, faces, seed, dist.rank()),
        step_fn=step_fn, total_steps=sc.prior_steps, log_every=max(1, min(cfg.log_every, sc.prior_steps)),
        checkpoint_every=cfg.checkpoint_every, progress=progress, precision=prec.name, device=device,
        sources=(faces,), loader=LoaderOptions(workers=cfg.data.workers, prefetch=cfg.data.prefetch))
    return enc.eval()


@torch.no_grad()
def fit_voice_map(gen: Generator, face_enc: FaceEncoder, banks: TrainBanks, encoder: VoiceEncoder, n_ids: int,
                  cfg: GANConfig, device: torch.device, chunk: int = 256) -> float:
    """The face prior, stage 2: F_g's input map as the ridge regression (penalty ``stable.prior_ridge``) of each
    training recording's identity mean code on its voice embedding:

        W = argmin_W  sum_r || [e_r, 1] W - c_{y_r} ||^2 + ridge ||W||^2,   c_y = normalise(mean of y's face codes)

    e_r (N, q): F_e of recording r (repeated / cut to ``data.test_frames``); codes from ``face_enc``. Writes W into
    ``gen.map``; returns the fit's R^2 over the recordings."""
    faces, n = banks.faces, len(banks.faces)
    codes = torch.cat([face_enc(faces.batch(np.arange(i, min(i + chunk, n))).to(device))
                       for i in range(0, n, chunk)])                                       # (M, code_dim)
    labels = torch.as_tensor(banks.face_labels, device=device)
    means = torch.nn.functional.normalize(codes.new_zeros(n_ids, codes.shape[1]).index_add_(0, labels, codes), dim=1)
    voices, frames = banks.voices, cfg.data.test_frames
    keep = banks.paired_voices(n_ids)
    emb = []
    for i in range(0, len(keep), chunk):
        feats = [voices.features(j) for j in keep[i:i + chunk]]
        crops = [np.resize(f, (frames, f.shape[1])) for f in feats]        # cyclic repeat / cut to ``frames``
        emb.append(encoder.embed(torch.from_numpy(np.stack(crops)).transpose(1, 2)).to(device))
    a = torch.cat([torch.cat(emb), torch.ones(len(keep), 1, device=device)], dim=1)         # (N, q + 1)
    target = means[torch.as_tensor(banks.voice_labels[keep], device=device)]                # (N, code_dim)
    w = torch.linalg.solve(a.T @ a + cfg.stable.prior_ridge * torch.eye(a.shape[1], device=device), a.T @ target)
    gen.map.weight.copy_(w[:-1].T)
    gen.map.bias.copy_(w[-1])
    resid = (a @ w - target).square().sum()
    return float(1 - resid / (target - target.mean(0)).square().sum())


def prepare(data: str | os.PathLike, out: Path, cfg: GANConfig, seed: int, device: torch.device,
            progress: bool = False, force_config: bool = False) -> tuple[GANData, VoiceEncoder, TrainBanks]:
    """Read the manifest, split it, build the voice and face banks and F_e (pretraining it for kind=own)."""
    manifest = read_manifest(resolve_data(data))
    gd = split_data(manifest, cfg)
    banks = load_banks(gd, cfg, out)
    net = None
    if cfg.encoder.kind == "own":
        net = pretrain_own(out / "encoder", banks.voices, banks.voice_labels, len(gd.identities), cfg, seed, device,
                           progress, force_config, gd.identity_gender)
    encoder = make_encoder(cfg, device, net)
    return gd, encoder, banks


def train(data: str | os.PathLike, out: str | os.PathLike, config_file: str | os.PathLike | None = None,
          overrides: Sequence[str] = (), seed: int | None = None, progress: bool = True,
          stop_after: int | None = None, *, config: GANConfig | None = None, force_config: bool = False) -> Path:
    """``voiceface train gan``: F_e (pretrained / loaded, frozen) then Algorithm 1 for ``steps`` iterations.

    Writes ``out/`` (a run folder; resumes from its checkpoint). ``stop_after`` simulates a kill (tests).
    ``config`` (a ready ``GANConfig``, e.g. a ``PRESETS`` entry) replaces ``config_file``/``overrides``; ``seed``
    (when not None) sets the config's ``seed``; ``force_config`` resumes even if the config changed. Batches come
    through the input pipeline (``data.workers``); under ``torchrun`` G and D/C are DDP-wrapped, each rank draws its
    own batches and rank 0 alone writes. ``precision``: fp32 or bf16 (the whole step under autocast; fp16 is
    refused: the three optimisers and the R1 penalty are not loss-scaled).
    """
    cfg = config if config is not None else cfglib.load_config(GANConfig, config_file, overrides)
    if seed is not None:
        cfg = cfglib.replace(cfg, {"seed": int(seed)})
    seed = cfg.seed
    out = Path(out)
    device = dist.default_device(cfg.device)
    prec = Precision.resolve(cfg.precision, device)
    if prec.scaler is not None:
        raise ConfigError("precision=fp16 is not supported by the GAN (its three optimisers and R1 penalty are not "
                          "loss-scaled); use precision=bf16")
    dist.init(device)
    manifest = resolve_data(data)
    run = Run.create(out, METHOD_NAME, cfglib.to_dict(cfg), force_config=force_config,
                     defaults=cfglib.defaults_dict(cfg), data=manifest, unchecked=("dimnet_i_run", "dimnet_g_run"))
    gd, encoder, banks = prepare(data, out, cfg, seed, device, progress, force_config)
    gen, crit = build_gan(cfg, len(gd.identities), encoder.dim, seed)
    # the face prior initialises G; a resumed GAN run restores G from its own checkpoint, so the prior is not redone
    if cfg.stable.prior_steps > 0 and not run.checkpoint_path.exists():
        face_enc = pretrain_prior(out / "prior", banks.faces, gen, cfg, seed, device, progress, force_config)
        r2 = fit_voice_map(gen, face_enc, banks, encoder, len(gd.identities), cfg, device)
        log.info("face prior: voice-to-code map R^2 %.3f on the training recordings", r2)
        if dist.is_main():
            run.log(0, event="face_prior_map", r2=round(r2, 4))
    gen_w, crit_w = dist.wrap(gen, device), dist.wrap(crit, device)
    opts = make_optimizers(cfg, gen, crit)
    models = {"generator": gen_w, "critics": crit_w}
    extra = {"identities": gd.identities, "embed_dim": encoder.dim}
    ema = None
    if cfg.stable.ema_beta > 0:
        ema = GeneratorEMA(gen, build_gan(cfg, len(gd.identities), encoder.dim, seed)[0].to(device), cfg.stable.ema_beta)
        models["generator_ema"] = ema.module
        extra["generate_with"] = "generator_ema"         # what load_run uses for generation / evaluation
    if cfg.encoder.kind == "own":
        models["voice"] = encoder.net
    parts = Parts(models=models, optimizers=opts, extra=extra)
    step_fn = with_precision(make_step_fn(cfg, encoder, gen_w, crit_w, opts, ema, seed, device,
                                          torch.from_numpy(gd.identity_gender)), prec)
    if cfg.stable.sample_every > 0 and dist.is_main():
        step_fn = with_samples(step_fn, out / "samples", cfg, probe_set(gd, cfg, out), encoder,
                               ema.module if ema is not None else gen)
    fit(run, parts, method=METHOD_NAME, config=run.config,
        batch_fn=Batches(cfg, banks, len(gd.identities), encoder.dim, seed, dist.rank()), step_fn=step_fn,
        total_steps=cfg.steps, log_every=cfg.log_every, checkpoint_every=cfg.checkpoint_every,
        progress=progress, stop_after=stop_after, precision=prec.name, device=device,
        sources=(banks.voices, banks.faces), loader=LoaderOptions(workers=cfg.data.workers, prefetch=cfg.data.prefetch))
    return out


def with_precision(step_fn, prec: Precision):
    """``step_fn`` run under ``prec.autocast()`` (the GAN's phases interleave forwards, backwards and optimiser
    steps; autocast leaves the float32 parameters and optimiser states alone)."""
    if not prec.enabled:
        return step_fn

    def wrapped(batch, step: int):
        with prec.autocast():
            return step_fn(batch, step)

    return wrapped


class Batches:
    """The GAN's ``batch_fn``: step -> (mel (n, F, L), voice ids (n,), real (m, 3, 64, 64) in [-1, 1], face ids
    (m,), noise (n, q)) on CPU, drawn from ``default_rng([seed, 11, step, rank])`` (each DDP rank its own shard).

    With ``stable.paired_batches`` voices come from identities with faces and real face j is of voice j's identity.
    Unreadable files are replaced by the banks (labels follow the replacement)."""

    def __init__(self, cfg: GANConfig, banks: TrainBanks, n_ids: int, embed_dim: int, seed: int, rank: int = 0):
        self.cfg, self.banks, self.embed_dim, self.seed, self.rank = cfg, banks, embed_dim, seed, rank
        self.by_id = FacesByIdentity(banks.face_labels, n_ids)
        self.voice_pool = banks.paired_voices(n_ids)

    def __call__(self, step: int):
        cfg, b = self.cfg, self.banks
        rng = np.random.default_rng([self.seed, 11, step, self.rank])
        paired = cfg.stable.paired_batches
        vi = self.voice_pool[rng.integers(0, len(self.voice_pool), cfg.batch_size)] if paired else \
            rng.integers(0, len(b.voices), cfg.batch_size)
        mel, vi = b.voices.sample_crops(vi, rng, cfg.data.min_frames, cfg.data.max_frames)      # (n, F, L)
        fi = self.by_id.draw(rng, b.voice_labels[vi]) if paired else rng.integers(0, len(b.faces), cfg.batch_size)
        flips = b.faces.random_flips(len(fi), rng) if cfg.data.flip_faces else None
        images, fi = b.faces.read(fi)                                                             # (m, 64, 64, 3)
        noise = torch.from_numpy(rng.standard_normal((cfg.batch_size, self.embed_dim)).astype(np.float32))
        return (mel, torch.from_numpy(b.voice_labels[vi]), to_tensor(images, flips),
                torch.from_numpy(b.face_labels[fi]), noise)


def make_step_fn(cfg: GANConfig, encoder: VoiceEncoder, gen, crit, opts, ema, seed: int, device: torch.device,
                 id_gender: torch.Tensor | None = None):
    """``step_fn(batch, step) -> scalars``: Algorithm 1 (``GANLoss``) or the stable recipe (``StableGANLoss``);
    ``id_gender`` (k,): the identity labels' genders (``identity_genders``), for ``stable.gender_weight``."""
    stable = uses_stable_loss(cfg)
    if cfg.model.projection and not cfg.stable.paired_batches:
        raise ConfigError("model.projection needs stable.paired_batches=true (real faces need their voice)")
    if cfg.stable.recon_weight > 0 and not cfg.stable.paired_batches:
        raise ConfigError("stable.recon_weight needs stable.paired_batches=true (its target is a face of the voice)")
    if cfg.stable.gender_augment and cfg.stable.gender_weight <= 0:
        raise ConfigError("stable.gender_augment needs stable.gender_weight > 0 (it augments the gender head's input)")
    if cfg.stable.gender_mismatch_weight > 0 and not cfg.model.gender_projection:
        raise ConfigError("stable.gender_mismatch_weight needs model.gender_projection=true")
    loss = StableGANLoss(gen, crit, opts, cfg.stable, ema, id_gender) if stable else GANLoss(gen, crit, opts["g"], opts["d"],
                                                                                    opts["c"])

    def step_fn(batch, step: int):
        mel, vid, real, fid, noise = batch
        if cfg.lr_decay_start < 1.0:
            set_lr(opts, cfg.lr * lr_factor(cfg, step))
        e = encoder.embed(mel)                                                   # (n, q), frozen F_e
        e = torch.nn.functional.normalize(e + cfg.embed_noise * noise.to(device), dim=1)
        vid, real, fid = vid.to(device), real.to(device), fid.to(device)
        if not stable:
            return loss.step(e, vid, real, fid)
        gen_aug = torch.Generator().manual_seed(int(np.random.default_rng([seed, 13, step, dist.rank()])
                                                    .integers(2 ** 62)))
        return loss.step(e, vid, real, fid, e, step, gen_aug)

    return step_fn


@dataclass
class Probes:
    """Fixed probe voices of unseen identities for the sample grid: feats (P, F, test_frames), faces (P, 3, 64, 64)."""

    feats: torch.Tensor
    faces: torch.Tensor
    names: list[str]


def probe_set(gd: GANData, cfg: GANConfig, out: Path) -> Probes:
    """One recording and one real face of each of the first ``stable.sample_probes`` unseen identities having both
    (test splits; training identities when there are none)."""
    voices, faces = (gd.test_voice, gd.test_face) if gd.test_voice and gd.test_face else (gd.heldout_voice or
                                                                                         gd.train_voice, gd.train_face)
    face_of = {}
    for f in faces:
        face_of.setdefault(f.identity, f)
    chosen: dict[str, Item] = {}
    for v in sorted(voices, key=lambda it: (it.identity, it.path)):
        if v.identity in face_of and v.identity not in chosen and len(chosen) < cfg.stable.sample_probes:
            chosen[v.identity] = v
    feats, kept = voice_features(cfg.encoder.kind, list(chosen.values()), gd.manifest, out / "cache")
    n = cfg.data.test_frames
    crops = [np.resize(f, (n, f.shape[1])) for f in feats]                     # cyclic repeat / cut to n frames
    real, _ = load_faces64([face_of[v.identity] for v in kept], gd.manifest.root)
    x = torch.from_numpy(np.stack(crops)).transpose(1, 2) if crops else torch.zeros(0, cfg.model.mel_bins, n)
    return Probes(x.contiguous(), to_unit(real), [v.identity for v in kept])


def with_samples(step_fn, folder: Path, cfg: GANConfig, probes: Probes, encoder: VoiceEncoder, gen: Generator):
    """Wrap ``step_fn`` to write ``folder/step_NNNNNN.png`` every ``stable.sample_every`` steps (and the last):
    row 1 the faces generated from the probe voices (with ``gen``, the EMA generator when on), row 2 a real face."""
    from .generate import contact_sheet

    def wrapped(batch, step: int):
        values = step_fn(batch, step)
        done = step + 1
        if len(probes.names) and (done % cfg.stable.sample_every == 0 or done == cfg.steps):
            with torch.no_grad():
                fake = gen(encoder.embed(probes.feats)).clamp(-1, 1).cpu()
            folder.mkdir(parents=True, exist_ok=True)
            sheet = contact_sheet(torch.cat([fake, probes.faces]), probes.names * 2, columns=len(probes.names))
            sheet.save(folder / f"step_{done:06d}.png")
        return values

    return wrapped


# ------------------------------------------------------------------------------------------------ loading
@dataclass
class TrainedGAN:
    """A trained run, ready for generation and evaluation (all modules in eval mode)."""

    config: GANConfig
    encoder: VoiceEncoder
    generator: Generator
    critics: FaceCritics | None
    identities: list[str]
    seed: int
    data: str
    device: torch.device

    @torch.no_grad()
    def faces(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, F, T) voice features -> (B, 3, 64, 64) faces clamped to [-1, 1], on the CPU (whatever the device)."""
        return self.generator(self.encoder.embed(feats.to(self.device))).clamp(-1, 1).cpu()


def load_run(run: str | os.PathLike, device: str | torch.device | None = "cpu") -> TrainedGAN:
    """Load a GAN run folder (or the checkpoint of one) written by ``train``, onto ``device`` ('auto': CUDA when
    present; None: the run config's ``device`` rule)."""
    path = Path(run)
    ckpt_path = path / "checkpoint.pt" if path.is_dir() else path
    ckpt = load_checkpoint(ckpt_path, map_location="cpu")
    if ckpt.get("method") != METHOD_NAME:
        raise InputError(ckpt_path, f"not a GAN run (method '{ckpt.get('method')}')")
    stored = dict(ckpt["config"])
    legacy = stored.pop("manifest", "")                          # runs before the data record kept it in the config
    seed, data = int(stored.get("seed", 0)), str(ckpt["extra"].get("data", legacy))
    cfg = cfglib.from_dict(GANConfig, stored)
    device = dist.default_device(cfg.device if device is None else str(device))
    net = None
    if cfg.encoder.kind == "own":
        net = build_voice_net(cfg, seed)
        net.load_state_dict(ckpt["models"]["voice"])
    encoder = make_encoder(cfg, device, net)
    ids = list(ckpt["extra"]["identities"])
    gen, crit = build_gan(cfg, len(ids), encoder.dim, seed)
    # the EMA generator when the run kept one (extra["generate_with"] names it), else the trained generator
    gen.load_state_dict(ckpt["models"][ckpt["extra"].get("generate_with", "generator")])
    crit.load_state_dict(ckpt["models"]["critics"])
    return TrainedGAN(cfg, encoder, gen.eval().to(device), crit.eval().to(device), ids, seed, data, device)
