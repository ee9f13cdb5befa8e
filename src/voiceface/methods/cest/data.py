"""CEST data: frames grouped by clip (Sec. 4.4.1) from the simulated world (default) and adapters for the real
layouts, plus the face-region mask M of Eq. 4.9 for real images.

* :class:`ClipBank`: every frame of the clips of some splits in memory, with the clip and person ids used to group
  minibatches, and (on the simulated world) per-frame ground truth: identity + expression coefficients, pose,
  light, true albedo, true mask.
* :func:`sample_batch`: ``clips_per_batch`` clips x ``frames_per_clip`` frames, deterministic from (seed, step),
  with each frame's partners (Eq. 4.11: one other frame of the same clip, or of the same person's other clips for
  ablation (f); Eq. 4.10: every frame of the group).
* Real video frames: :func:`folder_clips` / :func:`manifest_clips` find the clips (VoxCeleb-style, one folder of
  frames per video), :func:`prepare_frames` detects, aligns and segments every frame once into a crop cache, and
  :class:`FrameStore` streams the crops from disk during training (only its index is in memory; unreadable crops
  are replaced and reported); :func:`frame_folders` loads a small tree in memory.
* Other real layouts (adapters): :func:`read_300wlp` (300W-LP / AFLW2000-3D ``.jpg`` + ``.mat``),
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

from ...data.loaders import Replacing
from ...data.manifest import read_manifest
from ...errors import InputError

log = logging.getLogger(__name__)


def group_index(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames by group, computed once per bank: (ids (G,) sorted group ids, order (N,) frame indices sorted by
    group (ascending within a group), bounds (G + 1,)): group ``ids[g]``'s frames are
    ``order[bounds[g]:bounds[g + 1]]``."""
    order = np.argsort(groups, kind="stable")
    ids, starts = np.unique(groups[order], return_index=True)
    return ids, order, np.append(starts, len(groups))


class Grouped:
    """``groups(scope)``: the cached :func:`group_index` of ``clip`` (scope ``clip``) or ``person`` (``video``)."""

    def groups(self, scope: str = "clip") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cache = self.__dict__.setdefault("_group_cache", {})
        if scope not in cache:
            cache[scope] = group_index(self.clip if scope == "clip" else self.person)
        return cache[scope]


@dataclass
class ClipBank(Grouped):
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
    ids, order, bounds = bank.groups(scope)
    chosen = rng.choice(len(ids), size=clips_per_batch, replace=len(ids) < clips_per_batch)
    idx = []
    for g in chosen:
        members = order[bounds[g]:bounds[g + 1]]
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


def flip_frames(batch: dict[str, torch.Tensor], flip: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mirror the frames where ``flip`` (N,) bool is set: images (N, 3, S, S) and masks (N, 1, S, S) flipped
    left-right, landmarks (N, 68, 2) (renderer convention, pixel centre at j + 0.5) mapped to x -> S - x and
    relabelled with ``align.MIRROR_68`` (the mirrored face's image-left eye is the original's image-right one).
    Other keys are kept. A mirrored face is another plausible face, so flipping whole clips (or people) adds
    identities without breaking the cross-frame terms."""
    from ...face.align import MIRROR_68

    out = dict(batch)
    size = batch["images"].shape[-1]
    f4 = flip[:, None, None, None]
    out["images"] = torch.where(f4, batch["images"].flip(-1), batch["images"])
    out["masks"] = torch.where(f4, batch["masks"].flip(-1), batch["masks"])
    lm = batch["landmarks"]
    mirrored = lm[:, torch.tensor(MIRROR_68.tolist())] * lm.new_tensor([-1.0, 1.0]) + lm.new_tensor([size, 0.0])
    out["landmarks"] = torch.where(flip[:, None, None], mirrored, lm)
    return out


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


@dataclass(frozen=True)
class ClipFolder:
    """One video clip on disk: ``key`` (unique, e.g. ``id10001/1zcIwhmdeo4``), ``person``, ``folder`` of frames."""

    key: str
    person: str
    folder: Path


def folder_clips(root) -> list[ClipFolder]:
    """Every folder under ``root`` holding image files is a clip; its person is its top folder under ``root``
    (``<id>/<video>/<frame>.jpg``, or ``<name>/1.6/<video>/<n>/...``), or the folder itself when it lies directly
    under ``root``. Hidden folders (the crop cache ``.cest_cache``) are skipped."""
    from ...face.detect import IMAGE_EXTENSIONS

    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "not a folder of face-frame folders")
    folders = sorted({f.parent for f in root.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file()
                      and not any(part.startswith(".") for part in f.relative_to(root).parts)} - {root})
    out = []
    for folder in folders:
        rel = folder.relative_to(root)
        out.append(ClipFolder("/".join(rel.parts), rel.parts[0], folder))
    if not out:
        raise InputError(root, "no folder of image frames under here")
    return out


def manifest_clips(manifest_path, splits: Sequence[str]) -> list[ClipFolder] | None:
    """The ``clip`` items of a manifest in ``splits`` whose path is a folder of frames (relative paths against
    the manifest's folder), or None when its clips are files (a simulated world's ``.npz`` clips)."""
    manifest_path = Path(manifest_path)
    items = [it for it in read_manifest(manifest_path) if it.modality == "clip" and it.split in splits]
    if not items:
        raise InputError(manifest_path, f"no video clips in splits {list(splits)}")
    paths = [Path(it.path) if Path(it.path).is_absolute() else manifest_path.parent / it.path for it in items]
    if not all(p.is_dir() for p in paths):
        return None
    root = manifest_path.parent.resolve()
    keys = [str(p.resolve().relative_to(root)) if p.resolve().is_relative_to(root) else f"{it.identity}/{p.name}"
            for it, p in zip(items, paths)]
    return [ClipFolder(k, it.identity, p) for k, it, p in zip(keys, items, paths)]


def crop_cache_dir(cache_root, size: int, face_fraction: float, segmenter) -> Path:
    """Where crops of one framing live: ``cache_root/crops<S>_ff<fraction>_<segmenter class>``."""
    return Path(cache_root) / f"crops{size}_ff{face_fraction:g}_{type(segmenter).__name__}"


@dataclass
class PrepareReport:
    """What :func:`prepare_frames` did: ``clips`` (usable), ``frames`` (usable), ``prepared`` (clips processed now,
    the rest came from the cache), ``no_face`` (frames without a face), ``failures`` [(path, message)] of frames
    that failed to decode (left out of their clip)."""

    clips: int = 0
    frames: int = 0
    prepared: int = 0
    no_face: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)


def _prepare_clip(clip: ClipFolder, files: list[Path], out: Path, size: int, detector, segmenter,
                  face_fraction: float) -> dict[str, np.ndarray]:
    """Detect, align (``size`` crop framed like the training clips), segment and write one clip's frames as RGBA
    PNGs (alpha = the face mask M) under ``out``; returns its index arrays (see :func:`prepare_frames`)."""
    from PIL import Image

    from ...face import align
    from ...face.detect import load_image
    from .reconstruct import clip_alignment

    crops, lms, names, bad, no_face = [], [], [], [], 0
    for f in files:
        try:
            img = load_image(f)
        except InputError as e:
            bad.append((str(f), str(e)))
            continue
        try:
            lm = np.asarray(detector.find(img, f).landmarks, np.float64)
        except InputError:
            no_face += 1
            continue
        m = clip_alignment(lm, size, face_fraction)
        crops.append(align.warp_affine(img, m, size))
        lms.append(align.apply_transform(m, lm) + 0.5)                     # renderer convention
        names.append(f.stem)
    out.mkdir(parents=True, exist_ok=True)
    if crops:
        frames, lm_arr = np.stack(crops), np.stack(lms).astype(np.float32)
        masks = segmenter(frames, lm_arr)                                   # (n, S, S) bool
        rgba = np.concatenate([frames, (masks[..., None] * 255).astype(np.uint8)], -1)
        for name, im in zip(names, rgba):
            Image.fromarray(im, "RGBA").save(out / f"{name}.png")
    else:
        lm_arr = np.zeros((0, 68, 2), np.float32)
    return {"files": np.array([f.name for f in files]), "names": np.array(names, dtype=str), "landmarks": lm_arr,
            "bad_paths": np.array([b[0] for b in bad], dtype=str), "bad_messages": np.array([b[1] for b in bad],
                                                                                          dtype=str),
            "no_face": np.array(no_face)}


def _cached_index(path: Path, files: list[Path]) -> dict[str, np.ndarray] | None:
    """A clip's cached index when it was made from exactly these files, else None."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as z:
            index = {k: z[k] for k in z.files}
    except (OSError, ValueError):
        return None
    names = np.array([f.name for f in files])
    return index if index["files"].shape == names.shape and (index["files"] == names).all() else None


def prepare_frames(clips: Sequence[ClipFolder], cache: str | Path, size: int, *, detector=None,
                   segmenter: FaceSegmenter | None = None, face_fraction: float = 0.27) -> tuple["FrameStore",
                                                                                                  PrepareReport]:
    """Detect, align and segment the frames of ``clips`` once into ``cache`` (one ``<clip key>.npz`` index and a
    folder of RGBA PNG crops per clip, alpha = M; a clip whose index matches its folder's files is not redone, so
    an interrupted preparation resumes) and return the :class:`FrameStore` over them.

    Frames that fail to decode are reported (``PrepareReport.failures``) and left out; frames without a face are
    counted; clips without any face are skipped. ``detector``: anything with ``find(image, path) -> Face``
    (default dlib's :class:`~voiceface.face.detect.FaceDetector`); ``segmenter``: M (default
    :class:`HullSkinSegmenter`). Run it on DDP rank 0 first (``engine.dist.main_first``): the others then only
    read the cache."""
    seg = segmenter or HullSkinSegmenter()
    out = crop_cache_dir(cache, size, face_fraction, seg)
    report = PrepareReport()
    paths, lms, clip, person, clip_names, persons = [], [], [], [], [], []
    for c in clips:
        files = _image_files(c.folder)
        safe = c.key.replace("/", "__")
        index = _cached_index(out / f"{safe}.npz", files)
        if index is None:
            if detector is None:
                from ...face.detect import FaceDetector
                detector = FaceDetector()
            index = _prepare_clip(c, files, out / safe, size, detector, seg, face_fraction)
            tmp = out / f"{safe}.tmp.npz"
            np.savez(tmp, **index)
            tmp.replace(out / f"{safe}.npz")                               # complete clips only
            report.prepared += 1
        report.failures += list(zip(index["bad_paths"].tolist(), index["bad_messages"].tolist()))
        report.no_face += int(index["no_face"])
        if len(index["names"]) == 0:
            continue
        if c.person not in persons:
            persons.append(c.person)
        paths += [str(out / safe / f"{n}.png") for n in index["names"]]
        lms.append(index["landmarks"])
        clip.append(np.full(len(index["names"]), len(clip_names)))
        person.append(np.full(len(index["names"]), persons.index(c.person)))
        clip_names.append(c.key)
    if not paths:
        raise InputError(Path(cache), "no face found in any frame of the clips")
    report.clips, report.frames = len(clip_names), len(paths)
    store = FrameStore(paths, np.concatenate(lms).astype(np.float32), np.concatenate(clip), np.concatenate(person),
                       clip_names, persons, size)
    return store, report


class FrameStore(Replacing, Grouped):
    """Aligned frames of real video clips streamed from the crop cache of :func:`prepare_frames`: only the index
    is in memory (paths, landmarks (N, 68, 2) float32 in the renderer convention, clip (N,), person (N,); frames of
    a clip contiguous), a batch decodes its own crops. The same interface as :class:`ClipBank` for sampling and
    batches (``clip``, ``person``, ``size``, ``tensors``; ``truth`` is empty).

    A crop that fails to decode is replaced by the next readable frame of the same clip (else of any clip), and
    reported by ``drain_failures`` (the input pipeline logs it in the run)."""

    truth: dict = {}

    def __init__(self, paths: Sequence[str], landmarks: np.ndarray, clip: np.ndarray, person: np.ndarray,
                 clip_names: list[str], person_names: list[str], size: int):
        self.paths = list(paths)
        self.landmarks = landmarks
        self.clip = clip
        self.person = person
        self.clip_names = clip_names
        self.person_names = person_names
        self._size = int(size)
        self._start = np.searchsorted(clip, np.arange(len(clip_names)))   # first frame of each clip
        self._end = np.searchsorted(clip, np.arange(len(clip_names)), side="right")
        self._init_failures()

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def size(self) -> int:
        return self._size

    def _path_of(self, i: int) -> str:
        return self.paths[i]

    def _decode(self, i: int) -> np.ndarray:
        """(S, S, 4) uint8 RGBA crop of frame i. Raises ``InputError``."""
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(self.paths[i]) as im:
                a = np.asarray(im.convert("RGBA"), dtype=np.uint8)
        except (OSError, UnidentifiedImageError, ValueError) as e:
            raise InputError(self.paths[i], f"cannot read frame crop ({e.__class__.__name__})") from None
        if a.shape[:2] != (self._size, self._size):
            raise InputError(self.paths[i], f"crop is {a.shape[1]}x{a.shape[0]}, not {self._size}")
        return a

    def _candidates(self, i: int):
        c = int(self.clip[i])
        lo, hi = int(self._start[c]), int(self._end[c])
        yield from range(i, hi)
        yield from range(lo, i)
        n = len(self)
        yield from ((hi + k) % n for k in range(n - (hi - lo)))

    def read(self, idx: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """((n, S, S, 4) uint8 RGBA crops, (n,) int64 frames actually used): unreadable crops replaced."""
        out, used = [], np.asarray(idx, dtype=np.int64).copy()
        for b, i in enumerate(used):
            for j in self._candidates(int(i)):
                if j in self._bad:
                    continue
                try:
                    out.append(self._decode(j))
                    break
                except InputError as e:
                    self._bad[j] = str(e)
                    self._fresh.append((self.paths[j], str(e)))
            else:
                raise InputError(self.paths[int(i)], "no readable frame left in the store")
            used[b] = j
        return np.stack(out), used

    def tensors(self, idx: np.ndarray, device="cpu") -> dict[str, torch.Tensor]:
        """Like :meth:`ClipBank.tensors`: images (n, 3, S, S) in [0, 1], masks (n, 1, S, S), landmarks (n, 68, 2)
        of the frames read (replacements included)."""
        rgba, used = self.read(idx)
        t = torch.from_numpy(rgba).permute(0, 3, 1, 2).float().div(255.0)
        return {"images": t[:, :3].contiguous().to(device), "masks": (t[:, 3:] > 0.5).float().to(device),
                "landmarks": torch.from_numpy(self.landmarks[used]).to(device)}

    def to_bank(self) -> ClipBank:
        """Every frame in memory as a :class:`ClipBank` (small sets, evaluation)."""
        rgba, used = self.read(np.arange(len(self)))
        return ClipBank(frames=rgba[..., :3].copy(), masks=rgba[..., 3] > 127, landmarks=self.landmarks[used],
                        clip=self.clip[used], person=self.person[used], clip_names=self.clip_names,
                        person_names=self.person_names)


def frame_folders(root, size: int, *, detector=None, segmenter: FaceSegmenter | None = None,
                  face_fraction: float = 0.27, cache_dir=None) -> ClipBank:
    """VoxCeleb-style face-frame folders (:func:`folder_clips`) in memory as a :class:`ClipBank`, through the crop
    cache of :func:`prepare_frames` (default ``root/.cest_cache``); frames without a face are skipped. Training
    streams them instead (``voiceface train cest --data FOLDER``)."""
    root = Path(root)
    store, report = prepare_frames(folder_clips(root), Path(cache_dir) if cache_dir else root / ".cest_cache", size,
                                   detector=detector, segmenter=segmenter, face_fraction=face_fraction)
    for path, msg in report.failures:
        log.warning("skipped frame %s: %s", path, msg)
    return store.to_bank()


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
        except (OSError, ValueError, NotImplementedError, TypeError, scipy.io.matlab.MatReadError) as e:
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
    from .benchmarks import crop_records

    return crop_records(records, size, face_fraction, segmenter)[0]


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
