"""Eigenfaces and the AM-guided fit of Eq. 5.7."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from voiceface.face3d import anthropometry as A
from voiceface.face3d import builtin_model
from voiceface.face3d.fit import EigenFaces, am_prior_scale, fit_ams, per_vertex_error


@pytest.fixture(scope="module")
def model():
    return builtin_model()


@pytest.fixture(scope="module")
def shapes(model):
    g = torch.Generator().manual_seed(7)
    return model.shape(torch.randn(6, model.num_identity, generator=g))


def test_eigenfaces(model):
    g = torch.Generator().manual_seed(0)
    train = model.shape(torch.randn(30, model.num_identity, generator=g))
    eig = EigenFaces.fit(train, 29)
    assert eig.num_components == 29 and torch.all(eig.std[:-1] >= eig.std[1:])
    rec = eig.shape(eig.project(train[:3]))
    assert (rec - train[:3]).abs().max() < 1e-2                      # training shapes lie in the span
    basis = eig.basis.double()
    assert torch.allclose(basis.T @ basis, torch.eye(29, dtype=torch.float64), atol=1e-5)


def test_fit_recovers_own_ams(model, shapes):
    target = A.am_from_shape(model, shapes)
    res = fit_ams(model, model.am_landmarks, target, lam=1e-4, iterations=25)
    scale = am_prior_scale(model, model.am_landmarks)
    err = ((res.ams - target) / scale).abs()
    assert err.mean() < 0.05 and err.median() < 0.02
    # the fit is far better than the mean face at matching the AMs
    base = ((A.am_from_shape(model, model.mean[None]) - target) / scale).abs()
    assert err.mean() < 0.1 * base.mean()


def test_fit_subset_and_unconstrained_error(model, shapes):
    """Fit only the nose AMs (the subset SfV finds predictable); the error is reported per region."""
    target = A.am_from_shape(model, shapes)
    nose = torch.tensor([r == "nose" for r in A.AM_REGIONS])
    res = fit_ams(model, model.am_landmarks, target, mask=nose, lam=0.05)
    scale = am_prior_scale(model, model.am_landmarks)
    assert ((res.ams - target) / scale)[:, nose].abs().mean() < 0.1
    err = per_vertex_error(res.shapes, shapes)                       # (B, V)
    err0 = per_vertex_error(model.mean.expand_as(shapes), shapes)
    tip = model.mean[model.am_landmarks[30]]
    near = (model.mean - tip).norm(dim=-1) < 25.0                    # nose region
    far = (model.mean - tip).norm(dim=-1) > 60.0                     # unconstrained regions
    report = {"nose_fit": err[:, near].mean().item(), "nose_mean_face": err0[:, near].mean().item(),
              "far_fit": err[:, far].mean().item(), "far_mean_face": err0[:, far].mean().item()}
    print("per-vertex error (mm):", report)
    assert report["nose_fit"] < 0.7 * report["nose_mean_face"]
    assert np.isfinite(list(report.values())).all()


def test_fit_batched_masks_and_eigen_space(model, shapes):
    eig = EigenFaces.fit(model.shape(torch.randn(40, model.num_identity, generator=torch.Generator().manual_seed(3))),
                         20)
    target = A.am_from_shape(model, shapes[:2])
    mask = torch.zeros(2, A.NUM_AMS, dtype=torch.bool)
    mask[0, A.am_index(["32-38", "31-35", "28-31"])] = True
    mask[1, A.am_index(["39-45", "42-48"])] = True
    target = torch.where(mask, target, torch.full_like(target, float("nan")))
    res = fit_ams(eig, model.am_landmarks, target, mask=mask, lam=1e-3)
    assert res.coeffs.shape == (2, 20) and torch.isfinite(res.coeffs).all()
    got = res.ams[mask]
    want = target[mask]
    assert ((got - want).abs() / want.abs()).max() < 0.03
