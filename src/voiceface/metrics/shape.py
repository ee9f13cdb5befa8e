"""3D shape metrics of Sec. 4.4.4: rigid ICP alignment, NME (mean per-vertex distance normalised by the outer
3D interocular distance) and cumulative error distribution (CED) curves (Fig. 4.9).

Nearest neighbours use ``scipy.spatial.cKDTree`` (vectorised queries); the rigid fit is Kabsch / Umeyama without
scale. NME follows the usual protocol: the prediction is aligned to the ground truth (an optional correspondence
initialisation, then ICP on nearest neighbours), and the error is the mean distance from every ground-truth
vertex (optionally cropped around the nose tip) to its nearest aligned predicted vertex.
"""
from __future__ import annotations

import numpy as np

IBUG_OUTER_EYE = (36, 45)


def kabsch(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares rotation R (3, 3) and translation t (3,) with ``R src_i + t ~ dst_i``; src, dst (N, 3)."""
    w = np.ones(len(src)) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    h = ((src - mu_s) * w[:, None]).T @ (dst - mu_d)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    r = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return r, mu_d - r @ mu_s


def rigid_icp(source: np.ndarray, target: np.ndarray, iterations: int = 20, *, init: tuple | None = None,
              tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rigid ICP of ``source`` (N, 3) onto ``target`` (M, 3) (point-to-point, nearest neighbours from target
    to source, so a cropped target pulls the matching part of a larger source).

    Args:
        init: optional (R, t) start (default: centroid alignment).
    Returns:
        R (3, 3), t (3,), aligned source (N, 3).
    """
    from scipy.spatial import cKDTree

    src = np.asarray(source, np.float64)
    tgt = np.asarray(target, np.float64)
    r, t = init if init is not None else (np.eye(3), tgt.mean(0) - src.mean(0))
    prev = np.inf
    for _ in range(iterations):
        moved = src @ r.T + t
        dist, nn = cKDTree(moved).query(tgt)                                # target vertex -> nearest source
        err = float(np.mean(dist))
        r, t = kabsch(src[nn], tgt)
        if abs(prev - err) < tol * max(err, 1e-12):
            break
        prev = err
    return r, t, src @ r.T + t


def outer_interocular(landmarks68: np.ndarray) -> float:
    """Outer 3D interocular distance: between iBUG points 36 and 45 of (68, 3) landmarks."""
    lm = np.asarray(landmarks68, np.float64)
    return float(np.linalg.norm(lm[IBUG_OUTER_EYE[0]] - lm[IBUG_OUTER_EYE[1]]))


def crop_mask(vertices: np.ndarray, center: np.ndarray, radius: float) -> np.ndarray:
    """(V,) bool: vertices (V, 3) within ``radius`` of ``center`` (3,) (e.g. 95 mm around the nose tip)."""
    return np.linalg.norm(np.asarray(vertices) - np.asarray(center)[None], axis=1) <= radius


def nme(pred: np.ndarray, true: np.ndarray, norm: float, *, true_mask: np.ndarray | None = None,
        correspondence: bool = False, init_points: tuple | None = None, iterations: int = 20) -> float:
    """Normalised mean error of one reconstruction, in percent of ``norm`` (the outer interocular distance).

    Args:
        pred: (N, 3) predicted vertices.  true: (M, 3) ground-truth vertices (a scan or a model shape).
        norm: normaliser (outer interocular distance of the ground truth).
        true_mask: optional (M,) bool region of the ground truth that is scored (e.g. :func:`crop_mask`).
        correspondence: pred and true share the topology (N = M): initialise the alignment by Kabsch on the
            corresponding vertices of the scored region before ICP.
        init_points: optional (pred points (P, 3), true points (P, 3)), e.g. 68 landmarks on each, to initialise
            the alignment by Kabsch when there is no dense correspondence (a scan); without either, ICP starts
            from the centroids and may stop in a local minimum for large misalignments.
    """
    pred = np.asarray(pred, np.float64)
    true = np.asarray(true, np.float64)
    m = np.ones(len(true), bool) if true_mask is None else np.asarray(true_mask, bool)
    tgt = true[m]
    init = None
    if correspondence:
        init = kabsch(pred[m], tgt)
    elif init_points is not None:
        init = kabsch(np.asarray(init_points[0], np.float64), np.asarray(init_points[1], np.float64))
    _, _, aligned = rigid_icp(pred, tgt, iterations, init=init)
    from scipy.spatial import cKDTree

    dist, _ = cKDTree(aligned).query(tgt)
    return 100.0 * float(dist.mean()) / norm


def nme_batch(preds, trues, norms, *, true_masks=None, correspondence: bool = False, iterations: int = 20
              ) -> np.ndarray:
    """(B,) NMEs (percent) of B (pred, true) pairs (each an ICP of its own)."""
    masks = true_masks if true_masks is not None else [None] * len(preds)
    return np.array([nme(p, t, n, true_mask=m, correspondence=correspondence, iterations=iterations)
                     for p, t, n, m in zip(preds, trues, norms, masks)])


def ced_curve(errors, thresholds=None) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution (Fig. 4.9): fraction (%) of samples with error below each threshold.
    Returns (thresholds (T,), percent (T,))."""
    e = np.sort(np.asarray(errors, np.float64))
    th = np.linspace(0.0, max(10.0, float(e.max()) if e.size else 10.0), 101) if thresholds is None \
        else np.asarray(thresholds, np.float64)
    return th, 100.0 * np.searchsorted(e, th, side="right") / max(len(e), 1)


def rotation_error_deg(r_pred: np.ndarray, r_true: np.ndarray) -> np.ndarray:
    """Geodesic angle (degrees) between rotation matrices (B, 3, 3) and (B, 3, 3)."""
    rel = np.einsum("bji,bjk->bik", np.asarray(r_pred), np.asarray(r_true))
    cos = np.clip((np.trace(rel, axis1=1, axis2=2) - 1.0) / 2.0, -1.0, 1.0)
    return np.degrees(np.arccos(cos))


def similarity_vertex_errors(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Per-vertex errors (n, V) of shapes ``pred`` (n, V, 3) against ``true`` (n, V, 3) in the same topology, each
    pred first aligned to its true shape by the least-squares similarity (rotation, isotropic scale, translation;
    Umeyama), batched over n. Scale is removed, so a uniformly larger copy of the true shape scores 0."""
    p = np.asarray(pred, np.float64)
    t = np.asarray(true, np.float64)
    p0 = p - p.mean(1, keepdims=True)                                        # (n, V, 3)
    t0 = t - t.mean(1, keepdims=True)
    h = np.einsum("nvi,nvj->nij", p0, t0)                                    # (n, 3, 3)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.einsum("nji,nkj->nik", vt, u)))             # det(V U^T), no reflections
    fix = np.ones((len(p), 3))
    fix[:, 2] = d
    r = np.einsum("nji,nj,nkj->nik", vt, fix, u)                             # R = V diag(1, 1, d) U^T
    rotated = np.einsum("nij,nvj->nvi", r, p0)
    scale = (rotated * t0).sum((1, 2)) / np.maximum((rotated ** 2).sum((1, 2)), 1e-12)
    return np.linalg.norm(scale[:, None, None] * rotated - t0, axis=-1)


# face regions of a template in the built-in topology, by the nearest of its 68 iBUG landmarks (Sec. 5.3.3's
# regions; the thesis's error tables and Fig. 5.8 break shape errors down this way)
REGION_LANDMARKS: dict[str, tuple[int, ...]] = {
    "nose": tuple(range(27, 36)),
    "mouth": tuple(range(48, 68)),
    "eyes": tuple(range(36, 48)),
    "cheeks": tuple(range(0, 5)) + tuple(range(12, 17)),
    "chin": tuple(range(5, 12)),
    "forehead": tuple(range(17, 27)),
}
REGIONS = tuple(REGION_LANDMARKS)


def face_regions(template: np.ndarray, landmarks68: np.ndarray, radius: float = 95.0) -> dict[str, np.ndarray]:
    """Face regions of a template mesh: each vertex within ``radius`` of the nose tip (landmark 30) goes to the
    region of its nearest landmark, except that mouth / nose vertices lateral of the mouth corners / nose wings
    are cheeks and vertices above the eyebrows (larger y than the brows' mean) go to the
    forehead whatever their nearest landmark. Also ``face``: every vertex within ``radius``.

    Args:
        template: (V, 3) vertices (y up).  landmarks68: (68,) vertex indices of the iBUG landmarks.
    Returns:
        {region: (V,) bool} for :data:`REGIONS` and ``face``; the regions partition ``face``.
    """
    v = np.asarray(template, np.float64)
    lm_idx = np.asarray(landmarks68)
    lm = v[lm_idx]
    face = np.linalg.norm(v - lm[30], axis=1) <= radius
    nearest = np.linalg.norm(v[:, None] - lm[None], axis=2).argmin(1)                # (V,)
    label = np.empty(68, object)
    for name, ids in REGION_LANDMARKS.items():
        label[list(ids)] = name
    region = label[nearest]
    side = np.abs(v[:, 0])                                                            # lateral of the mouth / nose
    region[(region == "mouth") & (side > np.abs(lm[[48, 54], 0]).max())] = "cheeks"
    region[(region == "nose") & (side > 1.6 * np.abs(lm[31:36, 0]).max())] = "cheeks"
    region[v[:, 1] > lm[17:27, 1].mean()] = "forehead"
    out = {name: face & (region == name) for name in REGIONS}
    out["face"] = face
    return out


def region_errors(errors: np.ndarray, regions: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean of per-vertex errors (n, V) over all shapes and each region's vertices ((V,) bool masks), plus ``all``
    (every vertex)."""
    e = np.asarray(errors, np.float64)
    out = {"all": float(e.mean())}
    out.update({name: float(e[:, m].mean()) if m.any() else float("nan") for name, m in regions.items()})
    return out
