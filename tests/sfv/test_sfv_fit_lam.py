"""Eq. 5.7's lambda chosen on validation people (evaluate.choose_fit_lam): a fit of exact AMs keeps a small lambda,
a fit of AMs that carry nothing about the person (another person's) is shrunk to the mean shape, and the chosen
lambda's reconstructions are no worse than the gender mean shape on those people."""
from __future__ import annotations

import numpy as np

from voiceface import config as cfgmod
from voiceface.methods.sfv.config import PRESETS
from voiceface.methods.sfv.data import synthetic
from voiceface.methods.sfv.evaluate import choose_fit_lam, reconstruct, vertex_errors
from voiceface.methods.sfv.train import eigenfaces


def test_fit_lambda_follows_how_much_the_predicted_ams_tell():
    d = synthetic(n_people=160, n_ams=6, n_linked=3, rec_s=0.2, recs=1, n_mels=8, seed=0)
    cfg = cfgmod.replace(PRESETS["cpu"], {"fit": {"steps": 150, "components": 8}})
    men = np.nonzero(d.gender == "m")[0]
    val, pool = men[:30], men[30:]
    mean, basis, scale = eigenfaces(d.vertices[pool], cfg.fit.components)
    am_sd = d.ams[pool].std(0) + 1e-8
    z = np.ones(d.n_ams)
    exact = choose_fit_lam(d, val, d.ams[val], mean, basis, scale, am_sd, z, cfg)
    wrong = d.ams[np.roll(val, 7)]                                   # other people's AMs: no information
    noise = choose_fit_lam(d, val, wrong, mean, basis, scale, am_sd, z, cfg)
    assert exact <= 0.3 and noise >= 30.0, (exact, noise)
    e_mean = vertex_errors(np.broadcast_to(mean.reshape(-1, 3), d.vertices[val].shape), d.vertices[val]).mean()
    e_noise = vertex_errors(reconstruct(d, mean, basis, scale, wrong, am_sd, z, cfg, noise), d.vertices[val]).mean()
    e_small = vertex_errors(reconstruct(d, mean, basis, scale, wrong, am_sd, z, cfg, 0.05), d.vertices[val]).mean()
    assert e_noise <= 1.01 * e_mean < e_small, (e_noise, e_mean, e_small)
    rows = np.full_like(wrong, np.nan)
    assert choose_fit_lam(d, val, rows, mean, basis, scale, am_sd, z, cfg) == cfg.fit.lam     # nothing covered
    fixed = cfgmod.replace(cfg, {"fit": {"lam_grid": []}})
    assert choose_fit_lam(d, val, d.ams[val], mean, basis, scale, am_sd, z, fixed) == cfg.fit.lam
