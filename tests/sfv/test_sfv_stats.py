"""Eq. 5.2, 5.3, 5.4, 5.5, 5.6 against hand-computed values (scipy), and Algorithm 2's selection on synthetic
predictions whose truth is known."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from voiceface.methods.sfv.loss import fuse_segments, gaussian_nll, squared_error
from voiceface.methods.sfv.select import select_ams
from voiceface.metrics.stats import error_ratio, keep_least_uncertain, population_r2, ratio_bounds


def test_eq_5_2_gaussian_nll_by_hand():
    mean, var, m = torch.tensor([1.0, 0.0]), torch.tensor([0.5, 2.0]), torch.tensor([2.0, 1.0])
    want = torch.tensor([(1.0 ** 2) / 0.5 + math.log(0.5), 1.0 / 2.0 + math.log(2.0)])
    assert torch.allclose(gaussian_nll(mean, var, m), want)
    # G == 1 degrades to Eq. 5.1
    assert torch.allclose(gaussian_nll(mean, torch.ones(2), m), squared_error(mean, m))
    # for a fixed squared error the optimal variance equals it
    v = torch.linspace(0.1, 3, 300)
    assert abs(v[gaussian_nll(torch.tensor(0.0), v, torch.tensor(1.0)).argmin()].item() - 1.0) < 0.02


def test_eq_5_3_fusion_by_hand():
    mu = torch.tensor([[1.0], [3.0], [10.0]])        # L = 3 segments, 1 AM
    var = torch.tensor([[1.0], [0.5], [4.0]])
    w = 1.0 / (1 / 1.0 + 1 / 0.5 + 1 / 4.0)
    m_hat = w * (1.0 / 1.0 + 3.0 / 0.5 + 10.0 / 4.0)
    got_m, got_w = fuse_segments(mu, var)
    assert torch.allclose(got_m, torch.tensor([m_hat])) and torch.allclose(got_w, torch.tensor([3 * w]))
    # padding segments (valid=False) are ignored and do not count in L
    mu_p = torch.cat([mu, torch.tensor([[100.0]])])
    var_p = torch.cat([var, torch.tensor([[0.01]])])
    valid = torch.tensor([[True], [True], [True], [False]])
    pm, pw = fuse_segments(mu_p, var_p, valid)
    assert torch.allclose(pm, got_m) and torch.allclose(pw, got_w)


def test_eq_5_4_error_ratio_by_hand():
    pred = np.array([[[1.0], [2.0]]])                 # (N=1, n=2, K=1)
    target = np.array([[[0.0], [4.0]]])
    chance = np.array([[2.0]])
    want = ((1 - 0) ** 2 + (2 - 4) ** 2) / ((2 - 0) ** 2 + (2 - 4) ** 2)
    assert np.allclose(error_ratio(pred, target, chance), want)
    keep = np.array([[[True], [False]]])
    assert np.allclose(error_ratio(pred, target, chance, keep), 1.0 / 4.0)


def test_keep_least_uncertain():
    u = np.array([[[4.0], [1.0], [3.0], [2.0]]])
    assert keep_least_uncertain(u, 0.5)[0, :, 0].tolist() == [False, True, False, True]
    assert keep_least_uncertain(u, 0.0).all()


def test_eq_5_5_5_6_bounds_match_scipy():
    rng = np.random.default_rng(0)
    r = rng.normal([0.9, 1.0, 1.2], 0.2, (30, 3))
    b = ratio_bounds(r, alpha=0.05)
    t = stats.t.ppf(0.95, 29)
    se = r.std(0, ddof=1) / np.sqrt(30)
    assert np.allclose(b.ci_u, r.mean(0) + t * se) and np.allclose(b.ci_l, r.mean(0) - t * se)
    # CI_u < 1 <=> the one-sided one-sample t-test of H1: mean < 1 rejects at alpha
    p = stats.ttest_1samp(r, 1.0, alternative="less").pvalue
    assert np.array_equal(b.z, (p < 0.05).astype(int))
    assert b.z.tolist() == [1, 0, 0]


def test_null_selected_near_alpha_over_many_trials():
    # 4000 independent experiments of N = 20 repeats whose true mean ratio is exactly 1 (the H0 boundary)
    rng = np.random.default_rng(1)
    r = 1.0 + rng.normal(0, 0.1, (20, 4000))
    rate = ratio_bounds(r, alpha=0.05).z.mean()
    assert 0.04 < rate < 0.06


def test_selection_on_synthetic_predictions():
    """Predictable AMs (prediction correlated with truth) are selected; null AMs (prediction independent of the
    truth) are selected at most at about alpha across many trials."""
    rng = np.random.default_rng(2)
    n_rep, n, k_pred, k_null, trials = 10, 40, 3, 200, 1
    k = k_pred + k_null
    target = rng.normal(0, 1, (n_rep, n, k))
    pred = np.concatenate([0.7 * target[..., :k_pred] + 0.3 * rng.normal(0, 1, (n_rep, n, k_pred)),
                           0.2 * rng.normal(0, 1, (n_rep, n, k_null))], axis=2)
    unc = np.abs(pred - target) + rng.random(pred.shape)       # uncertainty tied to the error
    sel = select_ams(pred, unc, target, np.array(["f"] * n_rep), np.full(n_rep, n), ("f",), 0.05)
    z = sel.z("f")
    assert z[:k_pred].all()
    assert z[k_pred:].mean() <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / k_null)
    # filtering the most uncertain voices lowers the error ratio of the predictable AMs (Fig. 5.3)
    assert (sel.bounds["f"][2].mean[:k_pred] < sel.bounds["f"][0].mean[:k_pred]).all()
    assert sel.top("f", 2).tolist() == list(np.argsort(sel.bounds["f"][0].ci_u)[:2])


def test_population_r2():
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, (5000, 2))
    y = np.stack([x[:, 0] + rng.normal(0, 1, 5000), rng.normal(0, 1, 5000)], 1)
    r2 = population_r2(y, x)
    assert r2[0] == pytest.approx(0.5, abs=0.04) and abs(r2[1]) < 0.01
