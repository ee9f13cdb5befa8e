"""Eigenface shape space and AM-guided shape fitting (Sec. 5.2.3, Eq. 5.7).

* :class:`EigenFaces`: PCA of a set of flattened shapes B = [b_1, b_2, ...] (the eigenface projection P of
  Sec. 5.2.3), with ``shape(beta) = mean + P beta`` and ``P = U diag(sigma)`` so that beta is in std units.
* :func:`fit_ams`: Eq. 5.7, ``beta* = argmin lambda |beta|^2 + sum_k z_k (Q_k(P beta) - m_k)^2``, solved for many
  targets at once by damped Gauss-Newton (Levenberg-Marquardt) on the 65 landmark vertices only; residuals are
  divided by per-AM scales (the thesis normalises AMs to zero mean and unit variance), by default the AMs' standard
  deviations under the space's own prior.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from .anthropometry import NUM_AMS, measure
from .landmarks import NUM_AM_LANDMARKS


class EigenFaces:
    """PCA ("eigenfaces") of shapes: ``mean`` (V, 3), ``basis`` (V*3, k) orthonormal, ``std`` (k,).

    Build with :meth:`fit`; a MorphableModel's identity space has the same interface (``shape``, ``mean``,
    ``id_basis``/``basis``, ``num_components``), so either can be the space P of Eq. 5.7.
    """

    def __init__(self, mean: torch.Tensor, basis: torch.Tensor, std: torch.Tensor):
        self.mean, self.basis, self.std = mean, basis, std

    @classmethod
    def fit(cls, shapes: torch.Tensor, k: int) -> "EigenFaces":
        """PCA of shapes (N, V, 3) keeping ``k`` components (k <= N - 1); SVD of the centred (N, 3V) matrix, which is
        the eigenface trick of Sec. 5.2.3 (3V >> N)."""
        x = torch.as_tensor(shapes, dtype=torch.float32)
        n = x.shape[0]
        if n < 2:
            raise ValueError("EigenFaces.fit needs at least 2 shapes")
        k = int(min(k, n - 1))
        mean = x.mean(0)
        d = (x - mean).reshape(n, -1)                                         # (N, 3V)
        _, s, vh = torch.linalg.svd(d.double(), full_matrices=False)
        basis = vh[:k].T                                                      # (3V, k)
        sign = torch.sign(basis.gather(0, basis.abs().argmax(0, keepdim=True))).squeeze(0)
        basis = basis * sign
        std = s[:k] / (n - 1) ** 0.5
        return cls(mean, basis.float(), std.float())

    @property
    def num_components(self) -> int:
        return self.basis.shape[1]

    def shape(self, coeffs: torch.Tensor) -> torch.Tensor:
        """coeffs (B, k) in std units -> shapes (B, V, 3): mean + P beta."""
        c = torch.as_tensor(coeffs, dtype=self.basis.dtype, device=self.basis.device)
        return self.mean + ((c * self.std) @ self.basis.T).view(c.shape[0], -1, 3)

    def project(self, shapes: torch.Tensor) -> torch.Tensor:
        """shapes (B, V, 3) -> coeffs (B, k) in std units (orthogonal projection)."""
        d = (torch.as_tensor(shapes, dtype=self.basis.dtype) - self.mean).reshape(shapes.shape[0], -1)
        return (d @ self.basis) / self.std.clamp_min(1e-12)

    def to(self, device) -> "EigenFaces":
        return EigenFaces(self.mean.to(device), self.basis.to(device), self.std.to(device))


def _linear_space(space) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean (V, 3), unit basis (V*3, k), std (k,)) of an EigenFaces or a MorphableModel (identity part)."""
    if isinstance(space, EigenFaces):
        return space.mean, space.basis, space.std
    if hasattr(space, "id_basis"):
        return space.mean, space.id_basis, space.id_std
    raise TypeError("space must be an EigenFaces or a MorphableModel")


@dataclass
class FitResult:
    """Output of :func:`fit_ams`: coeffs (B, k) in std units, shapes (B, V, 3), ams (B, A) of the fitted shapes,
    loss (B,) the final Eq. 5.7 objective (with scaled residuals), iterations run."""
    coeffs: torch.Tensor
    shapes: torch.Tensor
    ams: torch.Tensor
    loss: torch.Tensor
    iterations: int


def am_prior_scale(space, am_landmarks, n: int = 1024, seed: int = 0) -> torch.Tensor:
    """Standard deviation (A,) of each AM over ``n`` shapes drawn from the space's Gaussian prior (coeffs ~ N(0, I))."""
    mean, basis, std = _linear_space(space)
    idx = torch.as_tensor(am_landmarks, device=mean.device).long()
    rows = (idx[:, None] * 3 + torch.arange(3, device=mean.device)).reshape(-1)
    g = torch.Generator().manual_seed(seed)
    c = torch.randn(n, basis.shape[1], generator=g).to(mean.device)
    lm = mean[idx] + ((c * std) @ basis[rows].T).view(n, NUM_AM_LANDMARKS, 3)
    return measure(lm).std(0).clamp_min(1e-6)


def fit_ams(space, am_landmarks, targets: torch.Tensor, mask=None, *, lam: float = 0.05, scale=None,
            iterations: int = 30, init=None, tol: float = 1e-7) -> FitResult:
    """Eq. 5.7 for a batch of targets: find beta (B, k) minimising
    ``lam * |beta|^2 + sum_k z_k ((Q_k(mean + P beta) - m_k) / s_k)^2``.

    Args:
        space: :class:`EigenFaces` or a MorphableModel (its identity space); beta is in std units.
        am_landmarks: (65,) vertex indices of the Fig. 5.2 landmarks in the space's mesh.
        targets: (B, A) target AMs (``AM_NAMES`` order; entries where the mask is 0 are ignored, NaN allowed there).
        mask: indicators z, (A,) or (B, A) bool/0-1 (default: all AMs).
        lam: ridge weight lambda.
        scale: (A,) per-AM scales s_k (default :func:`am_prior_scale`).
        iterations: Levenberg-Marquardt iterations; init: (B, k) starting coefficients (default zeros).
    Returns:
        :class:`FitResult`. Vectorised over targets: one batched Jacobian (B, A, k) and solve per iteration.
    """
    mean, basis, std = _linear_space(space)
    dev, dt = mean.device, torch.float64
    tgt = torch.as_tensor(targets, device=dev, dtype=dt)
    if tgt.ndim == 1:
        tgt = tgt.unsqueeze(0)
    if tgt.shape[-1] != NUM_AMS:
        raise ValueError(f"targets must be (B, {NUM_AMS}), got {tuple(tgt.shape)}")
    b, k = tgt.shape[0], basis.shape[1]
    z = torch.ones(NUM_AMS, device=dev, dtype=dt) if mask is None else torch.as_tensor(mask, device=dev).to(dt)
    z = z.expand(b, NUM_AMS)
    tgt = torch.where(z > 0, tgt, torch.zeros_like(tgt))
    s = am_prior_scale(space, am_landmarks) if scale is None else torch.as_tensor(scale)
    s = s.to(device=dev, dtype=dt)
    idx = torch.as_tensor(am_landmarks, device=dev).long()
    rows = (idx[:, None] * 3 + torch.arange(3, device=dev)).reshape(-1)
    p_l = (basis[rows].to(dt) * std.to(dt))                                   # (65*3, k)
    m_l = mean[idx].to(dt)                                                    # (65, 3)

    def residual(beta):                                                       # beta (k,) -> (A,)
        lm = m_l + (p_l @ beta).view(NUM_AM_LANDMARKS, 3)
        return measure(lm) / s

    jac = torch.func.vmap(torch.func.jacfwd(residual))
    res_b = torch.func.vmap(residual)
    tgt_s = tgt / s

    def objective(beta):
        r = (res_b(beta) - tgt_s) * z
        return (r ** 2).sum(-1) + lam * (beta ** 2).sum(-1)

    beta = torch.zeros(b, k, device=dev, dtype=dt) if init is None else torch.as_tensor(init, device=dev, dtype=dt)
    mu = torch.full((b,), 1e-3, device=dev, dtype=dt)
    eye = torch.eye(k, device=dev, dtype=dt)
    loss = objective(beta)
    it = 0
    for it in range(1, iterations + 1):
        with warnings.catch_warnings():
            # torch's first forward-mode AD call imports its JVP decompositions, which use torch.jit.script
            # internally: a DeprecationWarning from inside torch, not from this code (jacrev would avoid it but
            # is ~1.8x slower here and changes the iterates)
            warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=DeprecationWarning)
            j = jac(beta) * z[..., None]                                      # (B, A, k)
        r = (res_b(beta) - tgt_s) * z                                         # (B, A)
        jtj = j.transpose(1, 2) @ j + lam * eye                               # (B, k, k)
        grad = (j.transpose(1, 2) @ r[..., None]).squeeze(-1) + lam * beta    # (B, k)
        damp = mu[:, None, None] * torch.diagonal(jtj, dim1=1, dim2=2).diag_embed()
        step = torch.linalg.solve(jtj + damp + 1e-12 * eye, -grad)
        new_beta = beta + step
        new_loss = objective(new_beta)
        better = new_loss < loss
        beta = torch.where(better[:, None], new_beta, beta)
        rel = (loss - torch.where(better, new_loss, loss)) / loss.clamp_min(1e-30)
        loss = torch.where(better, new_loss, loss)
        mu = torch.where(better, mu * 0.3, mu * 10.0).clamp(1e-9, 1e9)
        tiny_step = step.norm(dim=1) < 1e-7 * (1.0 + beta.norm(dim=1))
        if bool(((better & (rel < tol)) | tiny_step).all()):
            break
    beta32 = beta.to(basis.dtype)
    shapes = mean + ((beta32 * std) @ basis.T).view(b, -1, 3)
    return FitResult(beta32, shapes, measure(shapes[:, idx]), loss.to(basis.dtype), it)


def per_vertex_error(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Euclidean per-vertex error (B, V) between shapes pred and true (B, V, 3) (the error maps of Fig. 5.8)."""
    return (torch.as_tensor(pred) - torch.as_tensor(true)).norm(dim=-1)
