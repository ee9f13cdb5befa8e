"""AM estimators F_k (mean) and G_k (variance) of Table 5.2, as M independent networks evaluated as one.

Every repeat of Algorithm 2 (and, with ``per_am``, every AM; and every gender) is an independent network. They are
trained batched: the M networks are laid side by side as the groups of grouped 1D convolutions, so one forward pass
runs all of them while each group only ever sees its own channels. BatchNorm over the M * C channels keeps separate
statistics per channel, hence per network. Parameters are stored network-major along dim 0 (``M * C_out``), so
``unstack_state`` / ``stack_states`` convert between one stacked model and M single models exactly.

Architecture (Table 5.2, per network): four stages, each a strided convolution (3, C)/2,1 + BN + ReLU followed by a
residual block [(3, C)/1,1 + BN + ReLU, (3, C)/1,1 + BN] + shortcut + ReLU, C = 64, 96, 144, 216; then average pooling
over time and two linear heads (the table's 1-output layers): F (mean) and G (variance, exp activation).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn


class _GConvBN(nn.Module):
    """Grouped Conv1d (M groups) + BatchNorm over M * C_out channels."""

    def __init__(self, groups: int, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv = nn.Conv1d(groups * c_in, groups * c_out, 3, stride=stride, padding=1, groups=groups, bias=False)
        self.bn = nn.BatchNorm1d(groups * c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:   # (B, M*C_in, T) -> (B, M*C_out, T')
        return self.bn(self.conv(x))


class _Stage(nn.Module):
    """(3, C)/2,1 strided convolution, then one residual block of two (3, C)/1,1 convolutions (Table 5.2)."""

    def __init__(self, groups: int, c_in: int, c_out: int):
        super().__init__()
        self.down = _GConvBN(groups, c_in, c_out, 2)
        self.res1 = _GConvBN(groups, c_out, c_out, 1)
        self.res2 = _GConvBN(groups, c_out, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:   # (B, M*C_in, T) -> (B, M*C_out, ceil(T/2))
        x = torch.relu(self.down(x))
        return torch.relu(x + self.res2(torch.relu(self.res1(x))))


class AMNet(nn.Module):
    """M independent AM estimators (Table 5.2) run as one module.

    Args:
        n_nets: M, the number of independent networks (genders x repeats [x AMs when ``per_am``]).
        n_out: outputs per network (K AMs for one network for all AMs; 1 for one network per AM).
        n_mels, channels: input bands and the backbone widths.
        uncertainty: build the variance head G (Eq. 5.2); without it G == 1 (Eq. 5.1).

    ``forward(x)`` takes x (B, M, n_mels, T) -- network m reads x[:, m] -- and returns
    mean (B, M, n_out) and variance (B, M, n_out) (ones without the variance head).
    """

    def __init__(self, n_nets: int, n_out: int, n_mels: int = 64, channels: Sequence[int] = (64, 96, 144, 216),
                 uncertainty: bool = True):
        super().__init__()
        self.n_nets, self.n_out, self.n_mels, self.uncertainty = n_nets, n_out, n_mels, uncertainty
        widths = (n_mels, *channels)
        self.stages = nn.ModuleList(_Stage(n_nets, a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.head_f = nn.Conv1d(n_nets * widths[-1], n_nets * n_out, 1, groups=n_nets)
        self.head_g = (nn.Conv1d(n_nets * widths[-1], n_nets * n_out, 1, groups=n_nets) if uncertainty else None)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, m, f, t = x.shape                                  # (B, M, n_mels, T)
        h = x.reshape(b, m * f, t)                            # (B, M*n_mels, T)
        for stage in self.stages:
            h = stage(h)                                      # (B, M*C, T/2^s)
        h = h.mean(dim=2, keepdim=True)                       # (B, M*216, 1) average pooling over time
        mean = self.head_f(h).reshape(b, m, self.n_out)       # (B, M, n_out)  F
        if self.head_g is None:
            return mean, torch.ones_like(mean)
        # exp activation (Table 5.2); clamped so an untrained head cannot overflow
        var = torch.exp(self.head_g(h).clamp(-12.0, 12.0)).reshape(b, m, self.n_out)   # (B, M, n_out)  G
        return mean, var


def unstack_state(state: Mapping[str, torch.Tensor], n_nets: int, index: int) -> dict[str, torch.Tensor]:
    """The state dict of network ``index`` of a stacked ``AMNet`` (as an ``AMNet`` with ``n_nets=1`` stores it)."""
    out = {}
    for k, v in state.items():
        out[k] = v.clone() if v.ndim == 0 else v.reshape(n_nets, -1, *v.shape[1:])[index].clone()
    return out


def stack_states(states: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Inverse of ``unstack_state``: M single-network state dicts -> one stacked state dict (network-major)."""
    return {k: (states[0][k].clone() if states[0][k].ndim == 0 else torch.cat([s[k] for s in states], dim=0))
            for k in states[0]}


def where_nets(mask: torch.Tensor, new: Mapping[str, torch.Tensor], old: Mapping[str, torch.Tensor]
               ) -> dict[str, torch.Tensor]:
    """Per-network choice between two stacked states: network m takes ``new`` where mask[m] (M,) is True."""
    n = mask.numel()
    out = {}
    for k, v in new.items():
        if v.ndim == 0:
            out[k] = v.clone()
            continue
        m = mask.reshape(n, *([1] * v.ndim)).to(v.device)
        out[k] = torch.where(m, v.reshape(n, -1, *v.shape[1:]), old[k].reshape(n, -1, *v.shape[1:])).reshape(v.shape)
    return out
