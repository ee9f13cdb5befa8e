"""SfV evaluation: AM selection (Algorithm 2, Fig. 5.3-5.5), reconstruction (Sec. 5.2.3, Eq. 5.7, Fig. 5.8) and the
baselines (gender mean shape; voice-to-vertex regression on mixed genders and within gender, Fig. 5.1b).

``evaluate(run)`` writes RUN/results.json, RUN/report.md and RUN/figures/*.png and returns the flat metrics.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ... import config as cfgmod
from ...engine import Run, dist, load_checkpoint, write_json
from ...metrics import shape as shape_metrics
from .config import SfVConfig
from .data import Triplets, pad_rows
from .linear import (LINEAR_FEATURES, LINEAR_REPEATS, LINEAR_SPLIT, linear_oob_ams, linear_selection, linear_test_ams,
                     voice_stats)
from .loss import fuse_segments
from .model import AMNet
from .select import Layout, Selection, normalised_targets, predict, select_ams
from .train import build, eigenfaces, load_triplets, v2v_setup

log = logging.getLogger(__name__)


def fit_shapes(mean: np.ndarray, basis: np.ndarray, scale: np.ndarray, measure, target: np.ndarray,
               am_scale: np.ndarray, z: np.ndarray, lam: float, steps: int, lr: float) -> np.ndarray:
    """Eq. 5.7 for n voices at once: beta* = argmin lam ||beta||^2 + sum_k z_k (Q_k(mean + P diag(scale) beta) -
    m_hat_k)^2, with AM differences in units of the training AM std (the normalised AMs of Sec. 5.3).

    mean (3V,), basis P (3V, d), scale (d,) eigenface std, target m_hat (n, A) raw AMs, am_scale (A,), z (A,) 0/1.
    Returns the reconstructed shapes (n, V, 3). With no selected AM the minimiser is beta = 0, the mean shape.

    Same objective as ``face3d.fit.fit_ams``, which :func:`reconstruct` uses whenever it can; that solver is tied to
    the Table 5.1 ``measure`` on the 65 Fig. 5.2 landmark vertices. This first-order fallback takes any
    differentiable ``measure`` of whole shapes (n, V, 3) -> (n, A), e.g. the synthetic AM sets of the tests and
    ``data.synthetic``, which have no landmark indices.
    """
    n = len(target)
    mu = torch.as_tensor(mean)
    pb = torch.as_tensor(basis * scale[None, :])                                   # (3V, d)
    tgt, sc = torch.as_tensor(target), torch.as_tensor(am_scale)
    zz = torch.as_tensor(z, dtype=torch.float64)
    beta = torch.zeros(n, pb.shape[1], dtype=torch.float64, requires_grad=True)    # (n, d)
    if zz.sum() > 0:
        _adam_fit(beta, mu, pb, measure, tgt, sc, zz, lam, steps, lr)
    with torch.no_grad():
        return (mu + beta @ pb.T).reshape(n, -1, 3).numpy()


@torch.enable_grad()
def _adam_fit(beta, mu, pb, measure, tgt, sc, zz, lam, steps, lr) -> None:
    """Adam on the sum of the n independent Eq. 5.7 objectives (each beta row only enters its own term)."""
    n = len(beta)
    opt = torch.optim.Adam([beta], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        verts = (mu + beta @ pb.T).reshape(n, -1, 3)                                # (n, V, 3)
        res = (measure(verts) - tgt) / sc                                           # (n, A)
        loss = lam * beta.pow(2).sum() + (res.pow(2) * zz).sum()
        loss.backward()
        opt.step()


def reconstruct(d: Triplets, mean: np.ndarray, basis: np.ndarray, scale: np.ndarray, m_hat: np.ndarray,
                am_sd: np.ndarray, z: np.ndarray, cfg: SfVConfig, lam: float | None = None) -> np.ndarray:
    """Eq. 5.7 reconstructions (n, V, 3) from predicted AMs m_hat (n, A) with indicators z (A,); ``lam``: Eq. 5.7's
    lambda (None: ``cfg.fit.lam``).

    Table 5.1 AMs on a mesh with known landmarks use the face3d stack's batched Levenberg-Marquardt solver
    (``face3d.fit.fit_ams``); any other AM set (e.g. the synthetic pairs) uses ``fit_shapes`` (Adam)."""
    from ...face3d.anthropometry import NUM_AMS

    lam = cfg.fit.lam if lam is None else float(lam)
    if d.am_landmarks is None or d.n_ams != NUM_AMS:
        return fit_shapes(mean, basis, scale, d.measure, m_hat, am_sd, z, lam, cfg.fit.steps, cfg.fit.lr)
    from ...face3d.fit import EigenFaces, fit_ams

    space = EigenFaces(torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 3),
                       torch.as_tensor(basis, dtype=torch.float32), torch.as_tensor(scale, dtype=torch.float32))
    if z.sum() == 0:
        return np.broadcast_to(mean.reshape(1, -1, 3), (len(m_hat), len(mean) // 3, 3)).astype(np.float32)
    res = fit_ams(space, d.am_landmarks, torch.as_tensor(m_hat), torch.as_tensor(z, dtype=torch.bool),
                  lam=lam, scale=torch.as_tensor(am_sd))
    return res.shapes.numpy()


def choose_fit_lam(d: Triplets, people: np.ndarray, m_hat: np.ndarray, mean: np.ndarray, basis: np.ndarray,
                   scale: np.ndarray, am_sd: np.ndarray, z: np.ndarray, cfg: SfVConfig) -> float:
    """Eq. 5.7's lambda chosen on validation people, not on D_e: the fits of the ``people`` (n,) from their
    out-of-sample predicted AMs ``m_hat`` (n, A) (NaN rows: not covered, skipped) are scored by their mean per-vertex
    error against the true shapes for every value of ``cfg.fit.lam_grid``, and the largest lambda whose per-person
    errors exceed those of the best lambda by at most one standard error of their mean difference is kept (the
    one-standard-error rule: a gain within the noise of n people is not taken). ``cfg.fit.lam`` when the grid is
    empty, no AM is selected or fewer than 2 people are covered.

    The fit matches the predicted AMs almost exactly at a small lambda; predictions that explain a fraction of an
    AM's variance then move the whole face along the population's AM-shape covariance (and, with correlated
    ratio AMs on a 20-component basis, far along ill-conditioned directions), which can leave the shape further from
    the truth than the gender mean. A lambda chosen this way shrinks the fit back towards the mean as far as the
    held-out shapes ask (the largest grid values give the mean shape itself)."""
    ok = np.isfinite(m_hat).all(1)
    if not cfg.fit.lam_grid or z.sum() == 0 or ok.sum() < 2:
        return float(cfg.fit.lam)
    true = d.vertices[people[ok]]
    grid = np.asarray(cfg.fit.lam_grid, np.float64)
    errs = np.stack([vertex_errors(reconstruct(d, mean, basis, scale, m_hat[ok], am_sd, z, cfg, lam), true).mean(1)
                     for lam in grid])                                              # (L, n) per-person errors
    diff = errs - errs[int(np.argmin(errs.mean(1)))]                                # (L, n) against the best lambda
    within = diff.mean(1) <= diff.std(1, ddof=1) / np.sqrt(diff.shape[1])           # (L,) the best itself included
    return float(grid[within].max())


@dataclass
class PoolFit:
    """Eq. 5.7 reconstructions of one gender's people from the eigenfaces of a pool of others (``fit_from_pool``)."""

    mean: np.ndarray              # eigenfaces' mean shape, flattened vertices
    basis: np.ndarray             # eigenfaces
    scale: np.ndarray             # their coefficients' std
    am_sd: np.ndarray             # (A,) AM std over the pool
    lam: float                    # Eq. 5.7's lambda used
    recon: np.ndarray             # (n, V, 3) reconstructions


def fit_from_pool(d: Triplets, pool: np.ndarray, m_hat: np.ndarray, z: np.ndarray, cfg: SfVConfig,
                  oob: np.ndarray | None = None) -> PoolFit:
    """Eigenfaces and AM scales of the ``pool`` people's shapes, Eq. 5.7's lambda (``choose_fit_lam`` on the pool's
    out-of-bag predicted AMs ``oob`` (P, A); ``cfg.fit.lam`` without them) and the reconstructions from predicted
    AMs ``m_hat`` (n, A) with indicators ``z`` (A,)."""
    mean, basis, scale = eigenfaces(d.vertices[pool], cfg.fit.components)
    am_sd = d.ams[pool].std(0) + 1e-8
    lam = cfg.fit.lam if oob is None else choose_fit_lam(d, pool, oob[pool], mean, basis, scale, am_sd, z, cfg)
    return PoolFit(mean, basis, scale, am_sd, lam, reconstruct(d, mean, basis, scale, m_hat, am_sd, z, cfg, lam))


def save_shape_model(path: Path, d: Triplets, lay: Layout, exports: dict[str, dict], calib: np.ndarray) -> None:
    """What ``voiceface shape`` needs besides the checkpoint: per gender the eigenfaces, AM scales and the
    selection; the networks' AM normalisation; AM names / regions; the landmark indices."""
    arrays = {f"{g}_{k}": np.asarray(v) for g, e in exports.items() for k, v in e.items()}
    np.savez(path, am_names=np.array(d.am_names), am_regions=np.array(d.am_regions), am_mean=lay.am_mean, calib=calib,
             am_std=lay.am_std, net_gender=lay.gender, genders=np.array(lay.genders),
             am_landmarks=d.am_landmarks if d.am_landmarks is not None else np.zeros(0, np.int64),
             feat_stats=d.feat_stats if d.feat_stats is not None else np.zeros(0, np.float32), **arrays)


def vertex_errors(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Per-vertex Euclidean errors (n, V) between shapes (n, V, 3)."""
    return np.linalg.norm(pred - true, axis=-1)


def keep_fraction(uncertainty: np.ndarray, drop: float) -> np.ndarray:
    """Bool mask (n,) of the voices left after dropping the ``drop`` fraction with the highest uncertainty (n,)."""
    n_keep = max(int(round(len(uncertainty) * (1 - drop))), 1)
    return np.argsort(np.argsort(uncertainty, kind="stable"), kind="stable") < n_keep


@dataclass
class Loaded:
    cfg: SfVConfig
    data: Triplets
    layout: Layout
    model: AMNet
    v2v: AMNet
    seed: int


def load_run(run: str | os.PathLike, data: str | os.PathLike | None = None) -> Loaded:
    """Rebuild the data, layout and selected estimators of a trained run (on ``cfg.device``: auto = CUDA when
    present)."""
    r = Run.open(run)
    conf = dict(r.config)
    seed, data_path = int(conf.pop("seed")), r.data
    conf.pop("data_source", None)                               # runs before the data record kept it in the config
    cfg = cfgmod.from_dict(SfVConfig, conf)
    triplets = load_triplets(data or data_path, cfg)
    layout, model, best = build(triplets, cfg, seed)
    ckpt = load_checkpoint(r.checkpoint_path)
    best.load_state_dict(ckpt["models"]["best"])
    n_v2v = 1 + len(cfg.data.genders)
    v2v = AMNet(n_v2v, ckpt["models"]["v2v"]["head_f.weight"].shape[0] // n_v2v, cfg.model.n_mels,
                cfg.model.channels, uncertainty=False)
    v2v.load_state_dict(ckpt["models"]["v2v"])
    device = dist.default_device(cfg.device)
    return Loaded(cfg, triplets, layout, best.net.to(device), v2v.to(device), seed)


def calibration(lo: Loaded) -> np.ndarray:
    """Scale of each network's calibrated uncertainty L * w (Eq. 5.3), fitted on its own D_v1: c (M, A) = mean over
    D_v1 of (m_hat - m)^2 / w_hat, so that c * w_hat is an unbiased variance there. It only changes the relative
    weights of the repeats in the ensemble (Algorithm 2 line 11); rankings within a network are unchanged."""
    cfg, lay = lo.cfg, lo.layout
    fps = cfg.data.frames_per_s
    table, lens = lay.tables["val1"]
    m_hat, w_hat = predict(lo.model, lo.data, table, int(cfg.data.segment_s * fps), int(cfg.data.max_test_s * fps),
                           cfg.model.per_am)                                          # (M, n, A)
    valid = (np.arange(table.shape[1])[None, :] < lens[:, None])[..., None]          # (M, n, 1)
    ratio = (m_hat - normalised_targets(lo.data, lay, table)) ** 2 / w_hat
    return np.maximum((ratio * valid).sum(1) / lens[:, None], 1e-6)                 # (M, A)


def ensemble_test(lo: Loaded, calib: np.ndarray | None = None) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Algorithm 2 line 11: per gender, D_e people (n_e,), their raw predicted AMs (n_e, A) fused over the repeats'
    estimators with Eq. 5.3 (each repeat's variance scaled by its D_v1 calibration ``calib`` (M, A)), and the
    calibrated uncertainty (n_e, A)."""
    cfg, lay = lo.cfg, lo.layout
    fps = cfg.data.frames_per_s
    table, lens = lay.tables["test"]
    m_hat, w_hat = predict(lo.model, lo.data, table, int(cfg.data.segment_s * fps), int(cfg.data.max_test_s * fps),
                           cfg.model.per_am)                                          # (M, n, A)
    if calib is not None:
        w_hat = w_hat * calib[:, None]
    raw = m_hat * lay.am_std[:, None] + lay.am_mean[:, None]
    var = w_hat * lay.am_std[:, None] ** 2
    out = {}
    for g in lay.genders:
        nets = lay.nets_of(g)
        n = int(lens[nets[0]])
        fm, fw = fuse_segments(torch.from_numpy(raw[nets, :n]), torch.from_numpy(var[nets, :n]), dim=0)
        out[g] = (lay.splits[g].test, fm.numpy(), fw.numpy())
    return out


def selection(lo: Loaded) -> Selection:
    """Algorithm 2 lines 6-9 on every network's D_v2."""
    cfg, lay = lo.cfg, lo.layout
    fps = cfg.data.frames_per_s
    table, lens = lay.tables["val2"]
    m_hat, w_hat = predict(lo.model, lo.data, table, int(cfg.data.segment_s * fps), int(cfg.data.max_test_s * fps),
                           cfg.model.per_am)
    target = normalised_targets(lo.data, lay, table)
    return select_ams(m_hat, w_hat, target, lay.gender, lens, lay.genders, cfg.select.alpha, cfg.select.filter_fracs)


def v2v_predict(lo: Loaded, people: np.ndarray) -> np.ndarray:
    """Voice-to-vertex baseline shapes (1 + G, n, V, 3): network 0 trained on mixed genders, 1 + g within gender g."""
    cfg = lo.cfg
    fps = cfg.data.frames_per_s
    setup = v2v_setup(lo.data, lo.layout, cfg.fit.components)
    table = np.tile(people[None, :], (lo.v2v.n_nets, 1))
    coeff, _ = predict(lo.v2v, lo.data, table, int(cfg.data.segment_s * fps), int(cfg.data.max_test_s * fps),
                       per_am=False)                                                  # (1+G, n, d), G == 1: mean
    flat = setup["mean"] + (coeff * setup["std"]) @ setup["basis"].T                   # (1+G, n, 3V)
    return flat.reshape(len(coeff), len(people), -1, 3)


def out_of_bag_ams(lo: Loaded) -> tuple[np.ndarray, np.ndarray]:
    """Every person's AMs predicted by the networks of their gender that did not train on them (not in that
    repeat's D_t: its D_v1, D_v2 or D_e), averaged over those networks (raw AM units), from whole recordings
    (Eq. 5.3). More unseen people per run than D_e alone, for checks of how well the voice predicts the AMs.

    Returns pred (P, A) (NaN rows for people every network trained on) and covered (P,) bool."""
    cfg, d, lay = lo.cfg, lo.data, lo.layout
    fps = cfg.data.frames_per_s
    table = np.tile(np.arange(len(d.identity))[None], (lay.n_nets, 1))                  # (M, P) everyone
    m_hat, _ = predict(lo.model, d, table, int(cfg.data.segment_s * fps), int(cfg.data.max_test_s * fps),
                       cfg.model.per_am)                                                 # (M, P, A)
    raw = m_hat * lay.am_std[:, None] + lay.am_mean[:, None]
    train, lens = lay.tables["train"]
    seen = np.zeros((lay.n_nets, len(d.identity)), bool)
    rows = np.repeat(np.arange(lay.n_nets), lens)
    seen[rows, np.concatenate([train[m, :n] for m, n in enumerate(lens)])] = True
    use = ~seen & (lay.gender[:, None] == d.gender[None, :])                            # (M, P)
    count = use.sum(0)
    pred = (raw * use[..., None]).sum(0) / np.maximum(count, 1)[:, None]
    pred[count == 0] = np.nan
    return pred, count > 0


def linked_am_correlation(d: Triplets, pred: np.ndarray, covered: np.ndarray) -> dict[str, float]:
    """Per gender g, the mean over the AMs the world marks voice-linked for g (``d.truth[g] == 1``) of the Pearson
    correlation, across the covered people of g, between predicted (P, A) and true AMs; NaN for a gender without
    ground truth, linked AMs or 3 covered people. ~0 when the voice carries no information on the AMs."""
    out = {}
    for g in sorted(set(d.gender.tolist())):
        people = covered & (d.gender == g)
        linked = d.truth.get(g, np.zeros(d.n_ams)) == 1
        if people.sum() < 3 or not linked.any():
            out[g] = float("nan")
            continue
        p = pred[people][:, linked]
        t = d.ams[people][:, linked]
        p, t = p - p.mean(0), t - t.mean(0)
        r = (p * t).sum(0) / np.sqrt(np.maximum((p ** 2).sum(0) * (t ** 2).sum(0), 1e-30))
        out[g] = float(r.mean())
    return out


def truth_scores(data: Triplets, sel: Selection, genders) -> dict[str, float]:
    """Recall over the truly predictable AMs and false-positive rate over the truly unpredictable ones (pooled over
    genders), against the generator's ground truth; NaN where the data has none."""
    tp = fn = fp = tn = 0
    for g in genders:
        if g not in data.truth:
            return {"sfv_recall": float("nan"), "sfv_false_positive_rate": float("nan")}
        z, t = sel.z(g).astype(bool), data.truth[g]
        tp += int((z & (t == 1)).sum())
        fn += int((~z & (t == 1)).sum())
        fp += int((z & (t == 0)).sum())
        tn += int((~z & (t == 0)).sum())
    return {"sfv_recall": tp / max(tp + fn, 1) if tp + fn else float("nan"),
            "sfv_false_positive_rate": fp / max(fp + tn, 1) if fp + tn else float("nan"),
            "sfv_truly_predictable": tp + fn, "sfv_truly_unpredictable": fp + tn}


def evaluate(run: str | os.PathLike, data: str | os.PathLike | None = None, figures: bool = True) -> dict:
    """Selection + reconstruction + baselines; writes RUN/results.json and RUN/report.md; returns flat metrics."""
    lo = load_run(run, data)
    cfg, d, lay = lo.cfg, lo.data, lo.layout
    sel = selection(lo)
    calib = calibration(lo)
    tests = ensemble_test(lo, calib)
    res: dict[str, float] = {}
    err = {k: [] for k in ("sfv", "mean", "v2v_mixed", "v2v_gender", "mixed_mean")}
    maps: dict[str, list] = {}
    chosen: dict[str, np.ndarray] = {}
    exports: dict[str, dict] = {}
    nose = d.vertex_regions.get("nose") if d.vertex_regions else None
    mixed_mean = d.vertices[np.concatenate([lay.splits[g].train[0] for g in lay.genders])].mean(0)
    fitted = cfg.fit.lam_grid and any(sel.z(g).any() for g in lay.genders)
    oob = out_of_bag_ams(lo)[0] if fitted else None                                   # (P, A) validation predictions
    for gi, g in enumerate(lay.genders):
        people, m_hat, w_hat = tests[g]
        gname = "male" if g == "m" else "female" if g == "f" else g
        res[f"sfv_selected_{gname}"] = int(sel.z(g).sum())
        for fi, f in enumerate(sel.fracs[1:], start=1):   # Fig. 5.3: after filtering the most uncertain voices
            res[f"sfv_selected_{gname}_drop{int(f * 100)}"] = int(sel.z(g, fi).sum())
        top = sel.top(g, cfg.select.top_k)
        chosen[g] = top
        z = np.zeros(d.n_ams)
        z[top] = 1
        pool = np.concatenate([lay.splits[g].train[0], lay.splits[g].val1[0], lay.splits[g].val2[0]])
        fit = fit_from_pool(d, pool, m_hat, z, cfg, oob)
        mean, am_sd = fit.mean, fit.am_sd
        res[f"sfv_fit_lam_{gname}"] = fit.lam
        exports[g] = {"mean": mean, "basis": fit.basis, "scale": fit.scale, "am_sd": am_sd, "z": sel.z(g),
                      "top": top, "ci_u": sel.bounds[g][0].ci_u, "ratio": sel.bounds[g][0].mean, "lam": fit.lam}
        true = d.vertices[people]
        e_sfv = vertex_errors(fit.recon, true)                                        # (n, V)
        e_mean = vertex_errors(np.broadcast_to(mean.reshape(-1, 3), true.shape), true)
        err["sfv"].append(e_sfv)
        err["mean"].append(e_mean)
        v2v = v2v_predict(lo, people)
        err["v2v_mixed"].append(vertex_errors(v2v[0], true))
        err["v2v_gender"].append(vertex_errors(v2v[1 + gi], true))
        err["mixed_mean"].append(vertex_errors(np.broadcast_to(mixed_mean, true.shape), true))
        unc = (w_hat[:, top] / am_sd[top] ** 2).mean(1) if len(top) else np.zeros(len(people))
        maps[g] = []
        for f in cfg.select.filter_fracs:
            keep = keep_fraction(unc, f)
            maps[g].append((e_sfv[keep].mean(0), e_mean[keep].mean(0)))
            res[f"sfv_vertex_error_{g}_drop{int(f * 100)}"] = float(e_sfv[keep].mean())
            res[f"sfv_vertex_error_mean_shape_{g}_drop{int(f * 100)}"] = float(e_mean[keep].mean())
    cat = {k: np.concatenate(v) for k, v in err.items()}
    res["sfv_vertex_error"] = float(cat["sfv"].mean())
    res["sfv_vertex_error_mean_shape"] = float(cat["mean"].mean())
    res["sfv_vertex_error_nose"] = float(cat["sfv"][:, nose].mean()) if nose is not None else float("nan")
    res["sfv_vertex_error_nose_mean_shape"] = float(cat["mean"][:, nose].mean()) if nose is not None else float("nan")
    res["v2v_vertex_error_mixed"] = float(cat["v2v_mixed"].mean())
    res["v2v_vertex_error_within_gender"] = float(cat["v2v_gender"].mean())
    res["vertex_error_mixed_mean_shape"] = float(cat["mixed_mean"].mean())
    res["v2v_gain_mixed"] = 1.0 - res["v2v_vertex_error_mixed"] / res["vertex_error_mixed_mean_shape"]
    res["v2v_gain_within_gender"] = 1.0 - res["v2v_vertex_error_within_gender"] / res["sfv_vertex_error_mean_shape"]
    res.update(truth_scores(d, sel, lay.genders))
    res.update(linear_scores(d, cfg, lay.genders, nose))
    regions = face_regions_of(d)
    table = {}
    if regions:
        names = {"sfv": "SfV", "mean": "gender mean shape", "v2v_gender": "voice-to-vertex (within gender)",
                 "v2v_mixed": "voice-to-vertex (mixed)", "mixed_mean": "mixed mean shape"}
        table = {names[k]: shape_metrics.region_errors(cat[k], regions) for k in names}
        res.update({f"sfv_region_{key}_{reg}": v for key, name in (("sfv", "SfV"), ("mean", "gender mean shape"))
                    for reg, v in table[name].items()})
    r = Run.open(run)
    save_shape_model(r.path / "shape_model.npz", d, lay, exports, calib)
    figs = _figures(r.path / "figures", d, sel, chosen, maps, lay.genders) if figures else []
    r.write_results(res)
    md = report_markdown(res, sel, d, lay.genders, chosen, figs)
    if table:
        from ..cest.evaluate import region_markdown

        md += "\n## 3D shape error by face region (test voices, both genders)\n\n" + region_markdown(
            {("mean shape" if k == "gender mean shape" else k): v for k, v in table.items()},
            note="Per-vertex distance (mm) to the true mesh in the meshes' common frame (no alignment).")
    (r.path / "report.md").write_text(md, encoding="utf-8")
    np.savez(r.path / "selection.npz", **{f"{g}_{name}": np.stack([getattr(b, name) for b in sel.bounds[g]])
                                          for g in lay.genders for name in ("mean", "std", "ci_l", "ci_u", "z")},
             am_names=np.array(d.am_names))
    return res


def selection_table(sel: Selection, d: Triplets, genders, chosen) -> str:
    """Markdown: per gender the selected AMs with 1 - mean ratio and 1 - CI_u at each filter fraction."""
    lines = []
    for g in genders:
        lines.append(f"\n**{g}**: {int(sel.z(g).sum())} of {d.n_ams} AMs selected (CI_u < 1, alpha = "
                     f"{sel.bounds[g][0].alpha}); top used for Eq. 5.7: "
                     f"{', '.join(d.am_names[k] for k in chosen[g]) or 'none'}\n")
        head = " | ".join(f"1-CI_u drop {int(f * 100)}%" for f in sel.fracs)
        lines.append(f"| AM | region | truth | 1-mean | {head} |\n|---|---|---|---|" + "---|" * len(sel.fracs))
        order = np.argsort(sel.bounds[g][0].ci_u)
        for k in order[:12]:
            t = {1: "yes", 0: "no", -1: "weak"}[int(d.truth[g][k])] if g in d.truth else "?"
            cis = " | ".join(f"{1 - b.ci_u[k]:+.3f}" for b in sel.bounds[g])
            lines.append(f"| {d.am_names[k]} | {d.am_regions[k]} | {t} | {1 - sel.bounds[g][0].mean[k]:+.3f} | {cis} |")
    return "\n".join(lines)


def report_markdown(res, sel, d, genders, chosen, figs) -> str:
    keys = ["sfv_selected_male", "sfv_selected_female", "sfv_recall", "sfv_false_positive_rate",
            "sfv_linear_selected_m", "sfv_linear_selected_f", "sfv_linear_recall", "sfv_linear_false_positive_rate",
            "sfv_linear_vertex_error", "sfv_linear_vertex_error_nose", "sfv_linear_fit_lam_m", "sfv_linear_fit_lam_f",
            "sfv_fit_lam_male", "sfv_fit_lam_female", "sfv_vertex_error",
            "sfv_vertex_error_mean_shape", "sfv_vertex_error_nose", "sfv_vertex_error_nose_mean_shape",
            "v2v_vertex_error_mixed", "vertex_error_mixed_mean_shape", "v2v_gain_mixed",
            "v2v_vertex_error_within_gender", "v2v_gain_within_gender"]
    rows = "\n".join(f"| {k} | {res[k]:.4g} |" for k in keys if k in res and res[k] is not None)
    fig_md = "\n".join(f"![{Path(f).stem}]({Path(f).relative_to(Path(f).parents[1])})" for f in figs)
    note = (f"`sfv_*`: the convolutional estimators of the run. `sfv_linear_*`: Algorithm 2 with the ridge estimator "
            f"(`methods.sfv.linear`) on each person's `{LINEAR_FEATURES}` voice statistics, {LINEAR_REPEATS} repeats, "
            f"a row of its own.")
    return (f"# SfV: shape from voice\n\n| metric | value |\n|---|---|\n{rows}\n\n{note}\n\n## Selected AMs"
            f"{selection_table(sel, d, genders, chosen)}\n\n{fig_md}\n")


def _figures(out: Path, d: Triplets, sel: Selection, chosen, maps, genders) -> list[str]:
    """Fig. 5.3-5.5 (normalised errors with CIs), Fig. 5.6 (selected AMs by face region), Fig. 5.8 (error maps)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    files = []
    colors = ("0.6", "tab:red", "gold")
    fig, axes = plt.subplots(len(genders), 1, figsize=(12, 3.2 * len(genders)), squeeze=False)
    for ax, g in zip(axes[:, 0], genders):
        b0 = sel.bounds[g][0]
        order = np.argsort(b0.ci_u, kind="stable")
        show = np.concatenate([order[:20], order[-4:]]) if len(order) > 24 else order
        x = np.arange(len(show))
        width = 0.8 / len(sel.fracs)
        for i, (f, b) in enumerate(zip(sel.fracs, sel.bounds[g])):
            val = 1 - b.mean[show]
            err = np.stack([val - (1 - b.ci_u[show]), (1 - b.ci_l[show]) - val])
            ax.bar(x + i * width, val, width, yerr=err, color=colors[i % 3], capsize=2,
                   label=f"{int(round((1 - f) * 100))}% least uncertain")
        ax.axhline(0, color="k", lw=0.8)
        lo_y, hi_y = ax.get_ylim()
        ax.set_ylim(max(lo_y, -2.0), min(hi_y, 1.05))
        ax.set_xticks(x + 0.4 - width / 2, [d.am_names[k] for k in show], rotation=70, fontsize=7)
        ax.set_ylabel("1 - E/E^C")
        ax.set_title(f"{g}: normalised error and {int((1 - b0.alpha) * 100)}% one-sided CI (Eq. 5.5)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    files.append(str(out / "am_errors.png"))
    fig.savefig(files[-1], dpi=90)
    plt.close(fig)

    regions = sorted(set(d.am_regions))
    fig, ax = plt.subplots(figsize=(6, 3))
    for i, g in enumerate(genders):
        counts = [int(sum(sel.z(g)[k] for k in range(d.n_ams) if d.am_regions[k] == r)) for r in regions]
        ax.bar(np.arange(len(regions)) + 0.4 * i, counts, 0.4, label=g, color=("tab:blue", "tab:red")[i % 2])
    ax.set_xticks(np.arange(len(regions)) + 0.2, regions)
    ax.set_ylabel("selected AMs")
    ax.set_title("Predictable AMs by face region (Fig. 5.6)")
    ax.legend()
    fig.tight_layout()
    files.append(str(out / "am_regions.png"))
    fig.savefig(files[-1], dpi=90)
    plt.close(fig)
    files.extend(_am_face_figure(out, d, sel, genders))
    files.extend(_error_heatmaps(out, d, maps, genders, sel.fracs))

    template = d.vertices.mean(0)
    fig, axes = plt.subplots(len(genders), len(sel.fracs) + 1, figsize=(3 * (len(sel.fracs) + 1),
                                                                        3 * len(genders)), squeeze=False)
    vmax = max(float(m[1].max()) for g in genders for m in maps[g])
    for gi, g in enumerate(genders):
        for j, (f, (e, e_mean)) in enumerate(zip(sel.fracs, maps[g])):
            sc = axes[gi, j].scatter(template[:, 0], template[:, 1], c=e, s=2, cmap="jet", vmin=0, vmax=vmax)
            axes[gi, j].set_title(f"{g} SfV, {int(round((1 - f) * 100))}% kept: {e.mean():.3g}", fontsize=8)
        axes[gi, -1].scatter(template[:, 0], template[:, 1], c=maps[g][0][1], s=2, cmap="jet", vmin=0, vmax=vmax)
        axes[gi, -1].set_title(f"{g} mean shape: {maps[g][0][1].mean():.3g}", fontsize=8)
        for ax in axes[gi]:
            ax.set_aspect("equal")
            ax.axis("off")
    fig.colorbar(sc, ax=axes.ravel().tolist(), shrink=0.6, label="per-vertex error")
    files.append(str(out / "error_maps.png"))
    fig.savefig(files[-1], dpi=90)
    plt.close(fig)
    return files


def _am_face_figure(out: Path, d: Triplets, sel: Selection, genders) -> list[str]:
    """Fig. 5.6: the selected AMs drawn on each gender's mean face (face3d.viz), coloured by region, when the data
    are Table 5.1 AMs on meshes of the built-in model's topology."""
    from ...face3d.anthropometry import AM_LANDMARKS, NUM_AMS

    tri = _triangles(d.vertices.shape[1])
    if tri is None or d.am_landmarks is None or d.n_ams != NUM_AMS:
        return []
    import matplotlib.pyplot as plt

    from ...face3d import viz

    palette = {"nose": "tab:red", "mouth": "tab:orange", "eye": "tab:blue", "brow": "tab:cyan",
               "outline": "tab:green", "forehead": "tab:purple", "face": "tab:gray"}
    files = []
    for g in genders:
        chosen = np.nonzero(sel.z(g))[0]
        segs, cols = [], []
        for k in chosen:
            new = viz.am_segments([AM_LANDMARKS[k]])
            segs += new
            cols += [palette.get(d.am_regions[k], "k")] * len(new)
        mean = d.vertices[d.gender == g].mean(0)
        path = out / f"am_face_{g}.png"
        fig = viz.draw_ams(mean, torch.as_tensor(tri), mean[d.am_landmarks], segs, path, segment_colors=cols,
                           title=f"{g}: {len(chosen)} predictable AMs (colour = region)")
        plt.close(fig)
        files.append(str(path))
    return files


def _error_heatmaps(out: Path, d: Triplets, maps, genders, fracs) -> list[str]:
    """Fig. 5.8 on the rendered face (face3d.viz.error_heatmap), when the meshes have the built-in topology."""
    tri = _triangles(d.vertices.shape[1])
    if tri is None:
        return []
    import matplotlib.pyplot as plt

    from ...face3d import viz

    files = []
    vmax = max(float(m[1].max()) for g in genders for m in maps[g])
    for g in genders:
        mean = d.vertices[d.gender == g].mean(0)
        for f, (e, _) in zip(fracs, maps[g]):
            path = out / f"error_map_{g}_keep{int(round((1 - f) * 100))}.png"
            fig = viz.error_heatmap(mean, torch.as_tensor(tri), e, path, vmax=vmax, yaws=(0.0,),
                                    title=f"{g}, {int(round((1 - f) * 100))}% least uncertain: {e.mean():.3g}")
            plt.close(fig)
            files.append(str(path))
    return files


# ---------------------------------------------------------------------------------------------------- new voices
def shape_voices(run: str | os.PathLike, paths, genders, out: str | os.PathLike) -> list[dict]:
    """``voiceface shape``: reconstruct the faces of new recordings with a trained and evaluated run.

    paths: recordings; genders: 'm' / 'f' per recording (the per-gender estimators of Sec. 5.3). Per recording writes
    OUT/<stem>.obj (reconstruction), OUT/<stem>.json (every AM's prediction, uncertainty, selection) and
    OUT/<stem>.png (render beside the gender's mean face). A recording that cannot be read is reported in the
    returned list (``error``) and skipped. Returns one dict per recording.
    """
    from ...errors import InputError
    from .data import _bank, voice_features

    r = Run.open(run)
    sm_path = r.path / "shape_model.npz"
    if not sm_path.is_file():
        raise InputError(sm_path, "missing: run `voiceface evaluate sfv --run RUN` first")
    sm = dict(np.load(sm_path))
    if sm["am_landmarks"].size == 0:
        raise InputError(r.path, "this run's AMs are not Table 5.1 on a landmarked mesh; cannot reconstruct")
    conf = dict(r.config)
    conf.pop("seed"), conf.pop("data_source", None)
    cfg = cfgmod.from_dict(SfVConfig, conf)
    names = [str(n) for n in sm["am_names"]]
    n_ams, net_gender = len(names), sm["net_gender"].astype(str)
    n_nets = len(net_gender) * (n_ams if cfg.model.per_am else 1)
    net = AMNet(n_nets, 1 if cfg.model.per_am else n_ams, cfg.model.n_mels, cfg.model.channels,
                cfg.model.uncertainty)
    state = load_checkpoint(r.checkpoint_path)["models"]["best"]
    net.load_state_dict({k[len("net."):]: v for k, v in state.items() if k.startswith("net.")})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results, feats, ok = [], [], []
    for path, g in zip(paths, genders):
        if g not in set(net_gender):
            results.append({"voice": str(path), "error": f"no estimators for gender {g!r}"})
            continue
        try:
            feats.append(voice_features(path, cfg.data.max_test_s,
                                        "utterance" if cfg.data.feature_norm == "utterance" else "none"))
            ok.append((str(path), g))
        except InputError as e:
            results.append({"voice": str(path), "error": str(e)})
    if not ok:
        return results
    stats = sm["feat_stats"] if sm["feat_stats"].size else None   # 'global' normalisation: the run's statistics
    bank, _ = _bank(feats, "global" if stats is not None else "utterance", stats)
    n = len(ok)
    voice_g = np.array([g for _, g in ok])
    data = Triplets(np.array([p for p, _ in ok]), voice_g, np.zeros((n, n_ams)), np.zeros((n, 1, 3), np.float32),
                    bank, np.arange(n), tuple(names), tuple(sm["am_regions"].astype(str)), None)
    rows = [np.nonzero(voice_g == g)[0] if (voice_g == g).any() else np.array([0]) for g in net_gender]
    table, _ = pad_rows(rows)
    fps = cfg.data.frames_per_s
    m_hat, w_hat = predict(net, data, table, int(cfg.data.segment_s * fps), int(cfg.data.max_test_s * fps),
                           cfg.model.per_am)                                            # (M, n_max, A)
    raw = m_hat * sm["am_std"][:, None] + sm["am_mean"][:, None]
    var = w_hat * sm["calib"][:, None] * sm["am_std"][:, None] ** 2
    tri = _triangles(len(sm[f"{ok[0][1]}_mean"]) // 3)
    for g in sorted(set(voice_g)):
        nets = np.nonzero(net_gender == g)[0]
        who = rows[nets[0]]
        fm, fw = fuse_segments(torch.from_numpy(raw[nets, :len(who)]), torch.from_numpy(var[nets, :len(who)]), dim=0)
        fm, fw = fm.numpy(), fw.numpy()
        z = np.zeros(n_ams)
        z[sm[f"{g}_top"].astype(int)] = 1
        d_like = Triplets(data.identity, data.gender, data.ams, data.vertices, data.voices, data.rec_person,
                          data.am_names, data.am_regions, None,
                          am_landmarks=sm["am_landmarks"])
        lam = float(sm[f"{g}_lam"]) if f"{g}_lam" in sm else None                     # None: cfg (older models)
        shapes = reconstruct(d_like, sm[f"{g}_mean"], sm[f"{g}_basis"], sm[f"{g}_scale"], fm, sm[f"{g}_am_sd"], z,
                             cfg, lam)
        mean_face = sm[f"{g}_mean"].reshape(-1, 3)
        for j, i in enumerate(who):
            path = ok[i][0]
            stem = Path(path).stem
            _write_obj(out / f"{stem}.obj", shapes[j], tri)
            ams = [{"name": names[k], "region": str(sm["am_regions"][k]), "prediction": float(fm[j, k]),
                    "uncertainty_var": float(fw[j, k]), "selected": bool(sm[f"{g}_z"][k]),
                    "used_in_fit": bool(z[k]), "one_minus_ci_u": float(1 - sm[f"{g}_ci_u"][k])}
                   for k in range(n_ams)]
            info = {"voice": path, "gender": g, "obj": str(out / f"{stem}.obj"), "render": str(out / f"{stem}.png"),
                    "n_selected": int(sm[f"{g}_z"].sum()), "ams": ams,
                    "mean_abs_offset_from_mean_face": float(np.linalg.norm(shapes[j] - mean_face, axis=1).mean())}
            write_json(out / f"{stem}.json", info)
            _render_pair(out / f"{stem}.png", shapes[j], mean_face, tri, f"{stem} ({g})")
            results.append({k: v for k, v in info.items() if k != "ams"})
    return results


def linear_scores(d: Triplets, cfg: SfVConfig, genders, nose: np.ndarray | None = None) -> dict[str, float]:
    """Algorithm 2 with the ridge estimator (methods.sfv.linear, its own row): ``sfv_linear_*`` selected counts,
    recall and false-positive rate over LINEAR_REPEATS repeated splits (LINEAR_SPLIT: same D_e as the run's splits
    of equal D_e share and seed), and the Eq. 5.7 shapes of the D_e faces from the ridge's top selected AMs and its
    repeat-averaged predictions: ``sfv_linear_vertex_error`` (+ ``_nose`` with the ``nose`` (V,) vertex mask), to set
    beside ``sfv_vertex_error_mean_shape`` (the same D_e people and eigenfaces pool: all other people of the gender).
    """
    x = voice_stats(d)                                                               # (P, D) the ridge's features
    sel, lay = linear_selection(d, tuple(genders), LINEAR_REPEATS, LINEAR_SPLIT, 0, cfg.select.alpha, x=x)
    out = {f"sfv_linear_{k[4:]}": v for k, v in truth_scores(d, sel, lay.genders).items()}
    out.update({f"sfv_linear_selected_{g}": int(sel.z(g).sum()) for g in lay.genders})
    oob = linear_oob_ams(d, lay, x) if cfg.fit.lam_grid else None                    # (P, A) validation predictions
    errs, errs_mean = [], []
    for g, (people, m_hat) in linear_test_ams(d, lay, x).items():
        pool = np.setdiff1d(np.nonzero(d.gender == g)[0], people)
        z = np.zeros(d.n_ams)
        z[sel.top(g, cfg.select.top_k)] = 1
        fit = fit_from_pool(d, pool, m_hat, z, cfg, oob)
        out[f"sfv_linear_fit_lam_{g}"] = fit.lam
        errs.append(vertex_errors(fit.recon, d.vertices[people]))
        errs_mean.append(vertex_errors(np.broadcast_to(fit.mean.reshape(-1, 3), fit.recon.shape), d.vertices[people]))
    cat, cat_mean = np.concatenate(errs), np.concatenate(errs_mean)
    out["sfv_linear_vertex_error"] = float(cat.mean())
    out["sfv_linear_vertex_error_mean_shape"] = float(cat_mean.mean())
    out["sfv_linear_vertex_error_nose"] = float(cat[:, nose].mean()) if nose is not None else float("nan")
    out["sfv_linear_vertex_error_nose_mean_shape"] = (float(cat_mean[:, nose].mean()) if nose is not None
                                                      else float("nan"))
    return out


def face_regions_of(d: Triplets) -> dict[str, np.ndarray]:
    """Face regions (metrics.shape.face_regions: nose, mouth, eyes, cheeks, chin, forehead, face) of the meshes'
    mean when they have the built-in model's topology (its 68 landmarks); {} otherwise."""
    from ...face3d import builtin_model

    m = builtin_model()
    if m.num_vertices != d.vertices.shape[1]:
        return {}
    return shape_metrics.face_regions(d.vertices.mean(0), m.landmarks68.numpy())


def _triangles(n_vertices: int) -> np.ndarray | None:
    try:
        from ...face3d import builtin_model

        m = builtin_model()
        return m.triangles.numpy() if m.num_vertices == n_vertices else None
    except ImportError:
        return None


def _write_obj(path: Path, verts: np.ndarray, tri: np.ndarray | None) -> None:
    lines = [f"v {x:.5f} {y:.5f} {z:.5f}" for x, y, z in verts]
    if tri is not None:
        lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in tri]
    path.write_text("\n".join(lines) + "\n", encoding="ascii")


def _render_pair(path: Path, shape: np.ndarray, mean_face: np.ndarray, tri: np.ndarray | None, title: str) -> None:
    """Frontal Lambert-shaded renders of the reconstruction and the gender's mean face, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    fig, axes = plt.subplots(1, 3, figsize=(9, 3.4))
    diff = np.linalg.norm(shape - mean_face, axis=1)
    renders = None
    if tri is not None:
        from ...face3d import viz

        both = torch.as_tensor(np.stack([shape, mean_face]), dtype=torch.float32)
        renders = viz.render_views(both, torch.as_tensor(tri), size=256, yaws=(0.0,))[0]   # (2, H, W, 3)
    for i, (ax, v, name) in enumerate(((axes[0], shape, "reconstruction"), (axes[1], mean_face, "gender mean face"),
                                       (axes[2], mean_face, "|difference|"))):
        if renders is not None and i < 2:
            ax.imshow(renders[i])
        elif tri is None:
            ax.scatter(v[:, 0], v[:, 1], s=4, c=diff if name.startswith("|") else v[:, 2], cmap="viridis")
        else:
            t = v[tri]                                                                  # (F, 3, 3)
            nrm = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
            front = nrm[:, 2] > 0
            order = np.argsort(t[front, :, 2].mean(1))
            colors = plt.cm.jet(diff[tri[front]].mean(1)[order] / max(diff.max(), 1e-9))
            ax.add_collection(PolyCollection(t[front][order][:, :, :2], facecolors=colors, edgecolors=colors,
                                             linewidths=0.3))
            ax.autoscale()
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(name if not name.startswith("|") else f"|difference| (max {diff.max():.2g})", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
