"""Networks of the voice-to-face GAN (Sec. 3.2, Table 3.2). Pure modules: no training code here.

* ``VoiceEmbedNet`` F_e: 5 Conv1d (k3, s2, p1) over a 64-bin log-mel spectrogram, average pooled over time and
  L2-normalised to a 64-d embedding.
* ``Generator`` F_g: 6 ConvTranspose2d from a 64x1x1 embedding to a 3x64x64 face in (about) [-1, 1].
* ``FaceCritics``: the discriminator F_d (real/fake logit) and the identity classifier F_c (k logits), each a
  convolutional trunk (3x64x64 -> 64x1x1) plus a fully connected head; the trunk is shared when ``share_trunk``.
  Stable-recipe switches (all off = Table 3.2): spectral normalisation of the trunk(s) and D's head (C's head stays
  free, so its identity logits can grow confident over many classes), a minibatch-std
  feature before D's head, and a projection term <W e, h> on the voice embedding e (Miyato & Koyama's projection D).
* ``FaceEncoder``, ``FaceAutoencoder`` and ``Generator.map``: the face prior (stable recipe; Speech2Face, Oh et al.
  2019, and SF2F decode faces from a face-feature space in the same spirit): F_g first learns to decode real faces'
  codes, and a linear map from the voice embedding to a code feeds it.
* ``MinibatchStd``, ``GeneratorEMA``, ``diff_augment``: the remaining stable-recipe parts (no training loop here).

The voice network and the generator keep their layers in an ``nn.Sequential`` called ``net`` with the same layer
indices as the authors' released checkpoints (``model.<i>``), so ``weights.py`` maps them by renaming the prefix.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class VoiceEmbedNet(nn.Module):
    """F_e (Table 3.2, left): (B, mel_bins, T) log-mel -> (B, embed_dim) unit-norm embedding.

    Layers: Conv1d(64->256), BN, ReLU, Conv1d(256->384), BN, ReLU, Conv1d(384->576), BN, ReLU, Conv1d(576->864), BN,
    ReLU, Conv1d(864->64, bias). Time shrinks as t_{i+1} = ceil((t_i - 1) / 2) + 1.
    """

    def __init__(self, mel_bins: int = 64, channels: Sequence[int] = (256, 384, 576, 864), embed_dim: int = 64):
        super().__init__()
        layers: list[nn.Module] = []
        cin = mel_bins
        for c in channels:
            layers += [nn.Conv1d(cin, c, 3, 2, 1, bias=False), nn.BatchNorm1d(c, affine=True), nn.ReLU(inplace=True)]
            cin = c
        layers.append(nn.Conv1d(cin, embed_dim, 3, 2, 1, bias=True))
        self.net = nn.Sequential(*layers)
        self.embed_dim = embed_dim
        self.mel_bins = mel_bins

    def pooled(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, mel_bins, T) -> (B, embed_dim): time-averaged output of the last conv, before normalisation."""
        return self.net(mel).mean(dim=2)          # (B, 64, t5) -> (B, 64)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, mel_bins, T) -> (B, embed_dim), L2-normalised."""
        return F.normalize(self.pooled(mel), dim=1)


class SpeakerHead(nn.Module):
    """Linear speaker classifier on the pooled voice embedding, used only to pretrain F_e (Sec. 3.2.1)."""

    def __init__(self, embed_dim: int, n_speakers: int):
        super().__init__()
        self.fc = nn.Linear(embed_dim, n_speakers)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """(B, embed_dim) -> (B, n_speakers) logits."""
        return self.fc(pooled)


class SpeakerClassifier(nn.Module):
    """F_e plus its speaker head as one module (so the pretraining forward runs through DDP when distributed)."""

    def __init__(self, voice: VoiceEmbedNet, head: SpeakerHead, gender: nn.Linear | None = None):
        super().__init__()
        self.voice, self.head, self.gender = voice, head, gender

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, mel_bins, T) -> (B, n_speakers) logits, with a ``gender`` head (B, n_speakers + 1): the last column
        is its gender logit (male = 1) on the same pooled embedding."""
        h = self.voice.pooled(mel)
        logits = self.head(h)
        return logits if self.gender is None else torch.cat([logits, self.gender(h)], dim=1)


class PixelNorm(nn.Module):
    """ProGAN's pixelwise feature normalisation: (B, C, H, W) -> x / sqrt(mean_c x^2 + 1e-8), per sample."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class Generator(nn.Module):
    """F_g (Table 3.2, right): (B, embed_dim) or (B, embed_dim, 1, 1) -> (B, 3, 64, 64).

    ConvT(64->1024, k4 s1 p0) 4x4, ReLU; ConvT(1024->512, k4 s2 p1) 8x8, ReLU; ->256 16x16, ReLU; ->128 32x32, ReLU;
    ->64 64x64, ReLU; ConvT(64->3, k1 s1 p0) 64x64 (no output non-linearity, as released; clamp to [-1, 1] to view).
    ``pixel_norm`` (stable recipe) puts a ``PixelNorm`` after every hidden ReLU: without any normalisation the DCGAN
    init N(0, 0.02) shrinks the signal ~5x per layer (output std ~1e-6 at the start), which stalls short trainings.
    ``upsample`` (stable recipe) replaces each stride-2 transposed conv by nearest-neighbour x2 upsampling and a 3x3
    conv (no checkerboard: every output pixel gets the same number of kernel taps) and ends in Conv3x3(->3) + tanh.
    ``in_dim`` > 0 (stable recipe, the face prior): the input e (B, in_dim) first goes through ``map``, a linear
    layer to (B, embed_dim) followed by L2 normalisation: the voice-to-code map in front of a decoder pretrained on
    faces (``FaceEncoder`` codes). It sits outside ``net``, so the layer indices stay the authors'.
    """

    def __init__(self, embed_dim: int = 64, channels: Sequence[int] = (1024, 512, 256, 128, 64), out_channels: int = 3,
                 pixel_norm: bool = False, upsample: bool = False, in_dim: int = 0):
        super().__init__()
        self.map = nn.Linear(in_dim, embed_dim) if in_dim > 0 else None
        norm = [PixelNorm()] if pixel_norm else []
        layers: list[nn.Module] = [nn.ConvTranspose2d(embed_dim, channels[0], 4, 1, 0, bias=True), nn.ReLU(inplace=True),
                                   *norm]
        for cin, cout in zip(channels[:-1], channels[1:]):
            up = ([nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(cin, cout, 3, 1, 1, bias=True)] if upsample
                  else [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=True)])
            layers += [*up, nn.ReLU(inplace=True), *norm]
        if upsample:
            layers += [nn.Conv2d(channels[-1], out_channels, 3, 1, 1, bias=True), nn.Tanh()]
        else:
            layers.append(nn.ConvTranspose2d(channels[-1], out_channels, 1, 1, 0, bias=True))
        self.net = nn.Sequential(*layers)
        self.embed_dim = embed_dim

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        """(B, embed_dim[, 1, 1]) (with ``map``: (B, in_dim)) -> (B, 3, 64, 64)."""
        if self.map is not None:
            e = F.normalize(self.map(e.flatten(1)), dim=1)       # (B, embed_dim) code on the unit sphere
        return self.decode(e)

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """(B, embed_dim[, 1, 1]) -> (B, 3, 64, 64): ``net`` alone (the decoder of the face prior)."""
        if code.dim() == 2:
            code = code[:, :, None, None]          # (B, 64, 1, 1)
        return self.net(code)


def maybe_sn(module: nn.Module, on: bool) -> nn.Module:
    """``module`` with spectral normalisation of its weight (one power iteration per training forward) when ``on``."""
    return nn.utils.parametrizations.spectral_norm(module) if on else module


class MinibatchStd(nn.Module):
    """StyleGAN's minibatch standard deviation: (B, C, *) -> (B, C + 1, *).

    The batch is split into groups of ``g`` (the largest divisor of B not above ``group``); the extra channel of every
    sample is the std over its group, averaged over channels and positions, so D can see a collapsed batch."""

    def __init__(self, group: int = 4):
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        g = max(d for d in range(1, min(self.group, b) + 1) if b % d == 0)
        y = x.reshape(g, b // g, *x.shape[1:])                          # (g, B/g, C, *)
        std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt()               # (B/g, C, *)
        s = std.flatten(1).mean(1)                                       # (B/g,)
        s = s.repeat(g)                                                  # (B,): sample i is in group column i % (B/g)
        return torch.cat([x, s.reshape(b, *([1] * (x.dim() - 1))).expand(b, 1, *x.shape[2:])], dim=1)


class FaceTrunk(nn.Module):
    """Convolutional trunk of F_d / F_c (Table 3.2, bottom): (B, 3, 64, 64) -> (B, out_dim).

    Conv 1x1 (3->32) 64x64, then four Conv k/2,1 to 32x32, 16x16, 8x8, 4x4 (32->64->128->256->512), then Conv 4x4/1,0
    to out_dim x 1 x 1; every conv followed by LeakyReLU.
    """

    def __init__(self, channels: Sequence[int] = (32, 64, 128, 256, 512), out_dim: int = 64, kernel: int = 3,
                 slope: float = 0.2, spectral_norm: bool = False):
        super().__init__()
        pad = 1 if kernel in (3, 4) else kernel // 2
        sn = spectral_norm
        layers: list[nn.Module] = [maybe_sn(nn.Conv2d(3, channels[0], 1, 1, 0), sn), nn.LeakyReLU(slope, inplace=True)]
        for cin, cout in zip(channels[:-1], channels[1:]):
            layers += [maybe_sn(nn.Conv2d(cin, cout, kernel, 2, pad), sn), nn.LeakyReLU(slope, inplace=True)]
        layers += [maybe_sn(nn.Conv2d(channels[-1], out_dim, 4, 1, 0), sn), nn.LeakyReLU(slope, inplace=True)]
        self.net = nn.Sequential(*layers)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """(B, 3, 64, 64) -> (B, out_dim)."""
        return self.net(f).flatten(1)              # (B, 64, 1, 1) -> (B, 64)


class FaceEncoder(nn.Module):
    """The face prior's encoder (stable recipe): (B, 3, 64, 64) -> (B, code_dim) unit codes, a ``FaceTrunk`` (4x4
    kernels) plus a linear layer. With the generator's ``decode`` it forms a face autoencoder trained on real faces
    before the GAN; the codes' identity means are the targets of the voice-to-code map (``Generator.map``)."""

    def __init__(self, channels: Sequence[int] = (16, 32, 64, 128, 256), code_dim: int = 64, slope: float = 0.2):
        super().__init__()
        self.trunk = FaceTrunk(channels, channels[-1], 4, slope)
        self.fc = nn.Linear(channels[-1], code_dim)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """(B, 3, 64, 64) -> (B, code_dim), L2-normalised."""
        return F.normalize(self.fc(self.trunk(f)), dim=1)


class FaceAutoencoder(nn.Module):
    """The face prior as one module (one forward, DDP-wrappable): ``FaceEncoder`` then the generator's ``net``.

    forward(f, noise): (B, 3, 64, 64) faces, (B, code_dim) code perturbation or None -> (B, 3, 64, 64)."""

    def __init__(self, encoder: FaceEncoder, decoder: nn.Sequential):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, f: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        z = self.encoder(f)                                              # (B, code_dim)
        if noise is not None:
            z = F.normalize(z + noise, dim=1)
        return self.decoder(z[:, :, None, None])


class FaceCritics(nn.Module):
    """The discriminator F_d and identity classifier F_c (Table 3.2), trunk shared or not.

    ``d_logit(f, e=None, s=None)``: (B, 3, 64, 64)[, (B, q)][, (B,)] -> (B,) real/fake logit (sigmoid gives F_d).
    With ``embed_dim`` > 0 (projection D) the logit adds <W e, h> for the trunk features h (B, out_dim); e = None
    leaves it out. ``gender_projection`` adds s * <w, h> for a gender sign s (B,) (+1 male, -1 female, 0 unknown);
    s = None leaves it out.
    ``c_logit(f)``: (B, 3, 64, 64) -> (B, k) identity logits (softmax gives F_c). ``gender_head`` adds a gender
    logit (male = 1) on F_c's trunk features (``stable.gender_weight``: trained on real faces in the C step, applied to
    G's faces with the voice's gender).
    ``d_parameters()`` / ``c_parameters()``: what the D step / C step of Algorithm 1 update (the shared trunk is in both).
    """

    def __init__(self, n_identities: int, channels: Sequence[int] = (32, 64, 128, 256, 512), out_dim: int = 64,
                 kernel: int = 3, slope: float = 0.2, share_trunk: bool = True, spectral_norm: bool = False,
                 mbstd_group: int = 0, embed_dim: int = 0, gender_head: bool = False, gender_projection: bool = False):
        super().__init__()
        sn = spectral_norm
        self.share_trunk = share_trunk
        self.trunk_d = FaceTrunk(channels, out_dim, kernel, slope, sn)
        self.trunk_c = None if share_trunk else FaceTrunk(channels, out_dim, kernel, slope, sn)
        self.mbstd = MinibatchStd(mbstd_group) if mbstd_group > 0 else None
        self.head_d = maybe_sn(nn.Linear(out_dim + (1 if self.mbstd else 0), 1), sn)
        self.head_c = nn.Linear(out_dim, n_identities)         # a classifier, not a critic: never normalised
        self.proj = maybe_sn(nn.Linear(embed_dim, out_dim, bias=False), sn) if embed_dim > 0 else None
        self.head_g = nn.Linear(out_dim, 1) if gender_head else None   # on F_c's trunk, trained in the C step
        self.proj_g = maybe_sn(nn.Linear(out_dim, 1, bias=False), sn) if gender_projection else None   # D's w

    def _trunk_c(self) -> FaceTrunk:
        return self.trunk_d if self.trunk_c is None else self.trunk_c

    def _d_head(self, h: torch.Tensor, e: torch.Tensor | None, s: torch.Tensor | None = None) -> torch.Tensor:
        """Trunk features (B, out_dim)[, embeddings (B, q)][, gender signs (B,)] -> (B,) logits."""
        out = self.head_d(self.mbstd(h) if self.mbstd is not None else h).squeeze(1)
        if self.proj is not None and e is not None:
            out = out + (self.proj(e) * h).sum(1)
        if self.proj_g is not None and s is not None:
            out = out + s.to(h.dtype) * self.proj_g(h).squeeze(1)
        return out

    def d_logit(self, f: torch.Tensor, e: torch.Tensor | None = None, s: torch.Tensor | None = None) -> torch.Tensor:
        return self._d_head(self.trunk_d(f), e, s)               # (B,)

    def c_logit(self, f: torch.Tensor) -> torch.Tensor:
        return self.head_c(self._trunk_c()(f))                  # (B, k)

    def c_and_gender(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, k) identity logits and (B,) gender logits (male = 1) of F_c's trunk (needs ``gender_head``)."""
        h = self._trunk_c()(f)
        return self.head_c(h), self.head_g(h).squeeze(1)

    def all(self, f: torch.Tensor, e: torch.Tensor | None = None, s: torch.Tensor | None = None
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B,) real/fake logits, (B, k) identity logits, (B,) gender logits, running a shared trunk once."""
        return self._critic_heads(f, e, s, gender=True)

    def both(self, f: torch.Tensor, e: torch.Tensor | None = None, s: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) real/fake logits and (B, k) identity logits, running a shared trunk once."""
        return self._critic_heads(f, e, s, gender=False)

    def _critic_heads(self, f: torch.Tensor, e: torch.Tensor | None, s: torch.Tensor | None, gender: bool
                      ) -> tuple[torch.Tensor, ...]:
        """D's logits, then F_c's identity logits (and gender logits when ``gender``); one trunk pass when shared."""
        if self.trunk_c is None:
            h = self.trunk_d(f)                                                    # (B, out_dim)
            c = (self.head_c(h),) + ((self.head_g(h).squeeze(1),) if gender else ())
            return (self._d_head(h, e, s), *c)
        return (self.d_logit(f, e, s), *(self.c_and_gender(f) if gender else (self.c_logit(f),)))

    def d_parameters(self) -> list[nn.Parameter]:
        proj = [p for m in (self.proj, self.proj_g) if m is not None for p in m.parameters()]
        return list(self.trunk_d.parameters()) + list(self.head_d.parameters()) + proj

    def c_parameters(self) -> list[nn.Parameter]:
        head_g = list(self.head_g.parameters()) if self.head_g is not None else []
        return list(self._trunk_c().parameters()) + list(self.head_c.parameters()) + head_g

    def forward(self, f: torch.Tensor, mode: str = "both", e: torch.Tensor | None = None,
                s: torch.Tensor | None = None):
        """mode "d": (B,) logits; "c": (B, k) logits; "both": the pair; "cg": (identity, gender) logits; "all": the
        triple (d, c, gender) (callable through DDP for every phase). ``s``: (B,) gender signs for D's gender
        projection."""
        if mode == "d":
            return self.d_logit(f, e, s)
        if mode == "c":
            return self.c_logit(f)
        if mode == "cg":
            return self.c_and_gender(f)
        if mode == "all":
            return self.all(f, e, s)
        return self.both(f, e, s)


class FaceClassifier(nn.Module):
    """A trunk + linear head classifier of real faces (the evaluation's gender classifier uses F_d's architecture)."""

    def __init__(self, n_classes: int, channels: Sequence[int] = (32, 64, 128, 256, 512), out_dim: int = 64,
                 kernel: int = 3, slope: float = 0.2):
        super().__init__()
        self.trunk = FaceTrunk(channels, out_dim, kernel, slope)
        self.head = nn.Linear(out_dim, n_classes)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """(B, 3, 64, 64) -> (B, n_classes) logits."""
        return self.head(self.trunk(f))


def dcgan_init(module: nn.Module, std: float = 0.02) -> nn.Module:
    """DCGAN initialisation (Radford et al., the thesis's ref. [71] for the GAN settings): conv / transposed-conv /
    linear weights ~ N(0, std), biases 0. Returns ``module``."""
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


class GeneratorEMA:
    """Exponential moving average of a generator's weights (StyleGAN2): after each G step,
    ``ema = beta_t * ema + (1 - beta_t) * g`` for parameters (buffers copied), beta_t = min(beta, (1 + t) / (10 + t))
    so early averages do not drag the random initialisation along. ``module`` is the averaged copy (eval mode)."""

    def __init__(self, module: nn.Module, ema: nn.Module, beta: float):
        self.source, self.module, self.beta = module, ema, beta
        self.module.load_state_dict(module.state_dict())
        self.module.eval().requires_grad_(False)

    def rate(self, step: int) -> float:
        return min(self.beta, (1.0 + step) / (10.0 + step))

    @torch.no_grad()
    def update(self, step: int) -> None:
        b = self.rate(step)
        for pe, p in zip(self.module.parameters(), self.source.parameters()):
            pe.lerp_(p.detach(), 1.0 - b)
        for be, bs in zip(self.module.buffers(), self.source.buffers()):
            be.copy_(bs)


AUGMENTS = ("translation", "color", "cutout", "blur", "noise")


def diff_augment(x: torch.Tensor, policy: Sequence[str], gen: torch.Generator, tile: int = 1) -> torch.Tensor:
    """Differentiable augmentation (Zhao et al. 2020): (B, 3, H, W) -> (B, 3, H, W), gradients flow to ``x``.

    ``policy``: any of ``AUGMENTS`` (colour: brightness +-0.5, saturation x[0, 2], contrast x[0.5, 1.5]; translation:
    shifts up to 1/8 of the size with zero fill; cutout: one zeroed square of half the size; blur: a blend, weight
    U[0, 1], towards the image average-pooled 4x4 and bilinearly upsampled; noise: + N(0, s^2) pixel noise with
    s ~ U[0, 0.3], the last two not in Zhao et al.: they hide high-frequency texture from a critic). Parameters are drawn
    from ``gen`` for B / tile samples and repeated ``tile`` times, so with ``tile=2`` on cat([real, fake]) sample i of
    real and of fake get the same transform."""
    b, _, h, w = x.shape
    n = b // tile
    dev = x.device

    def draw(*shape):
        return torch.rand(n, *shape, generator=gen).repeat(tile, *([1] * len(shape))).to(dev)

    if "color" in policy:
        x = x + (draw(1, 1, 1) - 0.5)
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (draw(1, 1, 1) * 2) + mean
        mean = x.mean(dim=[1, 2, 3], keepdim=True)
        x = (x - mean) * (draw(1, 1, 1) + 0.5) + mean
    if "translation" in policy:
        sh, sw = h // 8, w // 8
        dy = (draw(1, 1) * (2 * sh + 1)).long() - sh                      # (B, 1, 1) in [-sh, sh]
        dx = (draw(1, 1) * (2 * sw + 1)).long() - sw
        yy = torch.arange(h, device=dev)[None, :, None] - dy               # (B, H, 1)
        xx = torch.arange(w, device=dev)[None, None, :] - dx               # (B, 1, W)
        valid = ((yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)).to(x.dtype)  # (B, H, W)
        idx = (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).flatten(1)     # (B, H*W)
        x = x.flatten(2).gather(2, idx[:, None, :].expand(b, x.shape[1], -1)).reshape_as(x) * valid[:, None]
    if "blur" in policy:
        low = F.interpolate(F.avg_pool2d(x, 4), size=(h, w), mode="bilinear", align_corners=False)
        x = x + draw(1, 1, 1) * (low - x)
    if "noise" in policy:
        x = x + 0.3 * draw(1, 1, 1) * torch.randn(n, *x.shape[1:], generator=gen).repeat(tile, 1, 1, 1).to(dev)
    if "cutout" in policy:
        ch, cw = h // 2, w // 2
        cy = (draw(1, 1) * (h + 1 - ch % 2)).long() - ch // 2
        cx = (draw(1, 1) * (w + 1 - cw % 2)).long() - cw // 2
        yy = torch.arange(h, device=dev)[None, :, None]
        xx = torch.arange(w, device=dev)[None, None, :]
        keep = ~((yy >= cy) & (yy < cy + ch) & (xx >= cx) & (xx < cx + cw))
        x = x * keep[:, None].to(x.dtype)
    return x
