"""Algorithm 2 (Sec. 5.2.2): the stacked networks' layout over genders and repeats, fused predictions of every
network on its own people (Eq. 5.3), and the selection of predictable AMs (Eq. 5.4-5.6), also after filtering out the
most uncertain voices (Fig. 5.3).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...metrics.stats import RatioBounds, error_ratio, keep_least_uncertain, ratio_bounds
from .data import Splits, Triplets, make_splits, pad_rows, person_segments, segments
from .loss import fuse_segments
from .model import AMNet


@dataclass(frozen=True)
class Layout:
    """Which network is which: M = len(genders) * N stacked networks, network m = (gender[m], repeat[m]).

    splits: per gender, the Algorithm 2 splits; train / val1 / val2 / test: (M, n_max) person tables with (M,)
    lengths; am_mean / am_std: (M, A) normalisation of the AMs on each network's D_t.
    """

    genders: tuple[str, ...]
    gender: np.ndarray
    repeat: np.ndarray
    splits: dict[str, Splits]
    tables: dict[str, tuple[np.ndarray, np.ndarray]]
    am_mean: np.ndarray
    am_std: np.ndarray

    @property
    def n_nets(self) -> int:
        return len(self.gender)

    def nets_of(self, g: str) -> np.ndarray:
        return np.nonzero(self.gender == g)[0]


def make_layout(data: Triplets, genders: tuple[str, ...], repeats: int, ratio, seed: int) -> Layout:
    """Algorithm 2 lines 1 and 4 for every gender; AM normalisation (zero mean, unit variance) on each D_t."""
    splits, gender, repeat = {}, [], []
    rows: dict[str, list] = {"train": [], "val1": [], "val2": [], "test": []}
    for gi, g in enumerate(genders):
        people = np.nonzero(data.gender == g)[0]
        s = make_splits(people, repeats, ratio, seed=seed * 1000 + gi)
        splits[g] = s
        for r in range(repeats):
            gender.append(g)
            repeat.append(r)
            rows["train"].append(s.train[r])
            rows["val1"].append(s.val1[r])
            rows["val2"].append(s.val2[r])
            rows["test"].append(s.test)
    tables = {k: pad_rows(v) for k, v in rows.items()}
    mean = np.stack([data.ams[t].mean(0) for t in rows["train"]])           # (M, A)
    std = np.stack([data.ams[t].std(0) for t in rows["train"]]) + 1e-8      # (M, A)
    return Layout(tuple(genders), np.array(gender), np.array(repeat), splits, tables, mean, std)


def net_outputs(model: AMNet, x: torch.Tensor, per_am: bool, n_ams: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the stacked networks: x (B, M, n_mels, T) -> mean, var (B, M, A). With ``per_am`` the model holds M * A
    one-output networks and every AM network of (gender, repeat) m reads x[:, m]."""
    if per_am:
        b, m, f, t = x.shape
        xa = x[:, :, None].expand(b, m, n_ams, f, t).reshape(b, m * n_ams, f, t)
        mean, var = model(xa)                                                # (B, M*A, 1)
        return mean.reshape(b, m, n_ams), var.reshape(b, m, n_ams)
    return model(x)


@torch.no_grad()
def predict(model: AMNet, data: Triplets, table: np.ndarray, seg_frames: int, max_frames: int | None,
            per_am: bool, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 5.3 predictions of every network m on its own people table[m] (M, n), from whole recordings.

    Returns m_hat (M, n, A) and calibrated w_hat = L * w (M, n, A), in each network's normalised AM units. Runs on
    the model's device; the results are on the CPU.
    """
    model.eval()
    device = next(model.parameters()).device
    x_seg, owner = segments(data, seg_frames, max_frames)                       # (S, F, T), (S,)
    seg_of, _ = person_segments(owner, len(data.identity))                      # (P, S_p)
    m_nets, n = table.shape
    ids = seg_of[table]                                                         # (M, n, S_p) segment ids, -1 pad
    valid = torch.from_numpy(ids >= 0)
    flat = np.where(ids >= 0, ids, 0).reshape(m_nets, -1)                       # (M, L)
    means, vars_ = [], []
    for lo in range(0, flat.shape[1], chunk):
        xb = torch.from_numpy(x_seg[flat[:, lo:lo + chunk].T]).to(device)       # (b, M, F, T)
        mu, var = net_outputs(model, xb, per_am, data.n_ams)                     # (b, M, A or n_out)
        means.append(mu.cpu())
        vars_.append(var.cpu())
    n_out = means[0].shape[-1]
    mu = torch.cat(means).transpose(0, 1).reshape(m_nets, n, ids.shape[2], n_out)   # (M, n, S_p, A)
    var = torch.cat(vars_).transpose(0, 1).reshape(m_nets, n, ids.shape[2], n_out)
    m_hat, w_hat = fuse_segments(mu, var, valid[..., None], dim=2)              # (M, n, A)
    return m_hat.numpy(), w_hat.numpy()


def normalised_targets(data: Triplets, layout: Layout, table: np.ndarray) -> np.ndarray:
    """True AMs of table (M, n) people in each network's normalised units: (M, n, A)."""
    return (data.ams[table] - layout.am_mean[:, None]) / layout.am_std[:, None]


@dataclass(frozen=True)
class Selection:
    """Per gender and filter fraction: the (N, A) error ratios (Eq. 5.4) and their bounds (Eq. 5.5, 5.6)."""

    fracs: tuple[float, ...]
    ratios: dict[str, np.ndarray]              # gender -> (F, N, A)
    bounds: dict[str, list[RatioBounds]]       # gender -> F bounds

    def z(self, g: str, frac_index: int = 0) -> np.ndarray:
        return self.bounds[g][frac_index].z

    def top(self, g: str, k: int, frac_index: int = 0) -> np.ndarray:
        """Indices of at most k selected AMs (z = 1) ranked by 1 - CI_u (Sec. 5.3.2)."""
        b = self.bounds[g][frac_index]
        order = np.argsort(b.ci_u, kind="stable")
        return order[b.z[order] == 1][:k]


def select_ams(pred: np.ndarray, unc: np.ndarray, target: np.ndarray, gender: np.ndarray, lens: np.ndarray,
               genders, alpha: float, fracs=(0.0, 0.25, 0.5)) -> Selection:
    """Algorithm 2 lines 6-9, vectorised over repeats and AMs.

    pred, unc, target: (M, n_v2, A) predictions, calibrated uncertainties and truths on each network's D_v2 in its
    normalised units (so the chance estimator C_k, the D_t mean, is 0); gender: (M,) network genders; lens: (M,)
    true D_v2 sizes (tables are padded across genders).
    """
    ratios, bounds = {}, {}
    for g in genders:
        nets = np.nonzero(gender == g)[0]
        n = int(lens[nets[0]])
        p, u, t = pred[nets, :n], unc[nets, :n], target[nets, :n]
        chance = np.zeros((len(nets), p.shape[2]))
        rs = np.stack([error_ratio(p, t, chance, keep_least_uncertain(u, f)) for f in fracs])   # (F, N, A)
        ratios[g] = rs
        bounds[g] = [ratio_bounds(r, alpha) for r in rs]
    return Selection(tuple(fracs), ratios, bounds)
