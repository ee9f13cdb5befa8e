"""SfV losses: Eq. 5.2 (Gaussian negative log-likelihood) or Eq. 5.1 (MSE), and the segment fusion of Eq. 5.3.

``SfVLoss`` has one named phase, ``estimator_step``: forward all M stacked estimators on their own minibatches, sum
the per-network mean losses (so every network receives exactly the gradient it would get alone), clip each
network's gradient norm separately, and take one SGD step (forward under the run's ``precision``, see
``engine.precision``).
"""
from __future__ import annotations

import torch

from ...engine import dist
from ...engine.precision import Precision
from .model import AMNet


def gaussian_nll(mean: torch.Tensor, var: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 5.2 per element: (F(v) - m)^2 / G(v) + ln G(v). All args broadcastable, e.g. (B, M, K); same shape out."""
    return (mean - target) ** 2 / var + torch.log(var)


def squared_error(mean: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 5.1 per element: (F(v) - m)^2 (Eq. 5.2 with G == 1)."""
    return (mean - target) ** 2


def fuse_segments(mean: torch.Tensor, var: torch.Tensor, valid: torch.Tensor | None = None, dim: int = 0
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 5.3: inverse-variance fusion of L segment predictions, with the calibrated uncertainty L * w.

    Args:
        mean: F(v^(l)) with the L segments along ``dim``, e.g. (L, ..., K).
        var: G(v^(l)), same shape, > 0.
        valid: optional bool mask of real segments (padding excluded), same shape or broadcastable.
    Returns:
        m_hat (..., K) = sum_l (w / G_l) F_l with 1/w = sum_l 1/G_l, and w_hat = L * w (L = valid segments).
    """
    prec = 1.0 / var
    if valid is not None:
        prec = prec * valid.to(prec.dtype)
        n = valid.to(prec.dtype).expand_as(prec).sum(dim)
    else:
        n = torch.full_like(prec.sum(dim), prec.shape[dim])
    w = 1.0 / prec.sum(dim)
    m_hat = w * (prec * mean).sum(dim)
    return m_hat, n * w


class SfVLoss:
    """The training phase of the stacked AM estimators (Sec. 5.2.1)."""

    phases = ("estimator_step",)

    def __init__(self, model: AMNet, optimizer: torch.optim.Optimizer, uncertainty: bool = True,
                 grad_clip: float = 0.0, precision: Precision | None = None):
        self.model, self.optimizer = model, optimizer          # model: an AMNet, or one wrapped by DDP
        self.uncertainty, self.grad_clip = uncertainty, grad_clip
        self.precision = precision or Precision.resolve("fp32", "cpu")

    def per_net(self, x: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """Mean loss of each network. x: (B, M, n_mels, T); target: (B, M, K); weight: optional (M, K) AM mask.

        Returns (M,) losses: Eq. 5.2 (or 5.1 without uncertainty) averaged over the batch and the AMs.
        """
        mean, var = self.model(x)                                               # (B, M, K) each
        per = gaussian_nll(mean, var, target) if self.uncertainty else squared_error(mean, target)
        if weight is None:
            return per.mean(dim=(0, 2))                                         # (M,)
        return (per * weight).sum(dim=(0, 2)) / (weight.sum(1) * per.shape[0]).clamp_min(1)

    def _clip_per_net(self) -> torch.Tensor:
        """Scale each network's gradient so its L2 norm is at most ``grad_clip``; return the (M,) norms."""
        m = dist.unwrap(self.model).n_nets
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        sq = torch.stack([g.reshape(m, -1).pow(2).sum(1) for g in grads]).sum(0)   # (M,)
        norm = sq.sqrt()
        if self.grad_clip > 0:
            scale = (self.grad_clip / (norm + 1e-6)).clamp(max=1.0)
            for g in grads:
                g.mul_(scale.reshape(m, *([1] * (g.ndim - 1))).repeat_interleave(g.shape[0] // m, 0))
        return norm

    def estimator_step(self, x: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
                       ) -> dict[str, float]:
        """One SGD step of all M networks. x: (B, M, n_mels, T); target: (B, M, K) normalised AMs."""
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        prec = self.precision
        with prec.autocast():
            losses = self.per_net(x, target, weight).float()                    # (M,)
        prec.backward(losses.sum())
        prec.unscale(self.optimizer)
        norm = self._clip_per_net()
        prec.step(self.optimizer)
        prec.update()
        return {"loss/nll" if self.uncertainty else "loss/mse": losses.mean().item(),
                "grad_norm": norm.mean().item()}
