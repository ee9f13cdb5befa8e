"""Evaluate CEST on the simulated world's test clips (Sec. 4.4.4 + what only a simulation can measure).

Per test frame (at most ``data.max_test_frames``, spread evenly over the test clips):

* ``nme``: shape NME (percent of the outer 3D interocular distance) after rigid ICP, over the true
  (identity + expression) vertices within ``eval.crop_radius`` model units of the nose tip; ``nme_mean_shape``:
  the model's mean shape (no image) scored the same way; CED curves (Fig. 4.9).
* ``photometric_error``: mean |I - I_hat| on the 0-255 scale over the true face mask and the 3 channels
  (Table 4.3), I_hat rendered with the frame's own reflectance.
* ``albedo_error``: mean |k R - A_true| (0-255) over the scored vertices, with k the per-frame, per-channel
  least-squares gain (reflectance and light are only defined up to such a gain); ``albedo_error_raw`` without it.
* ``light_error``: mean |s_pred - s_true| of the grey shading of the front hemisphere (600 directions), each
  divided by its mean (gain-free), as a fraction; ``sh_energy``: non-constant SH energy sum_{k>=1} l_k^2 / l_0^2
  (0 for an isotropic light; ``sh_energy_true`` for the world's lights).
* ``pose_error_deg``: geodesic angle between predicted and true head rotations.

Baselines beside CEST: the mean shape, IEST (``iest_run``, another run trained with ``net.conditional=false``)
and a classic per-image optimisation (landmark + photometric fitting of viewpoint, shape, albedo coefficients and
SH light of the same model by Adam; ``*_fit``), on the first ``eval.fit_frames`` frames.
"""
from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

import numpy as np
import torch

from ...data.controls import derangement
from ...engine import Run, dist, write_json
from ...face3d import geometry
from ...metrics import shape as shape_metrics
from .config import EvalConfig
from .data import ClipBank, load_sim_clips
from .loss import coefficient_energy, landmark_loss, photometric
from .model import CEST

log = logging.getLogger(__name__)
RESULT_NAMES = ("shape_error", "shape_error_mean_shape", "shape_error_iest", "nme", "nme_mean_shape", "nme_iest",
                "photometric_error", "photometric_error_iest",
                "albedo_error", "light_error", "pose_error_deg")


def test_indices(bank: ClipBank, limit: int) -> np.ndarray:
    """(n,) frame indices spread evenly over the bank (all when it holds at most ``limit`` frames)."""
    if len(bank) <= limit:
        return np.arange(len(bank))
    return np.unique(np.linspace(0, len(bank) - 1, limit).round().astype(int))


@torch.no_grad()
def predict(model: CEST, bank: ClipBank, idx: np.ndarray, batch: int = 16) -> dict[str, np.ndarray]:
    """Run the estimator on frames ``idx`` and re-render them with their own reflectance.
    Returns numpy arrays: viewpoint (n, 7), coeffs (n, K), shape (n, V, 3), reflectance (n, V, 3), light
    (n, 9|3, 9), render (n, 3, S, S), render_mask (n, 1, S, S), uv_reflectance, texture (n, 3, U, U)."""
    model.eval()
    device = next(model.parameters()).device     # runs where the model is; results come back to the CPU
    keys = ("viewpoint", "coeffs", "shape", "reflectance", "light", "uv_reflectance", "texture")
    out: dict[str, list] = {k: [] for k in keys + ("render", "render_mask")}
    for s in range(0, len(idx), batch):
        b = bank.tensors(idx[s:s + batch], device)
        o = model(b["images"])
        sh = model.shading(o["shape"], o["viewpoint"], o["light"])
        r = model.render(o["verts_screen"], sh, o["reflectance"][:, None], face_id=o["face_id"])
        for k in keys:
            out[k].append(o[k].cpu().numpy())
        out["render"].append(r["image"][:, 0].cpu().numpy())
        out["render_mask"].append(r["mask"].cpu().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def _front_directions(n: int = 600, seed: int = 0) -> torch.Tensor:
    d = np.random.default_rng(seed).standard_normal((n, 3))
    d[:, 2] = np.abs(d[:, 2])
    return torch.as_tensor(d / np.linalg.norm(d, axis=1, keepdims=True), dtype=torch.float32)


def grey_light(light) -> torch.Tensor:
    """(n, 9) grey SH: per-colour lights (n, 27) or (n, 3, 9) are averaged over the channels."""
    li = torch.as_tensor(np.asarray(light), dtype=torch.float32)
    return li.reshape(len(li), -1, 9).mean(1)


def light_error(pred, true) -> np.ndarray:
    """(n,) gain-free shading error on the front hemisphere (see module doc)."""
    d = _front_directions()
    sp = geometry.sh_shading(d[None].expand(len(pred), -1, -1), grey_light(pred))[..., 0]     # (n, D)
    st = geometry.sh_shading(d[None].expand(len(true), -1, -1), grey_light(true))[..., 0]
    sp = sp / sp.mean(1, keepdim=True).clamp_min(1e-6)
    st = st / st.mean(1, keepdim=True).clamp_min(1e-6)
    return (sp - st).abs().mean(1).numpy()


def sh_energy(light) -> np.ndarray:
    """(n,) non-constant SH energy sum_{k>=1} l_k^2 / l_0^2 of grey lights."""
    g = grey_light(light)
    return (g[:, 1:].pow(2).sum(1) / g[:, 0].pow(2).clamp_min(1e-12)).numpy()


def albedo_errors(pred: np.ndarray, true: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gain-aligned, raw) (n,) mean absolute albedo errors on 0-255 over each frame's scored vertices.
    pred, true (n, V, 3) in [0, 1]; masks (n, V) bool."""
    w = masks[..., None].astype(np.float64)
    k = (w * pred * true).sum(1) / np.maximum((w * pred * pred).sum(1), 1e-12)              # (n, 3)
    denom = 3.0 * np.maximum(w.sum((1, 2)), 1.0)
    aligned = (w * np.abs(k[:, None] * pred - true)).sum((1, 2)) / denom
    raw = (w * np.abs(pred - true)).sum((1, 2)) / denom
    return 255.0 * aligned, 255.0 * raw


def truth_for(face, bank: ClipBank, idx: np.ndarray) -> dict[str, np.ndarray]:
    """True shapes (n, V, 3), albedo (n, V, 3), pose (n, 7), light (n, 27) of frames ``idx`` (simulated world)."""
    t = bank.truth
    with torch.no_grad():
        shp = face.shape(torch.as_tensor(t["coeffs"][idx]), torch.as_tensor(t["expression"][idx])
                         if face.num_expression else None).numpy()
    return {"shape": shp, "albedo": t["albedo"][bank.clip[idx]], "pose": t["pose"][idx], "light": t["light"][idx]}


def frame_metrics(face, pred: dict[str, np.ndarray], bank: ClipBank, idx: np.ndarray, ecfg: EvalConfig
                  ) -> dict[str, np.ndarray]:
    """Per-frame metric arrays (n,) of predictions ``pred`` (from :func:`predict` or the fitting baseline)."""
    truth = truth_for(face, bank, idx)
    lm = face.landmarks68.numpy()
    nose = truth["shape"][:, lm[30]]                                                        # (n, 3)
    masks = np.linalg.norm(truth["shape"] - nose[:, None], axis=2) <= ecfg.crop_radius       # (n, V)
    norms = [shape_metrics.outer_interocular(s[lm]) for s in truth["shape"]]
    nme = shape_metrics.nme_batch(pred["shape"], truth["shape"], norms, true_masks=masks, correspondence=True,
                                  iterations=ecfg.icp_iterations)
    img = bank.frames[idx].transpose(0, 3, 1, 2).astype(np.float64) / 255.0
    m = bank.masks[idx][:, None].astype(np.float64)
    photo = 255.0 * (np.abs(pred["render"] - img) * m).sum((1, 2, 3)) / np.maximum(3.0 * m.sum((1, 2, 3)), 1.0)
    alb, alb_raw = albedo_errors(pred["reflectance"], truth["albedo"], masks)
    pose = shape_metrics.rotation_error_deg(_rotations(pred["viewpoint"]), _rotations(truth["pose"]))
    return {"nme": nme, "photometric_error": photo, "albedo_error": alb, "albedo_error_raw": alb_raw,
            "light_error": light_error(pred["light"], truth["light"]), "sh_energy": sh_energy(pred["light"]),
            "sh_energy_true": sh_energy(truth["light"]), "pose_error_deg": pose}


def _rotations(viewpoints) -> np.ndarray:
    """(n, 3, 3) rotation matrices of viewpoints (n, 7)."""
    return geometry.rotation_matrix(torch.as_tensor(np.asarray(viewpoints)[:, 1:4], dtype=torch.float64)).numpy()


def mean_shape_nme(face, bank: ClipBank, idx: np.ndarray, ecfg: EvalConfig) -> np.ndarray:
    """(n,) NME of the model's mean shape (no image) against the true shapes."""
    truth = truth_for(face, bank, idx)
    lm = face.landmarks68.numpy()
    nose = truth["shape"][:, lm[30]]
    masks = np.linalg.norm(truth["shape"] - nose[:, None], axis=2) <= ecfg.crop_radius
    mean = face.mean.numpy()
    return shape_metrics.nme_batch([mean] * len(idx), truth["shape"],
                                   [shape_metrics.outer_interocular(s[lm]) for s in truth["shape"]],
                                   true_masks=masks, correspondence=True, iterations=ecfg.icp_iterations)


def fit_per_image(model: CEST, batch: dict[str, torch.Tensor], steps: int, lr: float, lambda_kp: float = 1.0,
                  lambda_rg: float = 0.1) -> dict[str, np.ndarray]:
    """The classic baseline: per-image gradient-descent fitting of the same morphable model (viewpoint, identity +
    expression coefficients, albedo coefficients, 9 SH) to landmarks + masked photometric error (Eq. 4.9, 4.12 with
    the model's albedo space instead of a learned reflectance). No learning; all images fitted jointly (batched).
    Returns the :func:`predict` keys (numpy)."""
    face = model.face
    n = len(batch["images"])
    v = model.v0.expand(n, -1).clone().requires_grad_(True)
    coeffs = torch.zeros(n, model.n_id + model.n_exp, requires_grad=True)
    acoef = torch.zeros(n, face.num_albedo, requires_grad=True)
    light = model.light0[:9].expand(n, -1).clone().requires_grad_(True)
    opt = torch.optim.Adam([{"params": [coeffs, acoef, light]}, {"params": [v], "lr": lr * 0.2}], lr=lr)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        shp = model.shape_from_coeffs(coeffs)
        q = geometry.project(shp, v)
        alb = face.albedo(acoef) if face.num_albedo else face.albedo(batch=n)
        sh = model.shading(shp, v, light)
        img = model.render(q, sh, alb[:, None])["image"]
        loss = (photometric(batch["images"], img, batch["masks"]).mean()
                + lambda_kp * landmark_loss(q, face.landmarks68, batch["landmarks"], model.cfg.image_size)
                + lambda_rg * coefficient_energy(torch.cat([coeffs, acoef], 1)))
        loss.backward()
        opt.step()
    with torch.no_grad():
        shp = model.shape_from_coeffs(coeffs)
        q = geometry.project(shp, v)
        alb = face.albedo(acoef) if face.num_albedo else face.albedo(batch=n)
        r = model.render(q, model.shading(shp, v, light), alb[:, None])
    return {"viewpoint": v.detach().numpy(), "coeffs": coeffs.detach().numpy(), "shape": shp.numpy(),
            "reflectance": alb.numpy(), "light": light.detach().numpy(), "render": r["image"][:, 0].numpy(),
            "render_mask": r["mask"].numpy()}


def partner_frames(person: np.ndarray, rng: np.random.Generator, group: np.ndarray | None = None) -> np.ndarray:
    """(n,) for each frame ``i`` a frame of another person: the people (ids in ``person`` (n,)) are deranged
    within their ``group`` (optional (n,) labels, e.g. gender; constant per person), and the k-th frame of a person
    is paired with frame k modulo the partner's count. A control for "the prediction depends on this image"."""
    person = np.asarray(person)
    people = np.unique(person)
    label = np.zeros(len(person), int) if group is None else np.unique(np.asarray(group), return_inverse=True)[1]
    label_of = np.zeros(people.max() + 1, int)
    label_of[person] = label
    partner = np.arange(people.max() + 1)
    for g in np.unique(label_of[people]):
        members = people[label_of[people] == g]
        partner[members] = members[derangement(len(members), rng)]
    order = np.argsort(person, kind="stable")                                 # frames grouped by person
    counts = np.bincount(person, minlength=len(partner))
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(person), int)
    rank[order] = np.arange(len(person)) - start[person[order]]
    other = partner[person]
    return order[start[other] + rank % np.maximum(counts[other], 1)]


@torch.no_grad()
def specificity_errors(model: CEST, bank: ClipBank, idx: np.ndarray, partners: np.ndarray) -> dict[str, np.ndarray]:
    """Errors of the predictions for frames ``idx`` (n,) against their own frame's truth and against the truth of
    the ``partners`` (n,) frames (other people, :func:`partner_frames`), each (n,) per key ``<name>_own`` /
    ``<name>_partner``: ``landmark_px`` (mean 2D distance of the 68 projected model landmarks to the frame's
    landmarks, pixels), ``photometric`` (mean |I - I_hat| on 0-255 over the frame's true mask) and ``shape``
    (mean per-vertex error of the predicted neutral identity shape to the person's true neutral shape after a
    similarity alignment, model units). A model that ignores the image scores own ~ partner on every key."""
    pred = predict(model, bank, idx)
    face = model.face
    coeffs = torch.as_tensor(pred["coeffs"][:, :face.num_identity])
    true_id = torch.as_tensor(bank.truth["coeffs"])
    neutral = face.shape(coeffs).numpy()                                                  # (n, V, 3)
    screen = geometry.project(torch.as_tensor(pred["shape"]), torch.as_tensor(pred["viewpoint"])).numpy()
    lm = screen[:, face.landmarks68.numpy(), :2]                                          # (n, 68, 2)
    img = bank.frames.transpose(0, 3, 1, 2).astype(np.float64) / 255.0                   # (N, 3, S, S)
    out = {}
    for name, frames in (("own", idx), ("partner", partners)):
        m = bank.masks[frames][:, None].astype(np.float64)
        out[f"photometric_{name}"] = 255.0 * (np.abs(pred["render"] - img[frames]) * m).sum((1, 2, 3)) / \
            np.maximum(3.0 * m.sum((1, 2, 3)), 1.0)
        out[f"landmark_px_{name}"] = np.linalg.norm(lm - bank.landmarks[frames], axis=-1).mean(1)
        true = face.shape(true_id[frames]).numpy()
        out[f"shape_{name}"] = shape_metrics.similarity_vertex_errors(neutral, true).mean(1)
    return out


def neutral_shapes(face, coeffs: np.ndarray) -> np.ndarray:
    """(n, V, 3) neutral identity shapes (expression dropped) of predicted coefficients (n, Ki [+ Ke])."""
    with torch.no_grad():
        return face.shape(torch.as_tensor(np.asarray(coeffs)[:, :face.num_identity], dtype=torch.float32)).numpy()


def shape_errors(face, coeffs: dict[str, np.ndarray], bank: ClipBank, idx: np.ndarray) -> dict[str, np.ndarray]:
    """Per-vertex 3D shape errors (n, V) (model units, mm for the built-in model) of each method's predicted
    neutral identity shape against the person's true neutral mesh, each after a similarity alignment
    (:func:`~voiceface.metrics.shape.similarity_vertex_errors`), plus ``mean shape`` (the model's mean, no image).
    ``coeffs``: {method: (n, Ki + Ke) predicted coefficients of frames ``idx``}."""
    true = neutral_shapes(face, bank.truth["coeffs"][idx])
    out = {name: shape_metrics.similarity_vertex_errors(neutral_shapes(face, c), true) for name, c in coeffs.items()}
    out["mean shape"] = shape_metrics.similarity_vertex_errors(np.broadcast_to(face.mean.numpy(), true.shape), true)
    return out


def region_table(face, errors: dict[str, np.ndarray], crop_radius: float) -> dict[str, dict[str, float]]:
    """{method: {region: mean error}} over the face regions of the model's mean shape (``all``: every vertex,
    ``face``: within ``crop_radius`` of the nose tip; nose, mouth, eyes, cheeks, chin, forehead partition it)."""
    regions = shape_metrics.face_regions(face.mean.numpy(), face.landmarks68.numpy(), crop_radius)
    return {name: shape_metrics.region_errors(e, regions) for name, e in errors.items()}


def region_markdown(table: dict[str, dict[str, float]], note: str = "Per-vertex distance (mm) to the true neutral "
                    "mesh after similarity alignment.") -> str:
    """Markdown table: one row per method, one column per region, with each row's ratio to ``mean shape`` on
    the face region."""
    cols = list(next(iter(table.values())))
    ref = table.get("mean shape", {}).get("face")
    lines = ["| method | " + " | ".join(cols) + " | face / mean shape |", "|---" * (len(cols) + 2) + "|"]
    for name, row in table.items():
        ratio = f"{row['face'] / ref:.3f}" if ref else "-"
        lines.append(f"| {name} | " + " | ".join(f"{row[c]:.3f}" for c in cols) + f" | {ratio} |")
    return "\n".join(lines) + f"\n\n{note}\n"


def shape_error_maps(face, errors: dict[str, np.ndarray], path, vmax: float | None = None) -> Path:
    """Fig. 5.8-style per-vertex error maps (mean over frames) of each method on the mean face, one row each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ...face3d import viz

    tri = face.triangles
    hi = vmax or max(float(np.percentile(e.mean(0), 99)) for e in errors.values())
    imgs = []
    for name, e in errors.items():
        fig = viz.error_heatmap(face.mean, tri, e.mean(0), vmax=hi, yaws=(0.0, 0.6), size=160,
                                title=f"{name}: {e.mean():.2f}")
        fig.canvas.draw()
        imgs.append(np.asarray(fig.canvas.buffer_rgba())[..., :3])
        plt.close(fig)
    w = max(i.shape[1] for i in imgs)
    grid = np.concatenate([np.pad(i, ((0, 0), (0, w - i.shape[1]), (0, 0)), constant_values=255) for i in imgs])
    viz.save_png(grid, path)
    return Path(path)


def _mean(d: dict[str, np.ndarray], suffix: str = "") -> dict[str, float]:
    return {k + suffix: float(np.mean(v)) for k, v in d.items()}


def evaluate(run: str | os.PathLike, data: str | os.PathLike | None = None, *, iest_run: str | None = None,
             label: str = "CEST", fit_baseline: bool = True, figures: bool = True,
             aflw2000: str | os.PathLike | None = None, micc: str | os.PathLike | None = None,
             detector=None, max_test_frames: int | None = None) -> dict:
    """Evaluate the run on the test clips of its data (or ``data``); write RUN/results.json, RUN/report.md and
    RUN/ced.csv. ``iest_run`` (or ``eval.iest_run`` in the config) supplies the IEST baseline; without it the
    ``*_iest`` results are null. Returns the flat results.

    ``aflw2000`` / ``micc``: evaluate on those real benchmarks instead (plus the test clips when ``data`` is also
    given; :mod:`.benchmarks`, ``detector`` the face front end for MICC's images): their ``aflw2000/...`` and
    ``micc/...`` results are merged into RUN/results.json and tabled in RUN/report_benchmarks.md.
    ``max_test_frames``: score at most that many test frames (default: the run's ``data.max_test_frames``, which is
    part of the run's config and so cannot change on resume; this changes only the evaluation)."""
    if max_test_frames is not None and max_test_frames < 1:
        from ...errors import ConfigError
        raise ConfigError(f"max_test_frames must be at least 1, got {max_test_frames}")
    if aflw2000 is not None or micc is not None:
        from .benchmarks import evaluate_benchmarks

        res = evaluate(run, data, iest_run=iest_run, label=label, fit_baseline=fit_baseline,
                       figures=figures, max_test_frames=max_test_frames) if data is not None else {}
        return {**res, **evaluate_benchmarks(run, aflw2000=aflw2000, micc=micc, detector=detector)}
    from .train import load_trained

    model, cfg = load_trained(run)
    r = Run.open(run)
    data = data or _train_data(run)
    if Path(data).is_dir() and not (Path(data) / "manifest.csv").is_file():
        from ...errors import InputError
        raise InputError(data, "this run trained on real frame folders, which carry no 3D ground truth: evaluate it "
                               "with --aflw2000 DIR / --micc DIR, or on a simulated world with --data WORLD")
    bank = load_sim_clips(data, cfg.data.test_splits)
    if not bank.truth:
        from ...errors import InputError
        raise InputError(data, "the test clips carry no ground truth (coeffs, pose, light, albedo): evaluation needs "
                               "the simulated world; use `voiceface reconstruct` for real photos")
    idx = test_indices(bank, max_test_frames or cfg.data.max_test_frames)
    pred = predict(model.to(dist.default_device(cfg.device)), bank, idx)    # auto: on CUDA when present
    model.cpu()                                  # the metrics and the per-image fitting baseline run on the CPU
    per = frame_metrics(model.face, pred, bank, idx, cfg.eval)
    res: dict = _mean(per)
    res["nme_median"] = float(np.median(per["nme"]))
    res["nme_mean_shape"] = float(np.mean(mean_shape_nme(model.face, bank, idx, cfg.eval)))
    res["n_test_frames"] = int(len(idx))
    iest = iest_run or cfg.eval.iest_run
    res["nme_iest"] = res["photometric_error_iest"] = None
    coeffs = {label: pred["coeffs"]}
    if iest:
        im, _ = load_trained(iest)
        ipred = predict(im, bank, idx)
        ip = frame_metrics(im.face, ipred, bank, idx, cfg.eval)
        res["nme_iest"], res["photometric_error_iest"] = float(ip["nme"].mean()), float(ip["photometric_error"].mean())
        coeffs["IEST"] = ipred["coeffs"]
    shape_err = shape_errors(model.face, coeffs, bank, idx)
    regions = region_table(model.face, shape_err, cfg.eval.crop_radius)
    res.update(_shape_keys(regions, label))
    if fit_baseline and cfg.eval.fit_steps > 0:
        fidx = idx[:cfg.eval.fit_frames]
        with torch.enable_grad():
            fp = fit_per_image(model, bank.tensors(fidx), cfg.eval.fit_steps, cfg.eval.fit_lr)   # same for every run
        res.update(_mean(frame_metrics(model.face, fp, bank, fidx, cfg.eval), "_fit"))
        res["nme_cest_on_fit_frames"] = float(per["nme"][:len(fidx)].mean())
        res["photometric_error_cest_on_fit_frames"] = float(per["photometric_error"][:len(fidx)].mean())
        fit_err = shape_errors(model.face, {"per-image fit": fp["coeffs"], label: pred["coeffs"][:len(fidx)]},
                               bank, fidx)
        fit_regions = region_table(model.face, fit_err, cfg.eval.crop_radius)
        res["shape_error_fit"] = fit_regions["per-image fit"]["face"]
        res["shape_error_cest_on_fit_frames"] = fit_regions[label]["face"]
    th, ced = shape_metrics.ced_curve(per["nme"], np.linspace(0, 20, 41))
    with open(r.path / "ced.csv", "w", newline="") as f:
        csv.writer(f).writerows([("nme_threshold", "percent_below"), *zip(th.round(3), ced.round(3))])
    r.write_results(res)
    write_json(r.path / "shape_regions.json", regions)
    md = report_markdown(res, label) + "\n## 3D shape error by face region\n\n" + region_markdown(regions)
    if figures:
        shape_error_maps(model.face, shape_err, r.path / "shape_error_maps.png")
        md += "\n![shape error maps](shape_error_maps.png)\n"
    (r.path / "report.md").write_text(md, encoding="utf-8")
    return res


def _shape_keys(regions: dict[str, dict[str, float]], label: str) -> dict[str, float]:
    """Flat result keys ``shape_error[_iest|_mean_shape][_<region>]`` of a :func:`region_table`."""
    suffix = {label: "", "IEST": "_iest", "mean shape": "_mean_shape", "per-image fit": "_fit"}
    out = {}
    for name, row in regions.items():
        for reg, v in row.items():
            out["shape_error" + suffix[name] + ("" if reg == "face" else f"_{reg}")] = v
    return out


def _train_data(run) -> str:
    from ...engine import load_checkpoint

    return load_checkpoint(Path(run) / "checkpoint.pt")["extra"]["data"]


def report_markdown(res: dict, label: str = "CEST") -> str:
    def f(x, d=2):
        return "n/a" if x is None else f"{x:.{d}f}"

    lines = [f"# {label} on the simulated world's test clips ({res.get('n_test_frames')} frames)", "",
             "| metric | value |", "|---|---|"]
    for k in RESULT_NAMES + ("albedo_error_raw", "sh_energy", "sh_energy_true", "nme_fit", "photometric_error_fit",
                             "nme_cest_on_fit_frames", "photometric_error_cest_on_fit_frames", "shape_error_fit",
                             "shape_error_cest_on_fit_frames"):
        if k in res:
            lines.append(f"| {k} | {f(res[k], 3)} |")
    lines += ["", "NME in percent of the outer interocular distance (after rigid ICP); photometric and albedo errors "
              "on the 0-255 scale; shape_error: mean per-vertex distance (model units = mm) of the neutral identity "
              "shape to the true mesh within crop_radius of the nose tip, after similarity alignment; light error as "
              "a fraction of the mean shading (gain-free); *_fit: per-image "
              "optimisation baseline on the first frames (compare with *_cest_on_fit_frames)."]
    return "\n".join(lines) + "\n"


ABLATION_COLUMNS = ("shape_error", "nme", "photometric_error", "albedo_error", "albedo_error_raw", "light_error",
                    "sh_energy", "pose_error_deg")


def ablation_table(rows: dict[str, dict], out: str | os.PathLike) -> str:
    """Write ``out/ablation.csv`` and ``out/ablation.md`` (one row per variant / baseline); returns the Markdown."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "ablation.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("variant",) + ABLATION_COLUMNS)
        for name, r in rows.items():
            w.writerow((name,) + tuple("" if r.get(c) is None else f"{r[c]:.4f}" for c in ABLATION_COLUMNS))
    md = ["| variant | " + " | ".join(ABLATION_COLUMNS) + " |", "|---" * (len(ABLATION_COLUMNS) + 1) + "|"]
    for name, r in rows.items():
        md.append(f"| {name} | " + " | ".join("-" if r.get(c) is None else f"{r[c]:.3f}" for c in ABLATION_COLUMNS)
                  + " |")
    text = "\n".join(md) + "\n"
    (out / "ablation.md").write_text(text, encoding="utf-8")
    return text


# ---------------------------------------------------------------------------------------------------------------
# figures (Fig. 4.4, 4.8, 4.9)

def _figure(rows: list[list[np.ndarray]], row_labels, col_labels, path, cell: float = 1.1):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nr, nc = len(rows), len(rows[0])
    fig, axes = plt.subplots(nr, nc, figsize=(cell * nc + 1.2, cell * nr + 0.4), squeeze=False)
    for i, row in enumerate(rows):
        for j, im in enumerate(row):
            ax = axes[i][j]
            ax.imshow(im)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(row_labels[i], fontsize=7, rotation=0, ha="right", va="center")
            if i == 0:
                ax.set_title(col_labels[j], fontsize=7)
    fig.tight_layout(pad=0.2)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def ablation_figure(runs: dict[str, str | os.PathLike], bank: ClipBank, frame: int, path) -> Path:
    """Fig. 4.4 on one test frame: per variant the input, overlay, reflectance UV map A, illuminated texture T,
    geometry and illumination (sphere), both canonical."""
    from .reconstruct import overlay, render_views, sphere_image, to_uint8
    from .train import load_trained

    rows, labels = [], []
    b = bank.tensors(np.array([frame]))
    for name, run in runs.items():
        model, _ = load_trained(run)
        with torch.no_grad():
            o = model(b["images"])
            sh = model.shading(o["shape"], o["viewpoint"], o["light"])
            r = model.render(o["verts_screen"], sh, o["reflectance"][:, None], face_id=o["face_id"])
            geo = render_views(model, o["shape"], o["reflectance"], o["light"])["shading"]
            sph = sphere_image(o["light"], 48)
        rows.append([to_uint8(b["images"][0]), to_uint8(overlay(b["images"], r["image"][:, 0], r["mask"])[0]),
                     to_uint8(o["uv_reflectance"][0]), to_uint8(o["texture"][0]), to_uint8(geo[0]),
                     to_uint8((sph[0] / sph[0].max().clamp_min(1e-6)).clamp(0, 1))])
        labels.append(name)
    return _figure(rows, labels, ["input", "overlay", "reflectance", "illum. texture", "geometry", "light"], path)


def relight_figure(run, bank: ClipBank, frames: np.ndarray, path) -> Path:
    """Fig. 4.8: the reflectance of each test frame re-rendered in the canonical view under the estimated lights of
    the other frames (lighting transfer); first column the input, second its own light."""
    from .reconstruct import render_views, to_uint8
    from .train import load_trained

    model, _ = load_trained(run)
    b = bank.tensors(np.asarray(frames))
    with torch.no_grad():
        o = model(b["images"])
        rows = []
        for i in range(len(frames)):
            n = len(frames)
            v = render_views(model, o["shape"][i:i + 1].expand(n, -1, -1), o["reflectance"][i:i + 1].expand(n, -1, -1),
                             o["light"])["shaded"]
            rows.append([to_uint8(b["images"][i])] + [to_uint8(v[i])] + [to_uint8(v[k]) for k in range(n) if k != i])
    cols = ["input", "own light"] + [f"light {k + 1}" for k in range(len(frames) - 1)]
    return _figure(rows, [f"face {i + 1}" for i in range(len(frames))], cols, path)


def ced_figure(curves: dict[str, np.ndarray], path) -> Path:
    """Fig. 4.9: CED curves (percent of frames with NME below x) of several methods."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 3.2))
    for name, errs in curves.items():
        th, pc = shape_metrics.ced_curve(errs, np.linspace(0, 6, 121))
        ax.plot(th, pc, label=f"{name} ({np.mean(errs):.2f})")
    ax.set_xlabel("NME (% of outer interocular distance)")
    ax.set_ylabel("frames below (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
