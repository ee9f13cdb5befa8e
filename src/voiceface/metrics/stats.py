"""Statistics of Algorithm 2 (Sec. 5.2.2): error ratios against a chance-level estimator and one-sided t bounds.

All functions are vectorised over repeats (N) and AMs (K) and work on numpy arrays.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


def error_ratio(pred: np.ndarray, target: np.ndarray, chance: np.ndarray, keep: np.ndarray | None = None
                ) -> np.ndarray:
    """Eq. 5.4: E_k / E_k^C per repeat and AM.

    Args:
        pred: predicted AMs on D_v2, (N, n, K) (n voices of each repeat's D_v2).
        target: true AMs, (N, n, K).
        chance: C_k, the training-set mean of each AM per repeat, (N, K) (broadcast over the n voices).
        keep: optional bool mask (N, n, K) of the voices that count (e.g. after uncertainty filtering).
    Returns:
        (N, K) ratios E_k / E_k^C.
    """
    keep = np.ones(pred.shape, bool) if keep is None else np.broadcast_to(keep, pred.shape)
    err = np.where(keep, (pred - target) ** 2, 0.0).sum(1)                   # (N, K)
    err_c = np.where(keep, (chance[:, None, :] - target) ** 2, 0.0).sum(1)  # (N, K)
    return err / np.maximum(err_c, 1e-12)


def keep_least_uncertain(uncertainty: np.ndarray, drop_frac: float, valid: np.ndarray | None = None) -> np.ndarray:
    """Mask (N, n, K) keeping, per repeat and AM, the voices with the lowest uncertainty after dropping the
    ``drop_frac`` most uncertain ones (Fig. 5.3's 75% / 50% bars). uncertainty: (N, n, K) calibrated w_hat."""
    u = np.where(valid, uncertainty, np.inf) if valid is not None else uncertainty
    n_valid = (np.isfinite(u)).sum(1, keepdims=True)                         # (N, 1, K)
    n_keep = np.maximum(np.round(n_valid * (1.0 - drop_frac)).astype(int), 1)
    rank = np.argsort(np.argsort(u, axis=1, kind="stable"), axis=1, kind="stable")   # (N, n, K) rank by uncertainty
    return rank < n_keep


@dataclass(frozen=True)
class RatioBounds:
    """Per-AM summary of N error ratios: mean, std (ddof 1), CI_l, CI_u (Eq. 5.5) and indicator z (Eq. 5.6)."""

    mean: np.ndarray
    std: np.ndarray
    ci_l: np.ndarray
    ci_u: np.ndarray
    z: np.ndarray
    n: int
    alpha: float


def ratio_bounds(ratios: np.ndarray, alpha: float = 0.05) -> RatioBounds:
    """Eq. 5.5 / 5.6 over the repeats. ratios: (N, K) -> per-AM (K,) bounds.

    CI_{l,u} = mu -/+ t_{1-alpha, N-1} sigma / sqrt(N) (sigma: sample std, ddof 1); z = 1 where CI_u < 1.
    """
    ratios = np.asarray(ratios, dtype=np.float64)
    n = ratios.shape[0]
    if n < 2:
        raise ValueError("Eq. 5.5 needs at least 2 repeats")
    mu = ratios.mean(0)
    sd = ratios.std(0, ddof=1)
    half = stats.t.ppf(1.0 - alpha, n - 1) * sd / np.sqrt(n)
    ci_u = mu + half
    return RatioBounds(mu, sd, mu - half, ci_u, (ci_u < 1.0).astype(np.int64), n, alpha)


def population_r2(target: np.ndarray, design: np.ndarray) -> np.ndarray:
    """R^2 of each target column given the design matrix by least squares (with intercept).

    target: (n, K); design: (n, p). Returns (K,). Used for the simulated world's ground-truth predictability.
    """
    x = np.concatenate([design, np.ones((len(design), 1))], 1)
    coef, *_ = np.linalg.lstsq(x, target, rcond=None)
    resid = target - x @ coef
    return 1.0 - resid.var(0) / np.maximum(target.var(0), 1e-12)
