"""Benchmark: the ceiling of SfV on a simulated world: what a perfect voice analysis could reach, beside the ridge
on simple voice statistics, through the same downstream path SfV uses.

    .venv/bin/python bench/sfv_ceiling.py WORLD [--repeats 300] [--alpha 0.05] [--top-k 10] [--folds 10]

"Voices" compared (each a (P, D) per-person feature matrix fed to the ridge of ``methods.sfv.linear``):

* ``face_z``: the generator's voice-linked face z-scores (people.csv ``voice_face_z_*``, what the voice is made from:
  the limit of a noiseless, perfectly decoded voice);
* ``voice_params``: the true face-linked voice parameters (log ``voice_nasal_*``, ``voice_lip_rounding``; the limit of
  a perfect acoustic analysis of those parameters, their identity noise included);
* ``voice_stats``: the ridge's former features (``linear.person_stats``: 16-band mean log-mel of all frames);
* ``voice_murmur``: the ridge's features (``linear.murmur_stats``: 8-band low-frequency mean of murmur-like frames).

For each: Algorithm 2 with the ridge (repeated 6/1/2/1 splits, Eq. 5.4-5.6), recall / false-positive rate against
world.json's ground truth; the D_e faces reconstructed by the Eq. 5.7 fit from the top AMs (``evaluate.reconstruct``,
at the fixed ``fit.lam`` and at the lambda ``evaluate.choose_fit_lam`` picks on the non-D_e people)
and directly by a ridge from the features to the vertices (lambda by leave-one-out on the other people of the
gender); nose and whole-face per-vertex errors against the gender mean shape. The D_e holds ~24 people, so the
same direct ridge is also scored over K folds of all people (``cv``), a steadier number. ``true_ams`` rows feed the
Eq. 5.7 fit the D_e people's TRUE values of the selected (or the truly linked) AMs: the fit's own ceiling.
The in-sample bound is least squares fitted and scored on the same people: meaningful for the 3-5 oracle features,
pure overfitting for the 16 voice statistics.

Small world, seed 0 (seed 1 in brackets), nose per-vertex error / gender mean shape's, 10-fold direct ridge:
face_z 0.968x (0.969x), in-sample bound 0.958x (0.961x); voice_params 0.999x (0.998x); voice_stats 1.004x (1.002x).
The voice-linked face features explain ~6-8% of the nose vertices' variance (they are the *specific* parts of nose
width / protrusion and mouth width, while the per-vertex error without alignment is dominated by the shared shape
factors), so a nose error of 0.9x the mean shape's is out of reach of any voice in these worlds. Recall at alpha 0.05:
face_z 1.00 (FPR 0.24 / 0.13: with noiseless features the sample's chance correlations of "unlinked" AMs are
selected), voice_params 0.98 (FPR 0 / 0.03), voice_stats 0.43 (0.27), FPR 0.

voice_murmur on the demo's world (seed 0, age_cue 1; ``--only voice_murmur voice_stats``): recall 0.633, FPR 0
(voice_stats 0.367 / 0.008). Its top-10 AMs are nose AMs: fed their TRUE values, the Eq. 5.7 fit gives the D_e noses
0.569x the mean shape's error (voice_stats' selection: 1.008x). From the ridge's predictions at the fixed lambda 0.05
the D_e noses get 0.973x, but on the validation people the same lambda is worse than the mean shape (nose 2.926 /
2.650 mm at lambda 0.05 against 2.904 / 2.609 at 1000, men / women), so the chosen lambda keeps the mean shape
(1.000x); 10-fold direct ridge 1.002x. The selection now names the right AMs; their predictions are too weak.
"""
from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
import torch

from voiceface.methods.sfv.config import PRESETS
from voiceface.methods.sfv.data import Triplets, from_world
from voiceface.methods.sfv.evaluate import choose_fit_lam, reconstruct, truth_scores, vertex_errors
from voiceface.methods.sfv.linear import LINEAR_SPLIT, linear_oob_ams, murmur_stats, person_stats, ridge_predictions
from voiceface.methods.sfv.select import make_layout, normalised_targets, select_ams
from voiceface.methods.sfv.train import eigenfaces

FACE_Z = ("voice_face_z_nose_protrusion", "voice_face_z_nose_width", "voice_face_z_mouth_width")
VOICE_PARAMS = ("voice_nasal_pole_hz", "voice_nasal_zero_hz", "voice_nasal_pole2_hz", "voice_nasal_bw_hz",
                "voice_lip_rounding")


def oracle_features(world: Path, d: Triplets) -> dict[str, np.ndarray]:
    """(P, D) features of each person of ``d`` (in d.identity order): face_z, voice_params (logs), voice_stats,
    voice_murmur."""
    with open(world / "people.csv", newline="", encoding="utf-8") as f:
        rows = {r["identity"]: r for r in csv.DictReader(f)}
    table = [rows[i] for i in d.identity]
    face_z = np.array([[float(r[c]) for c in FACE_Z] for r in table])
    params = np.array([[float(r[c]) for c in VOICE_PARAMS] for r in table])
    return {"face_z": face_z, "voice_params": np.log(np.maximum(params, 1e-3)), "voice_stats": person_stats(d),
            "voice_murmur": murmur_stats(d)}


def ridge_loo(x: np.ndarray, y: np.ndarray, lams=(0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)) -> tuple[np.ndarray,
                                                                                                  np.ndarray]:
    """Ridge of y (n, K) on standardised x (n, D) with intercept, lambda (in units of n / 10, as the linear module's
    grid) chosen per output column by its leave-one-out squared error (closed form). Returns the (2, D) mean / std
    of x and coef (D + 1, K) on [standardised x, 1]."""
    mu, sd = x.mean(0), x.std(0) + 1e-9
    z = np.concatenate([(x - mu) / sd, np.ones((len(x), 1))], 1)                  # (n, D+1)
    coefs, loos = [], []
    for lam in lams:
        reg = np.eye(z.shape[1]) * lam * len(x) / 10.0
        reg[-1, -1] = 0.0
        inv = np.linalg.inv(z.T @ z + reg)
        coef = inv @ z.T @ y
        h = np.einsum("nd,de,ne->n", z, inv, z)                                   # (n,) leverages
        loos.append((((y - z @ coef) / (1 - h)[:, None]) ** 2).sum(0))            # (K,)
        coefs.append(coef)
    best = np.argmin(np.stack(loos), 0)                                           # (K,)
    return np.stack([mu, sd]), np.take_along_axis(np.stack(coefs), best[None, None], 0)[0]


def ridge_apply(stats: np.ndarray, coef: np.ndarray, x: np.ndarray) -> np.ndarray:
    z = np.concatenate([(x - stats[0]) / stats[1], np.ones((len(x), 1))], 1)
    return z @ coef


def direct_vertices(d: Triplets, x: np.ndarray, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Ridge from features x (P, D) to the flattened vertices, fitted on ``train`` people -> (n_test, V, 3)."""
    y = d.vertices[train].reshape(len(train), -1).astype(np.float64)
    stats, coef = ridge_loo(x[train], y)
    return ridge_apply(stats, coef, x[test]).reshape(len(test), -1, 3)


def scores(err: np.ndarray, err_mean: np.ndarray, nose: np.ndarray) -> dict[str, float]:
    return {"vertex": float(err.mean()), "vertex_mean_shape": float(err_mean.mean()),
            "nose": float(err[:, nose].mean()), "nose_mean_shape": float(err_mean[:, nose].mean()),
            "nose_ratio": float(err[:, nose].mean() / err_mean[:, nose].mean())}


def cv_direct(d: Triplets, x: np.ndarray, nose: np.ndarray, folds: int, seed: int = 0) -> dict[str, float]:
    """Direct ridge to the vertices scored over ``folds`` folds of every gender's people (all people once)."""
    rng = np.random.default_rng(seed)
    errs, means = [], []
    for g in ("m", "f"):
        people = rng.permutation(np.nonzero(d.gender == g)[0])
        for k in range(folds):
            test = people[k::folds]
            train = np.setdiff1d(people, test)
            true = d.vertices[test]
            errs.append(vertex_errors(direct_vertices(d, x, train, test), true))
            means.append(vertex_errors(np.broadcast_to(d.vertices[train].mean(0), true.shape), true))
    return scores(np.concatenate(errs), np.concatenate(means), nose)


def insample_bound(d: Triplets, x: np.ndarray, nose: np.ndarray) -> dict[str, float]:
    """Least squares of every gender's vertices on x fitted and scored on the same people (optimistic: an upper
    bound on what x can explain of the per-vertex error)."""
    errs, means = [], []
    for g in ("m", "f"):
        s = d.gender == g
        z = np.concatenate([x[s], np.ones((s.sum(), 1))], 1)
        y = d.vertices[s].reshape(s.sum(), -1).astype(np.float64)
        coef, *_ = np.linalg.lstsq(z, y, rcond=None)
        errs.append(vertex_errors((z @ coef).reshape(d.vertices[s].shape), d.vertices[s]))
        means.append(vertex_errors(np.broadcast_to(d.vertices[s].mean(0), d.vertices[s].shape), d.vertices[s]))
    return scores(np.concatenate(errs), np.concatenate(means), nose)


def am_path(d: Triplets, x: np.ndarray, repeats: int, alpha: float, top_k: int, nose: np.ndarray, cfg
            ) -> dict[str, float]:
    """Algorithm 2 with the ridge on features x, then Eq. 5.7 from the repeat-averaged D_e predictions of the top
    AMs, the same fit fed the TRUE AMs (selected top, and truly linked top by population R^2), and the direct
    vertex ridge on the same D_e."""
    lay = make_layout(d, ("m", "f"), repeats, LINEAR_SPLIT, 0)
    pred, _ = ridge_predictions(x, d, lay)
    v2, v2l = lay.tables["val2"]
    sel = select_ams(pred, np.ones_like(pred), normalised_targets(d, lay, v2), lay.gender, v2l, lay.genders, alpha,
                     (0.0,))
    out = {k: v for k, v in truth_scores(d, sel, lay.genders).items()}
    out.update({f"selected_{g}": int(sel.z(g).sum()) for g in lay.genders})
    test_pred, _ = ridge_predictions(x, d, lay, table="test")                       # (M, n_e, A) normalised
    raw = test_pred * lay.am_std[:, None] + lay.am_mean[:, None]
    _, lens = lay.tables["test"]
    oob = linear_oob_ams(d, lay, x)                                                 # (P, A) validation predictions
    errs = {k: [] for k in ("fit", "fit_chosen_lam", "fit_true_sel", "fit_true_linked", "direct", "mean")}
    for g in lay.genders:
        nets = lay.nets_of(g)
        people = lay.splits[g].test
        m_hat = raw[nets, :int(lens[nets[0]])].mean(0)
        pool = np.setdiff1d(np.nonzero(d.gender == g)[0], people)
        mean, basis, scale = eigenfaces(d.vertices[pool], cfg.fit.components)
        am_sd = d.ams[pool].std(0) + 1e-8
        true = d.vertices[people]
        z = np.zeros(d.n_ams)
        z[sel.top(g, top_k)] = 1
        errs["fit"].append(vertex_errors(reconstruct(d, mean, basis, scale, m_hat, am_sd, z, cfg, cfg.fit.lam), true))
        lam = choose_fit_lam(d, pool, oob[pool], mean, basis, scale, am_sd, z, cfg)
        out[f"lam_{g}"] = lam
        errs["fit_chosen_lam"].append(vertex_errors(reconstruct(d, mean, basis, scale, m_hat, am_sd, z, cfg, lam),
                                                    true))
        errs["fit_true_sel"].append(vertex_errors(reconstruct(d, mean, basis, scale, d.ams[people], am_sd, z, cfg),
                                                  true))
        zl = np.zeros(d.n_ams)
        if g in d.truth_r2:
            zl[np.argsort(-np.nan_to_num(d.truth_r2[g]))[:top_k]] = 1
        errs["fit_true_linked"].append(vertex_errors(reconstruct(d, mean, basis, scale, d.ams[people], am_sd, zl,
                                                                 cfg), true))
        errs["direct"].append(vertex_errors(direct_vertices(d, x, pool, people), true))
        errs["mean"].append(vertex_errors(np.broadcast_to(mean.reshape(-1, 3), true.shape), true))
    cat = {k: np.concatenate(v) for k, v in errs.items()}
    for k in ("fit", "fit_chosen_lam", "fit_true_sel", "fit_true_linked", "direct"):
        out.update({f"{k}_{s}": v for s, v in scores(cat[k], cat["mean"], nose).items()})
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("world", type=Path)
    ap.add_argument("--repeats", type=int, default=300)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--only", nargs="*", default=None, help="feature sets to run (default: all)")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    cfg = PRESETS["cpu"]
    t0 = time.perf_counter()
    d = from_world(a.world, norm=cfg.data.feature_norm, max_s=cfg.data.max_test_s)
    nose = d.vertex_regions["nose"]
    print(f"world {a.world}: {len(d.identity)} people, {int(nose.sum())} nose vertices "
          f"(read in {time.perf_counter() - t0:.0f} s)")
    for name, x in oracle_features(a.world, d).items():
        if a.only and name not in a.only:
            continue
        r = am_path(d, x, a.repeats, a.alpha, a.top_k, nose, cfg)
        cv = cv_direct(d, x, nose, a.folds)
        ins = insample_bound(d, x, nose)
        print(f"\n== {name} ({x.shape[1]} features): recall {r['sfv_recall']:.3f}, FPR "
              f"{r['sfv_false_positive_rate']:.3f}, selected m {r['selected_m']} f {r['selected_f']}")
        print(f"  Eq. 5.7 lambda chosen on validation people: m {r['lam_m']}, f {r['lam_f']}")
        for k in ("fit", "fit_chosen_lam", "fit_true_sel", "fit_true_linked", "direct"):
            print(f"  D_e {k:16s} vertex {r[f'{k}_vertex']:.3f} (mean shape {r[f'{k}_vertex_mean_shape']:.3f})  "
                  f"nose {r[f'{k}_nose']:.3f} (mean shape {r[f'{k}_nose_mean_shape']:.3f}) = "
                  f"{r[f'{k}_nose_ratio']:.3f}x")
        print(f"  {a.folds}-fold direct      vertex {cv['vertex']:.3f} (mean shape {cv['vertex_mean_shape']:.3f})  "
              f"nose {cv['nose']:.3f} (mean shape {cv['nose_mean_shape']:.3f}) = {cv['nose_ratio']:.3f}x")
        print(f"  in-sample OLS bound vertex {ins['vertex']:.3f} (mean shape {ins['vertex_mean_shape']:.3f})  "
              f"nose {ins['nose']:.3f} (mean shape {ins['nose_mean_shape']:.3f}) = {ins['nose_ratio']:.3f}x")


if __name__ == "__main__":
    main()
