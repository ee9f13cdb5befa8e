"""CEST data: frames grouped by clip (Sec. 4.4.1) from the simulated world (default) and adapters for the real
layouts, plus the face-region mask M of Eq. 4.9 for real images.

* :class:`ClipBank`: every frame of the clips of some splits in memory, with the clip and person ids used to group
  minibatches, and (on the simulated world) per-frame ground truth: identity + expression coefficients, pose,
  light, true albedo, true mask.
* :func:`sample_batch`: ``clips_per_batch`` clips x ``frames_per_clip`` frames, deterministic from (seed, step),
  with each frame's partners (Eq. 4.11: one other frame of the same clip, or of the same person's other clips for
  ablation (f); Eq. 4.10: every frame of the group).
* Real layouts (adapters): :func:`frame_folders` (VoxCeleb-style, one folder of frames per video; landmarks from
  the face front end, cached), :func:`read_300wlp` (300W-LP / AFLW2000-3D ``.jpg`` + ``.mat``),
  :func:`read_micc` (MICC Florence ``.obj`` scans).
* :class:`FaceSegmenter`: the interface for M on real images; :class:`HullSkinSegmenter` is our stand-in for the
  thesis's CelebAMask-HQ segmentation network (landmark convex hull intersected with a skin-colour model).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
import torch

from ...data.manifest import read_manifest
from ...errors import InputError

log = logging.getLogger(__name__)


@dataclass
class ClipBank:
    """Frames of many clips in memory.

    frames (N, S, S, 3) uint8; masks (N, S, S) bool; landmarks (N, 68, 2) float32 (renderer convention, pixel
    centre at j + 0.5); clip (N,) int clip index; person (N,) int person index; clip_names, person_names;
    truth: optional per-frame ground truth {coeffs (N, Ki), expression (N, Ke), pose (N, 7), light (N, 27)} and
    per-clip albedo (C, V, 3) (``albedo``) - empty for real data.
    """

    frames: np.ndarray
    masks: np.ndarray
    landmarks: np.ndarray
    clip: np.ndarray
    person: np.ndarray
    clip_names: list[str]
    person_names: list[str]
    truth: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def size(self) -> int:
        return int(self.frames.shape[1])

    def tensors(self, idx: np.ndarray, device="cpu") -> dict[str, torch.Tensor]:
        """Frames ``idx`` (n,) as images (n, 3, S, S) float in [0, 1], masks (n, 1, S, S), landmarks (n, 68, 2)."""
        img = torch.from_numpy(self.frames[idx]).permute(0, 3, 1, 2).float().div(255.0)
        return {"images": img.to(device), "masks": torch.from_numpy(self.masks[idx])[:, None].float().to(device),
                "landmarks": torch.from_numpy(self.landmarks[idx]).float().to(device)}


def load_sim_clips(data, splits: Sequence[str] = ("train",), max_clips: int | None = None) -> ClipBank:
    """The clips (modality ``clip``) of a manifest / world folder in ``splits`` (``WORLD/clips/<id>_<k>.npz``)."""
    from .. import resolve_data

    manifest_path = resolve_data(data)
    root = manifest_path.parent
    items = [it for it in read_manifest(manifest_path) if it.modality == "clip" and it.split in splits]
    if not items:
        raise InputError(manifest_path, f"no video clips in splits {list(splits)} (build a world with clips)")
    items = items[:max_clips] if max_clips else items
    persons = sorted({it.identity for it in items})
    pidx = {p: i for i, p in enumerate(persons)}
    cols: dict[str, list] = {k: [] for k in ("frames", "masks", "landmarks", "clip", "person", "coeffs",
                                             "expression", "pose", "light")}
    albedo = []
    for c, it in enumerate(items):
        path = root / it.path
        try:
            with np.load(path) as d:
                z = {k: d[k] for k in d.files}
        except (OSError, ValueError) as e:
            raise InputError(path, f"cannot read clip ({e})") from None
        n = len(z["frames"])
        for k in ("frames", "masks", "landmarks"):
            cols[k].append(z[k])
        cols["clip"].append(np.full(n, c))
        cols["person"].append(np.full(n, pidx[it.identity]))
        if "coeffs" in z:
            cols["coeffs"].append(np.repeat(z["coeffs"][None], n, 0))
            cols["expression"].append(z["expression"])
            cols["pose"].append(z["pose"])
            cols["light"].append(z["light"].reshape(n, -1))
            albedo.append(z["albedo"])
    truth = {}
    if len(cols["coeffs"]) == len(items):
        truth = {k: np.concatenate(cols[k]).astype(np.float32) for k in ("coeffs", "expression", "pose", "light")}
        truth["albedo"] = np.stack(albedo).astype(np.float32)
    return ClipBank(frames=np.concatenate(cols["frames"]), masks=np.concatenate(cols["masks"]).astype(bool),
                    landmarks=np.concatenate(cols["landmarks"]).astype(np.float32),
                    clip=np.concatenate(cols["clip"]), person=np.concatenate(cols["person"]),
                    clip_names=[Path(it.path).stem for it in items], person_names=persons, truth=truth)


def sample_batch(bank: ClipBank, rng: np.random.Generator, clips_per_batch: int, frames_per_clip: int,
                 scope: str = "clip", objective: str = "stochastic") -> tuple[np.ndarray, np.ndarray]:
    """Frame indices of one minibatch grouped by clip (or by person when ``scope='video'``) and their partners.

    Returns:
        idx (N,) frame indices into the bank, N = clips_per_batch * frames_per_clip, group-major;
        partners (N, P) *batch positions*: ``stochastic``: P = 1, another frame of the same group (itself when the
        group has one frame); ``full``: P = frames_per_clip, every frame of the group (itself included).
    """
    groups = bank.clip if scope == "clip" else bank.person
    ids = np.unique(groups)
    chosen = rng.choice(ids, size=clips_per_batch, replace=len(ids) < clips_per_batch)
    idx = []
    for g in chosen:
        members = np.flatnonzero(groups == g)
        idx.append(rng.choice(members, size=frames_per_clip, replace=len(members) < frames_per_clip))
    idx = np.concatenate(idx)
    n = frames_per_clip
    base = np.repeat(np.arange(clips_per_batch) * n, n)                         # (N,) first position of the group
    if objective == "full":
        partners = base[:, None] + np.arange(n)[None]
    elif n == 1:
        partners = base[:, None]
    else:
        own = np.tile(np.arange(n), clips_per_batch)
        shift = rng.integers(1, n, size=len(idx))                               # another frame: j != i
        partners = (base + (own + shift) % n)[:, None]
    return idx, partners


# ---------------------------------------------------------------------------------------------------------------
# the face-region mask M for real images (Eq. 4.9)

class FaceSegmenter(Protocol):
    """Anything that gives the face region M of images: ``__call__(images (B, S, S, 3) uint8, landmarks
    (B, 68, 2) pixels) -> (B, S, S) bool``. Plug a real face-parsing network in here."""

    def __call__(self, images: np.ndarray, landmarks: np.ndarray) -> np.ndarray: ...


class HullSkinSegmenter:
    """Stand-in for the thesis's CelebAMask-HQ segmentation network (not available here): the convex hull of the
    68 landmarks (the jaw line and the brows, raised by ``brow_raise`` of the face height to include the forehead)
    intersected with a skin-colour model fitted per image (a Gaussian in (Cb, Cr) estimated from the pixels of the
    cheeks and nose, keeping pixels within ``max_sigma`` Mahalanobis units). Eyes, mouth interior, hair and
    occluders of other colours fall out; on greyscale images (Cb = Cr = 0) the colour test keeps everything and M
    is the hull alone."""

    def __init__(self, brow_raise: float = 0.12, max_sigma: float = 3.0):
        self.brow_raise = brow_raise
        self.max_sigma = max_sigma

    def __call__(self, images: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        from matplotlib.path import Path as MplPath
        from scipy.spatial import ConvexHull

        b, s = images.shape[0], images.shape[1]
        yy, xx = np.mgrid[0:s, 0:s] + 0.5
        pix = np.stack([xx.ravel(), yy.ravel()], 1)
        out = np.zeros((b, s, s), bool)
        for i in range(b):                      # per image: hull polygon test (vectorised over pixels)
            lm = np.asarray(landmarks[i], np.float64)
            brows = lm[17:27].copy()
            brows[:, 1] -= self.brow_raise * (lm[8, 1] - lm[27, 1])
            pts = np.concatenate([lm[:17], brows])
            hull = pts[ConvexHull(pts).vertices]
            inside = MplPath(hull).contains_points(pix).reshape(s, s)
            out[i] = inside & self._skin(images[i].astype(np.float64), lm)
        return out

    def _skin(self, img: np.ndarray, lm: np.ndarray) -> np.ndarray:
        r, g, bch = img[..., 0], img[..., 1], img[..., 2]
        cb = -0.168736 * r - 0.331264 * g + 0.5 * bch
        cr = 0.5 * r - 0.418688 * g - 0.081312 * bch
        s = img.shape[0]
        seeds = np.concatenate([lm[[1, 2, 3, 13, 14, 15]] * 0.6 + lm[[30]] * 0.4, lm[28:31]])
        xy = np.clip(np.round(seeds - 0.5).astype(int), 0, s - 1)
        samp = np.stack([cb[xy[:, 1], xy[:, 0]], cr[xy[:, 1], xy[:, 0]]], 1)
        mu = samp.mean(0)
        cov = np.cov(samp.T) + np.eye(2) * 4.0                                  # floor: 2 grey levels of spread
        d = np.stack([cb - mu[0], cr - mu[1]], -1)
        m2 = np.einsum("...i,ij,...j->...", d, np.linalg.inv(cov), d)
        return m2 <= self.max_sigma ** 2


# ---------------------------------------------------------------------------------------------------------------
# real layouts

def _image_files(folder: Path) -> list[Path]:
    from ...face.detect import IMAGE_EXTENSIONS

    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)


def _detect_cached(files: list[Path], detector, cache: Path) -> np.ndarray:
    """(n, 68, 2) landmarks of each file in its own pixels (NaN where no face), cached in ``cache`` (.npz)."""
    names = np.array([f.name for f in files])
    if cache.is_file():
        with np.load(cache) as z:
            if z["names"].shape == names.shape and (z["names"] == names).all():
                return z["landmarks"]
    from ...face.detect import load_image

    lms = np.full((len(files), 68, 2), np.nan)
    for i, f in enumerate(files):
        try:
            lms[i] = detector.find(load_image(f), f).landmarks
        except InputError as e:
            log.warning("%s", e)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, names=names, landmarks=lms)
    return lms


def frame_folders(root, size: int, *, detector=None, segmenter: FaceSegmenter | None = None,
                  face_fraction: float = 0.27, cache_dir=None) -> ClipBank:
    """VoxCeleb-style face-frame folders as a :class:`ClipBank`: every folder under ``root`` that holds images is
    one video (clip) of frames; its person is the folder above it (``<id>/<video>/<frame>.jpg``) or the folder
    itself when it lies directly under ``root``. Landmarks come from the face front end (``detector``, default
    dlib) and are cached per folder in ``cache_dir`` (default ``root/.cest_cache``); frames without a face are
    skipped; crops are framed like the training clips (:func:`~.reconstruct.clip_alignment`); M from
    ``segmenter`` (default :class:`HullSkinSegmenter`)."""
    from ...face import align
    from ...face.detect import load_image
    from .reconstruct import clip_alignment

    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "not a folder of face-frame folders")
    det = detector
    if det is None:
        from ...face.detect import FaceDetector
        det = FaceDetector()
    seg = segmenter or HullSkinSegmenter()
    cache_dir = Path(cache_dir) if cache_dir else root / ".cest_cache"
    folders = sorted({f.parent for f in root.rglob("*") if f.is_file() and not f.name.startswith(".")
                      and ".cest_cache" not in f.parts} - {root})
    frames, lms, clip, person, clip_names, persons = [], [], [], [], [], []
    for folder in folders:
        files = _image_files(folder)
        if not files:
            continue
        rel = folder.relative_to(root)
        lm_all = _detect_cached(files, det, cache_dir / ("__".join(rel.parts) + ".npz"))
        ok = [i for i in range(len(files)) if np.isfinite(lm_all[i]).all()]
        if not ok:
            continue
        pname = rel.parts[0] if len(rel.parts) > 1 else rel.parts[-1]
        if pname not in persons:
            persons.append(pname)
        for i in ok:
            m = clip_alignment(lm_all[i], size, face_fraction)
            frames.append(align.warp_affine(load_image(files[i]), m, size))
            lms.append(align.apply_transform(m, lm_all[i]) + 0.5)       # renderer convention
            clip.append(len(clip_names))
            person.append(persons.index(pname))
        clip_names.append(str(rel))
    if not frames:
        raise InputError(root, "no face found in any frame")
    frames_a, lms_a = np.stack(frames), np.stack(lms).astype(np.float32)
    return ClipBank(frames=frames_a, masks=seg(frames_a, lms_a), landmarks=lms_a, clip=np.array(clip),
                    person=np.array(person), clip_names=clip_names, person_names=persons)


def read_300wlp(root) -> list[dict]:
    """300W-LP / AFLW2000-3D: every ``<name>.jpg`` with a ``<name>.mat`` beside it. Returns per image
    {image, landmarks (68, 2) pixels (x, y; from ``pt3d_68`` when present, else ``pt2d``), landmarks3d (68, 3) or
    None, pose (pitch, yaw, roll) radians, pose_params (7,) ``Pose_Para`` as stored}. Images whose .mat lacks
    68 landmarks are reported and skipped."""
    import scipy.io

    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "not a 300W-LP / AFLW2000-3D folder")
    out = []
    for jpg in sorted(root.rglob("*.jpg")):
        mat = jpg.with_suffix(".mat")
        if not mat.is_file():
            continue
        try:
            m = scipy.io.loadmat(str(mat))
        except (OSError, ValueError, NotImplementedError, TypeError) as e:
            log.warning("%s", InputError(mat, f"not a readable .mat ({e})"))
            continue
        lm3 = None
        if "pt3d_68" in m and np.asarray(m["pt3d_68"]).shape[-1] == 68:
            lm3 = np.asarray(m["pt3d_68"], np.float64).reshape(-1, 68).T[:, :3]
            lm2 = lm3[:, :2]
        elif "pt2d" in m and np.asarray(m["pt2d"]).shape[-1] == 68:
            lm2 = np.asarray(m["pt2d"], np.float64).reshape(2, 68).T
        else:
            log.warning("%s", InputError(mat, "no 68 landmarks (pt3d_68 / pt2d)"))
            continue
        pose = np.asarray(m.get("Pose_Para", np.full((1, 7), np.nan)), np.float64).reshape(-1)
        out.append({"image": jpg, "landmarks": lm2, "landmarks3d": lm3, "pose": pose[:3], "pose_params": pose})
    return out


def image_bank(records: list[dict], size: int, *, segmenter: FaceSegmenter | None = None,
               face_fraction: float = 0.27) -> ClipBank:
    """Single images with landmarks (e.g. :func:`read_300wlp`) as a bank of one-frame clips (one person each),
    cropped like the training clips; the thesis trains on 300W-LP this way (symmetry only, n = 1)."""
    from ...face import align
    from ...face.detect import load_image
    from .reconstruct import clip_alignment

    frames, lms = [], []
    for r in records:
        m = clip_alignment(r["landmarks"], size, face_fraction)
        frames.append(align.warp_affine(load_image(r["image"]), m, size))
        lms.append(align.apply_transform(m, r["landmarks"]) + 0.5)
    if not frames:
        raise InputError("images", "no images with landmarks")
    f, lm = np.stack(frames), np.stack(lms).astype(np.float32)
    n = len(f)
    return ClipBank(frames=f, masks=(segmenter or HullSkinSegmenter())(f, lm), landmarks=lm, clip=np.arange(n),
                    person=np.arange(n), clip_names=[Path(r["image"]).stem for r in records],
                    person_names=[Path(r["image"]).stem for r in records])


def read_micc(root) -> list[dict]:
    """MICC Florence 3D faces: every ``.obj`` scan under ``root`` as {identity (its top folder or stem), path,
    vertices (V, 3), triangles (F, 3) or None}; unreadable scans are reported and skipped. Score a reconstruction
    against a scan with :func:`voiceface.metrics.shape.nme` (ICP, cropped around the nose tip)."""
    from ...face3d.meshio import load_mesh

    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "not a MICC folder")
    out = []
    for obj in sorted(root.rglob("*.obj")):
        try:
            v, f, _ = load_mesh(obj)
        except InputError as e:
            log.warning("%s", e)
            continue
        rel = obj.relative_to(root)
        out.append({"identity": rel.parts[0] if len(rel.parts) > 1 else obj.stem, "path": obj, "vertices": v,
                    "triangles": f})
    return out
