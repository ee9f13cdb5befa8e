"""DIMNet networks (Sec. 2.2.2, Table 2.2, Fig. 2.2): voice and face embedding CNNs and covariate classifiers.

* ``VoiceNet`` F_v: 1D convolutions along time over 64-band log-mel, averaged over time: (B, 64, T) -> (B, d).
* ``FaceNet`` F_f: 2D convolutions over aligned faces, averaged over space: (B, 3, S, S) -> (B, d).
* ``CovariateHeads`` {H_C}: one linear softmax layer per covariate, shared by both modalities: (B, d) -> logits.

Pure modules: no training code here (see ``loss.py`` and ``train.py``).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn


def _conv(dims: int, c_in: int, c_out: int, stride: int) -> nn.Sequential:
    """conv(3, c_out) with stride ``stride``, padding 1, then BN and ReLU (1D or 2D)."""
    Conv = nn.Conv1d if dims == 1 else nn.Conv2d
    BN = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
    return nn.Sequential(Conv(c_in, c_out, 3, stride, 1, bias=False), BN(c_out), nn.ReLU(inplace=True))


class _Residual(nn.Module):
    """The bracketed pair of Table 2.2: x + conv(conv(x)) (3-wide kernels, stride 1), then ReLU."""

    def __init__(self, dims: int, width: int):
        super().__init__()
        Conv = nn.Conv1d if dims == 1 else nn.Conv2d
        BN = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
        self.body = nn.Sequential(_conv(dims, width, width, 1), Conv(width, width, 3, 1, 1, bias=False), BN(width))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


class _Trunk(nn.Module):
    """Table 2.2 column: per stage conv/2 -> ``blocks`` residual pairs -> conv/1; then conv(3, d)/2 and mean."""

    def __init__(self, dims: int, c_in: int, widths: Sequence[int], embed_dim: int, blocks: int):
        super().__init__()
        layers: list[nn.Module] = []
        for w in widths:
            layers.append(_conv(dims, c_in, w, 2))
            layers.extend(_Residual(dims, w) for _ in range(blocks))
            layers.append(_conv(dims, w, w, 1))
            c_in = w
        self.features = nn.Sequential(*layers)
        Conv = nn.Conv1d if dims == 1 else nn.Conv2d
        self.project = Conv(c_in, embed_dim, 3, 2, 1)  # final (3, d)/2 layer, linear: embeddings may be negative
        self.embed_dim = embed_dim
        self.pool_dims = tuple(range(2, 2 + dims))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.features(x)).mean(dim=self.pool_dims)


class VoiceNet(nn.Module):
    """F_v(v; theta_v): (B, mel_bins, T) normalised log-mel -> (B, d) (Table 2.2 voice column; T >= 1).

    The time axis shrinks by 2 in each of the 5 strided layers: (B, 64, T) -> (B, w1, T/2) -> ... ->
    (B, d, T/32) -> mean over time -> (B, d).
    """

    def __init__(self, widths: Sequence[int] = (256, 384, 576, 864), embed_dim: int = 64, mel_bins: int = 64,
                 blocks: int = 1):
        super().__init__()
        self.trunk = _Trunk(1, mel_bins, widths, embed_dim, blocks)
        self.embed_dim = embed_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)  # (B, d)


class FaceNet(nn.Module):
    """F_f(f; theta_f): (B, 3, S, S) faces in [-1, 1] -> (B, d) (Table 2.2 face column).

    (B, 3, 128, 128) -> (B, w1, 64, 64) -> ... -> (B, w4, 8, 8) -> (B, d, 4, 4) -> spatial mean -> (B, d).
    """

    def __init__(self, widths: Sequence[int] = (64, 128, 256, 512), embed_dim: int = 64, blocks: int = 1):
        super().__init__()
        self.trunk = _Trunk(2, 3, widths, embed_dim, blocks)
        self.embed_dim = embed_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)  # (B, d)


class CovariateHeads(nn.Module):
    """{H_C(x; phi_C)}: one single-layer softmax classifier per covariate, modality-agnostic (Eq. 2.1).

    ``classes``: {covariate name: number of values}; forward (B, d) -> {name: (B, C_name) logits}.
    """

    def __init__(self, classes: Mapping[str, int], embed_dim: int = 64):
        super().__init__()
        self.heads = nn.ModuleDict({name: nn.Linear(embed_dim, n) for name, n in classes.items()})

    def forward(self, emb: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: head(emb) for name, head in self.heads.items()}


def build_networks(net_cfg, classes: Mapping[str, int]) -> tuple[VoiceNet, FaceNet, CovariateHeads]:
    """The three DIMNet parts from a ``NetConfig`` and the class count per trained covariate."""
    voice = VoiceNet(net_cfg.voice_widths, net_cfg.embed_dim, net_cfg.mel_bins, net_cfg.blocks)
    face = FaceNet(net_cfg.face_widths, net_cfg.embed_dim, net_cfg.blocks)
    return voice, face, CovariateHeads(classes, net_cfg.embed_dim)
