"""CEST on the real shape benchmarks of Sec. 4.4.4, through the readers of :mod:`.data`.

* **AFLW2000-3D** (:func:`evaluate_aflw2000`): every ``<name>.jpg`` + ``<name>.mat`` (:func:`~.data.read_300wlp`).
  Each image is cropped from its ground-truth 68 landmarks like the training clips (the usual protocol crops from
  the ground truth), CEST predicts the shape and viewpoint, and the 68 model landmarks are projected and mapped back
  into the image. ``nme``: the 68-point 2D landmark NME in percent of the ground-truth box size sqrt(w h) (the
  3DDFA protocol), also per absolute-yaw bin (``Pose_Para``: [0, 30), [30, 60), [60, 90] degrees) and their mean
  (``nme_balanced``); ``nme_mean_face``: the model's mean shape at the neutral viewpoint scored the same way (no
  image). The thesis scores dense vertices of 3DMM fits instead; that needs the BFM model the fits refer to.
* **MICC Florence** (:func:`evaluate_micc`): the ``.obj`` scans (:func:`~.data.read_micc`, one subject per top
  folder) and the images found under each subject's folder (frames of its videos, or renders of the scans as in
  [104]'s protocol), detected, aligned and cropped by the face front end (``detector``, default dlib). Each image's
  predicted neutral identity shape is scored against the subject's first scan: the scan is cropped within
  ``eval.crop_radius`` (95 mm) of its nose tip, the prediction rigidly aligned (nose tip to nose tip, then ICP) and
  ``nme`` is the mean distance of the cropped scan's vertices to the aligned prediction in percent of the outer
  interocular distance (measured on the scan at the aligned prediction's eye corners). The scans are assumed in
  millimetres with y up and the face towards +z, as MICC's frontal models and our morphable model are; the nose
  tip is the scan's frontmost vertex. ``nme_mean_shape``: the model's mean shape scored the same way.

Both run on the CPU (a few thousand images; the ICP dominates MICC's time).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from ...engine import Run, write_json
from ...errors import InputError
from ...face import align
from ...metrics import shape as shape_metrics
from .data import ClipBank, HullSkinSegmenter, read_300wlp, read_micc
from .model import CEST

log = logging.getLogger(__name__)
YAW_BINS = ((0.0, 30.0), (30.0, 60.0), (60.0, 90.0))


def crop_records(records: list[dict], size: int, face_fraction: float, segmenter=None
                 ) -> tuple[ClipBank, np.ndarray]:
    """Images with landmarks (``image``, ``landmarks`` (68, 2) pixels) cropped like the training clips: a bank of
    one-frame clips and the (n, 2, 3) image-to-crop similarities."""
    from ...face.detect import load_image
    from .reconstruct import clip_alignment

    frames, lms, mats = [], [], []
    for r in records:
        m = clip_alignment(r["landmarks"], size, face_fraction)
        frames.append(align.warp_affine(load_image(r["image"]), m, size))
        lms.append(align.apply_transform(m, r["landmarks"]) + 0.5)
        mats.append(m)
    if not frames:
        raise InputError("images", "no images with landmarks")
    f, lm = np.stack(frames), np.stack(lms).astype(np.float32)
    n = len(f)
    names = [Path(r["image"]).stem for r in records]
    bank = ClipBank(frames=f, masks=(segmenter or HullSkinSegmenter())(f, lm), landmarks=lm, clip=np.arange(n),
                    person=np.arange(n), clip_names=names, person_names=names)
    return bank, np.stack(mats)


def to_image(points: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """Crop points (n, P, 2) in the renderer convention (pixel centre j + 0.5) mapped back into their images
    through the inverse of the (n, 2, 3) image-to-crop similarities: (n, P, 2) image pixels (centres at j)."""
    a, t = transforms[:, :, :2], transforms[:, :, 2]
    return np.einsum("nij,npj->npi", np.linalg.inv(a), np.asarray(points, np.float64) - 0.5 - t[:, None])


def landmark_nme(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """(n,) 2D landmark NME in percent: mean point distance of pred (n, 68, 2) to true (n, 68, 2) over the true
    landmarks' box size sqrt(w h)."""
    wh = true.max(1) - true.min(1)
    return 100.0 * np.linalg.norm(pred - true, axis=-1).mean(1) / np.sqrt(wh[:, 0] * wh[:, 1]).clip(1e-9)


@torch.no_grad()
def model_landmarks(model: CEST, bank: ClipBank, batch: int = 16, mean_face: bool = False) -> np.ndarray:
    """(n, 68, 2) crop positions (renderer convention) of the model's 68 landmarks for every bank frame: CEST's
    prediction, or the mean shape at the neutral viewpoint (``mean_face``)."""
    from ...face3d import geometry

    lm_idx = model.face.landmarks68
    if mean_face:
        from .reconstruct import canonical_viewpoint

        q = geometry.project(model.face.mean[None], canonical_viewpoint(model, 1))[0, lm_idx, :2].cpu().numpy()
        return np.broadcast_to(q, (len(bank), 68, 2)).copy()
    device = next(model.parameters()).device
    out = []
    for s in range(0, len(bank), batch):
        o = model(bank.tensors(np.arange(s, min(s + batch, len(bank))), device)["images"])
        out.append(o["verts_screen"][:, lm_idx, :2].cpu().numpy())
    return np.concatenate(out)


def aflw2000_scores(pred: np.ndarray, true: np.ndarray, yaw_deg: np.ndarray, prefix: str = "") -> dict:
    """Mean NME, per-yaw-bin NMEs and their mean of per-image landmarks pred / true (n, 68, 2)."""
    e = landmark_nme(pred, true)
    yaw = np.abs(yaw_deg)
    res = {f"{prefix}nme": float(e.mean())}
    bins = []
    for lo, hi in YAW_BINS:
        sel = (yaw >= lo) & ((yaw < hi) if hi < 90 else (yaw <= hi))
        res[f"{prefix}nme_yaw_{lo:.0f}_{hi:.0f}"] = float(e[sel].mean()) if sel.any() else None
        if not prefix:
            res[f"n_yaw_{lo:.0f}_{hi:.0f}"] = int(sel.sum())
        if sel.any():
            bins.append(float(e[sel].mean()))
    res[f"{prefix}nme_balanced"] = float(np.mean(bins))
    return res


def evaluate_aflw2000(run: str | os.PathLike, root: str | os.PathLike, *, model: CEST | None = None,
                      cfg=None) -> dict:
    """AFLW2000-3D landmark NME of a trained run (see module doc); writes ``RUN/aflw2000.json`` and
    ``RUN/aflw2000_ced.csv``; returns the results (keys ``aflw2000/...``)."""
    from .train import load_trained

    if model is None:
        model, cfg = load_trained(run)
    records = read_300wlp(root)
    if not records:
        raise InputError(root, "no AFLW2000-3D images (<name>.jpg with a readable <name>.mat)")
    bank, mats = crop_records(records, cfg.net.image_size, cfg.net.face_fraction)
    true = np.stack([r["landmarks"] for r in records])
    yaw = np.degrees(np.array([r["pose"][1] for r in records], np.float64))
    yaw = np.nan_to_num(yaw, nan=0.0)
    pred = to_image(model_landmarks(model, bank), mats)
    mean = to_image(model_landmarks(model, bank, mean_face=True), mats)
    res = {"n_images": len(records), **aflw2000_scores(pred, true, yaw), **aflw2000_scores(mean, true, yaw,
                                                                                          "mean_face_")}
    errs = landmark_nme(pred, true)
    th, ced = shape_metrics.ced_curve(errs, np.linspace(0, 20, 41))
    out = {f"aflw2000/{k}": v for k, v in res.items()}
    r = Run.open(run)
    write_json(r.path / "aflw2000.json", {**out, "per_image": dict(zip(bank.clip_names, errs.round(4).tolist()))})
    np.savetxt(r.path / "aflw2000_ced.csv", np.stack([th, ced], 1), delimiter=",", fmt="%.3f",
               header="nme_threshold,percent_below", comments="")
    return out


# ------------------------------------------------------------------------------------------------------- MICC

def scan_nme(pred: np.ndarray, scan: np.ndarray, lm_index: np.ndarray, nose_index: int, radius: float,
             iterations: int = 20) -> float:
    """NME (percent) of predicted vertices (V, 3) (model topology: ``lm_index`` (68,) its landmarks,
    ``nose_index`` its nose tip) against a scan's vertices (M, 3): see the module doc."""
    scan = np.asarray(scan, np.float64)
    pred = np.asarray(pred, np.float64)
    tip = scan[np.argmax(scan[:, 2])]
    crop = shape_metrics.crop_mask(scan, tip, radius)
    init = (np.eye(3), tip - pred[nose_index])
    _, _, aligned = shape_metrics.rigid_icp(pred, scan[crop], iterations, init=init)
    from scipy.spatial import cKDTree

    tree = cKDTree(scan)
    _, eyes = tree.query(aligned[lm_index[list(shape_metrics.IBUG_OUTER_EYE)]])
    norm = float(np.linalg.norm(scan[eyes[0]] - scan[eyes[1]]))
    dist, _ = cKDTree(aligned).query(scan[crop])
    return 100.0 * float(dist.mean()) / max(norm, 1e-9)


def micc_images(root: Path, identity: str, detector, size: int, face_fraction: float) -> tuple[ClipBank | None,
                                                                                                list[str]]:
    """The face crops of the images under ``root/identity`` (a bank of one-frame clips) and their paths; images
    in a folder holding a scan (its texture maps) are not faces to reconstruct; images without a face or
    unreadable are reported and skipped."""
    from ...face.detect import load_image

    from ...face.detect import IMAGE_EXTENSIONS

    folder = root / identity
    scan_dirs = {p.parent for p in folder.rglob("*.obj")}                 # their .bmp / .jpg are textures
    files = sorted(f for f in folder.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file()
                   and f.parent not in scan_dirs)
    records = []
    for f in files:
        try:
            records.append({"image": f, "landmarks": np.asarray(detector.find(load_image(f), f).landmarks)})
        except InputError as e:
            log.warning("%s", e)
    if not records:
        return None, []
    bank, _ = crop_records(records, size, face_fraction)
    return bank, [str(r["image"]) for r in records]


@torch.no_grad()
def evaluate_micc(run: str | os.PathLike, root: str | os.PathLike, *, detector=None, model: CEST | None = None,
                  cfg=None) -> dict:
    """MICC shape NME of a trained run (see module doc); writes ``RUN/micc.json`` and ``RUN/micc_ced.csv``;
    returns the results (keys ``micc/...``)."""
    from .evaluate import neutral_shapes
    from .train import load_trained

    if model is None:
        model, cfg = load_trained(run)
    root = Path(root)
    scans = read_micc(root)
    if detector is None:
        from ...face.detect import FaceDetector
        detector = FaceDetector()
    face = model.face
    lm_idx = face.landmarks68.numpy()
    nose = int(lm_idx[30])
    mean = face.mean.numpy()
    rows, done = [], set()
    for s in scans:
        if s["identity"] in done or not (root / s["identity"]).is_dir():
            continue
        done.add(s["identity"])
        bank, paths = micc_images(root, s["identity"], detector, cfg.net.image_size, cfg.net.face_fraction)
        if bank is None:
            log.warning("MICC subject %s: no image with a face under %s", s["identity"], root / s["identity"])
            continue
        coeffs = model(bank.tensors(np.arange(len(bank)), next(model.parameters()).device)["images"])["coeffs"]
        shapes = neutral_shapes(face, coeffs.cpu().numpy())
        base = scan_nme(mean, s["vertices"], lm_idx, nose, cfg.eval.crop_radius, cfg.eval.icp_iterations)
        for p, shp in zip(paths, shapes):
            rows.append((s["identity"], p, scan_nme(shp, s["vertices"], lm_idx, nose, cfg.eval.crop_radius,
                                                    cfg.eval.icp_iterations), base))
    if not rows:
        raise InputError(root, "no MICC subject with both a scan and an image with a face")
    errs = np.array([r[2] for r in rows])
    out = {"micc/nme": float(errs.mean()), "micc/nme_median": float(np.median(errs)),
           "micc/nme_mean_shape": float(np.mean([r[3] for r in rows])), "micc/n_images": len(rows),
           "micc/n_subjects": len(done)}
    r = Run.open(run)
    write_json(r.path / "micc.json", {**out, "per_image": [{"subject": a, "image": b, "nme": round(c, 4)}
                                                          for a, b, c, _ in rows]})
    th, ced = shape_metrics.ced_curve(errs, np.linspace(0, 20, 41))
    np.savetxt(r.path / "micc_ced.csv", np.stack([th, ced], 1), delimiter=",", fmt="%.3f",
               header="nme_threshold,percent_below", comments="")
    return out


def evaluate_benchmarks(run: str | os.PathLike, *, aflw2000=None, micc=None, detector=None) -> dict:
    """:func:`evaluate_aflw2000` and / or :func:`evaluate_micc` of a run; their results are merged into
    RUN/results.json (other keys kept) and tabled in RUN/report_benchmarks.md. Returns them."""
    from .train import load_trained

    model, cfg = load_trained(run)
    res: dict = {}
    if aflw2000 is not None:
        res.update(evaluate_aflw2000(run, aflw2000, model=model, cfg=cfg))
    if micc is not None:
        res.update(evaluate_micc(run, micc, detector=detector, model=model, cfg=cfg))
    r = Run.open(run)
    old = r.read_results() if (r.path / "results.json").is_file() else {}
    merged = {**old, **res}
    r.write_results(merged)
    lines = ["# CEST on the real shape benchmarks", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {'n/a' if v is None else f'{v:.3f}' if isinstance(v, float) else v} |"
              for k, v in merged.items() if k.startswith(("aflw2000/", "micc/"))]
    lines += ["", "AFLW2000-3D: 68-point 2D landmark NME, percent of the ground-truth box size sqrt(w h), by absolute "
              "yaw; mean_face_*: the model's mean shape at the neutral viewpoint. MICC: shape NME against the scans "
              "(95 mm around the nose tip, ICP), percent of the outer interocular distance; nme_mean_shape: the "
              "model's mean shape."]
    (r.path / "report_benchmarks.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return res
