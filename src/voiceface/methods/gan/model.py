"""Networks of the voice-to-face GAN (Sec. 3.2, Table 3.2). Pure modules: no training code here.

* ``VoiceEmbedNet`` F_e: 5 Conv1d (k3, s2, p1) over a 64-bin log-mel spectrogram, average pooled over time and
  L2-normalised to a 64-d embedding.
* ``Generator`` F_g: 6 ConvTranspose2d from a 64x1x1 embedding to a 3x64x64 face in (about) [-1, 1].
* ``FaceCritics``: the discriminator F_d (real/fake logit) and the identity classifier F_c (k logits), each a
  convolutional trunk (3x64x64 -> 64x1x1) plus a fully connected head; the trunk is shared when ``share_trunk``.

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

    def __init__(self, voice: VoiceEmbedNet, head: SpeakerHead):
        super().__init__()
        self.voice, self.head = voice, head

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, mel_bins, T) -> (B, n_speakers) logits."""
        return self.head(self.voice.pooled(mel))


class Generator(nn.Module):
    """F_g (Table 3.2, right): (B, embed_dim) or (B, embed_dim, 1, 1) -> (B, 3, 64, 64).

    ConvT(64->1024, k4 s1 p0) 4x4, ReLU; ConvT(1024->512, k4 s2 p1) 8x8, ReLU; ->256 16x16, ReLU; ->128 32x32, ReLU;
    ->64 64x64, ReLU; ConvT(64->3, k1 s1 p0) 64x64 (no output non-linearity, as released; clamp to [-1, 1] to view).
    """

    def __init__(self, embed_dim: int = 64, channels: Sequence[int] = (1024, 512, 256, 128, 64), out_channels: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.ConvTranspose2d(embed_dim, channels[0], 4, 1, 0, bias=True), nn.ReLU(inplace=True)]
        for cin, cout in zip(channels[:-1], channels[1:]):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=True), nn.ReLU(inplace=True)]
        layers.append(nn.ConvTranspose2d(channels[-1], out_channels, 1, 1, 0, bias=True))
        self.net = nn.Sequential(*layers)
        self.embed_dim = embed_dim

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        """(B, embed_dim[, 1, 1]) -> (B, 3, 64, 64)."""
        if e.dim() == 2:
            e = e[:, :, None, None]                # (B, 64, 1, 1)
        return self.net(e)


class FaceTrunk(nn.Module):
    """Convolutional trunk of F_d / F_c (Table 3.2, bottom): (B, 3, 64, 64) -> (B, out_dim).

    Conv 1x1 (3->32) 64x64, then four Conv k/2,1 to 32x32, 16x16, 8x8, 4x4 (32->64->128->256->512), then Conv 4x4/1,0
    to out_dim x 1 x 1; every conv followed by LeakyReLU.
    """

    def __init__(self, channels: Sequence[int] = (32, 64, 128, 256, 512), out_dim: int = 64, kernel: int = 3,
                 slope: float = 0.2):
        super().__init__()
        pad = 1 if kernel in (3, 4) else kernel // 2
        layers: list[nn.Module] = [nn.Conv2d(3, channels[0], 1, 1, 0), nn.LeakyReLU(slope, inplace=True)]
        for cin, cout in zip(channels[:-1], channels[1:]):
            layers += [nn.Conv2d(cin, cout, kernel, 2, pad), nn.LeakyReLU(slope, inplace=True)]
        layers += [nn.Conv2d(channels[-1], out_dim, 4, 1, 0), nn.LeakyReLU(slope, inplace=True)]
        self.net = nn.Sequential(*layers)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """(B, 3, 64, 64) -> (B, out_dim)."""
        return self.net(f).flatten(1)              # (B, 64, 1, 1) -> (B, 64)


class FaceCritics(nn.Module):
    """The discriminator F_d and identity classifier F_c (Table 3.2), trunk shared or not.

    ``d_logit(f)``: (B, 3, 64, 64) -> (B,) real/fake logit (sigmoid gives F_d).
    ``c_logit(f)``: (B, 3, 64, 64) -> (B, k) identity logits (softmax gives F_c).
    ``d_parameters()`` / ``c_parameters()``: what the D step / C step of Algorithm 1 update (the shared trunk is in both).
    """

    def __init__(self, n_identities: int, channels: Sequence[int] = (32, 64, 128, 256, 512), out_dim: int = 64,
                 kernel: int = 3, slope: float = 0.2, share_trunk: bool = True):
        super().__init__()
        self.share_trunk = share_trunk
        self.trunk_d = FaceTrunk(channels, out_dim, kernel, slope)
        self.trunk_c = None if share_trunk else FaceTrunk(channels, out_dim, kernel, slope)
        self.head_d = nn.Linear(out_dim, 1)
        self.head_c = nn.Linear(out_dim, n_identities)

    def _trunk_c(self) -> FaceTrunk:
        return self.trunk_d if self.trunk_c is None else self.trunk_c

    def d_logit(self, f: torch.Tensor) -> torch.Tensor:
        return self.head_d(self.trunk_d(f)).squeeze(1)          # (B,)

    def c_logit(self, f: torch.Tensor) -> torch.Tensor:
        return self.head_c(self._trunk_c()(f))                  # (B, k)

    def both(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) real/fake logits and (B, k) identity logits, running a shared trunk once."""
        if self.trunk_c is None:
            h = self.trunk_d(f)
            return self.head_d(h).squeeze(1), self.head_c(h)
        return self.d_logit(f), self.c_logit(f)

    def d_parameters(self) -> list[nn.Parameter]:
        return list(self.trunk_d.parameters()) + list(self.head_d.parameters())

    def c_parameters(self) -> list[nn.Parameter]:
        return list(self._trunk_c().parameters()) + list(self.head_c.parameters())

    def forward(self, f: torch.Tensor, mode: str = "both"):
        """mode "d": (B,) logits; "c": (B, k) logits; "both": the pair (callable through DDP for every phase)."""
        if mode == "d":
            return self.d_logit(f)
        if mode == "c":
            return self.c_logit(f)
        return self.both(f)


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
