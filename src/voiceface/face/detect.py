"""Face detection and landmarks with dlib (optional extra ``align``), and aligned crops of real photos.

The thesis detects facial landmarks and crops faces by a similarity transform (Sec. 2.3.2, 3.3.1). We use dlib's HOG
frontal face detector (upsampled once) and its 68-point (iBUG) shape predictor from ``face_recognition_models``; the
crop itself is ``voiceface.face.align`` (the same template the simulated world uses).

Defined results for awkward input (single-image API ``FaceDetector.find`` / ``FaceDetector.align``):

* **no face**: ``InputError(path, "no face found")``. Batch API ``align_files``: the file is reported and skipped.
* **several faces**: the largest box is used; ``Face.n_faces`` holds how many were found (batch results report it).
* **tiny images**: an image whose shorter side is below ``MIN_SIDE`` (32 px) is refused with ``InputError``; one
  whose shorter side is below ``UPSCALE_BELOW`` (160 px; ``FaceDetector(upscale_below=...)``) is bilinearly
  upscaled by the smallest integer factor that reaches it before detection (the HOG detector needs faces of about
  80 px, 40 px with one upsampling); the boxes and landmarks are reported in the original image's pixels and the
  crop is taken from the original image.
* **large images**: a longer side above ``DOWNSCALE_ABOVE`` (1600 px) is downscaled to it for detection and
  landmarks (results again in original pixels); the crop is taken from the original image.
* **greyscale** (and palette, 16-bit, CMYK, alpha) images: converted to 8-bit RGB (grey replicated to 3 channels).
"""
from __future__ import annotations

import importlib.util
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator, Mapping

import numpy as np

from ..errors import InputError, MissingDependencyError
from .align import (DIMNET_SIZE, alignment_transform, alignment_transform_dlib5, apply_transform, as_rgb,
                    warp_affine)

log = logging.getLogger(__name__)

MIN_SIDE = 32
"""Images whose shorter side is below this many pixels are refused (no face can be found reliably)."""
UPSCALE_BELOW = 160
"""Images whose shorter side is below this are upscaled by an integer factor before detection."""
DOWNSCALE_ABOVE = 1600
"""Images whose longer side is above this are downscaled to it before detection (speed and memory)."""
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".pbm", ".bmp", ".tif", ".tiff", ".webp", ".gif")
"""File name endings treated as images when folders are expanded."""

SHAPE_68 = "shape_predictor_68_face_landmarks.dat"
SHAPE_5 = "shape_predictor_5_face_landmarks.dat"
RESNET = "dlib_face_recognition_resnet_model_v1.dat"


def import_dlib(purpose: str = "face detection"):
    """The ``dlib`` module, or ``MissingDependencyError`` naming the ``align`` extra."""
    try:
        import dlib
    except ImportError:
        raise MissingDependencyError("dlib-bin", "align", purpose) from None
    return dlib


def models_dir() -> Path:
    """Folder holding the dlib ``.dat`` models of ``face_recognition_models`` (found without importing it, since its
    ``__init__`` needs ``pkg_resources``)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("face-recognition-models", "align", "face landmarks and descriptors")
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    if not folder.is_dir():
        raise MissingDependencyError("face-recognition-models", "align", "face landmarks and descriptors")
    return folder


def model_path(name: str, folder: str | os.PathLike | None = None) -> Path:
    """Path of one dlib model file (``SHAPE_68``, ``SHAPE_5``, ``RESNET``), checked to exist."""
    path = Path(folder) / name if folder is not None else models_dir() / name
    if not path.is_file():
        raise InputError(path, "dlib model file not found")
    return path


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB (greyscale replicated, alpha dropped, 16-bit scaled to 8-bit,
    EXIF orientation applied).

    Raises ``InputError`` for a missing, unreadable or corrupt file.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        with Image.open(path) as raw:
            raw.load()
            im = ImageOps.exif_transpose(raw)  # camera photos: apply the EXIF orientation
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64)
                top = 65535.0 if arr.max() > 255 else 255.0
                return as_rgb(np.clip(np.rint(arr / top * 255), 0, 255).astype(np.uint8), path)
            return as_rgb(np.asarray(im.convert("L") if im.mode in ("1", "L", "LA") else im.convert("RGB")), path)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise InputError(path, f"not a readable image ({type(e).__name__}: {e})") from None


_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*")
"""Leading bytes of JPEG, PNG, GIF and TIFF files (BMP, WebP and PNM are checked in ``is_image_file``)."""


def is_image_file(path: str | os.PathLike) -> bool:
    """True when ``path`` is a file with an image extension or, whatever its name, image content (JPEG, PNG, GIF,
    BMP, TIFF, WebP or PNM magic bytes): ``person01.smile`` holding a GIF is an image."""
    path = Path(path)
    if not path.is_file():
        return False
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    if head.startswith(_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return True
    if head[:2] == b"BM" and head[6:10] == b"\0\0\0\0":    # BMP: reserved header bytes are zero
        return True
    return len(head) >= 3 and head[:1] == b"P" and head[1:2] in b"123456" and head[2:3].isspace()


def scan_images(folder: str | os.PathLike) -> tuple[list[Path], int]:
    """(image files under ``folder``, recursively and sorted, chosen by ``is_image_file``; how many other files
    were passed over)."""
    files = sorted(f for f in Path(folder).rglob("*") if f.is_file())
    images = [f for f in files if is_image_file(f)]
    return images, len(files) - len(images)


def image_stem(name: str) -> str:
    """A file name minus a known image extension only: ``a.jpg`` -> ``a``, ``person01.smile`` stays whole, so
    names that differ after their first dot keep differing."""
    suffix = Path(name).suffix
    return name[: -len(suffix)] if suffix and suffix.lower() in IMAGE_EXTENSIONS else name


@dataclass
class OutputPlan:
    """Where a batch command writes each input image: ``jobs`` (image, output path relative to the output folder,
    without suffix), one per input and no two with one output; ``renamed`` lines for inputs moved off a name
    another input already had; ``skipped`` files in folders that are not images by name or content."""

    jobs: list[tuple[Path, PurePosixPath]] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)
    skipped: int = 0


def unique_output(rel: PurePosixPath, f: str | os.PathLike, taken: Mapping[str, object]) -> PurePosixPath:
    """The output name (relative, without suffix) for input ``f`` whose natural name is ``rel``: ``rel`` if free,
    else ``FOLDER_NAME``, else the file's full name, else ``NAME_2``, ``NAME_3``, ...; never an output already in
    ``taken`` (keys: lower-cased outputs, compared as case-insensitive file systems do). The one renaming rule of
    every batch command that writes one file per input image (``voiceface align``, ``voiceface prepare``)."""
    f = Path(f)
    options = [rel, rel.parent / f"{f.parent.name}_{rel.name}", rel.parent / f.name]
    options += [rel.parent / f"{rel.name}_{k}" for k in range(2, len(taken) + 3)]
    return next(o for o in options if str(o).lower() not in taken)


def plan_outputs(inputs: Iterable[str | os.PathLike], flat: bool = False) -> OutputPlan:
    """One output name per input image: the file name minus only a known image extension (``person01.smile`` ->
    ``person01.smile``, ``a.jpg`` -> ``a``), under its sub-folder for folder inputs (``flat``: no sub-folders);
    folders are scanned by content (``scan_images``); a name already taken is renamed (``unique_output``) and reported."""
    out = OutputPlan()
    taken: dict[str, Path] = {}
    for arg in map(Path, inputs):
        if arg.is_dir():
            files, skipped = scan_images(arg)
            out.skipped += skipped
            rels = [PurePosixPath(f.relative_to(arg).as_posix()) for f in files]
        else:
            files, rels = [arg], [PurePosixPath(arg.name)]
        for f, rel in zip(files, rels):
            want = PurePosixPath(image_stem(rel.name)) if flat else rel.parent / image_stem(rel.name)
            got = unique_output(want, f, taken)
            if got != want:
                first = taken[str(want).lower()]
                out.renamed.append(f"{f}: output {want} is already {first}'s; written as {got}")
            taken[str(got).lower()] = f
            out.jobs.append((f, got))
    return out


def expand_images(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given, folders expanded recursively to their image files (by content, see ``scan_images``)."""
    out: list[Path] = []
    for p in map(Path, paths):
        out.extend(scan_images(p)[0] if p.is_dir() else [p])
    return out


@dataclass(frozen=True)
class Face:
    """One detected face, in the original image's pixel coordinates (pixel centres at integers).

    box: (left, top, right, bottom); score: HOG detector score; landmarks: (68, 2) iBUG points (x, y), or (5, 2)
    dlib 5-point landmarks (eye corners, nose bottom) from a ``FaceDetector(points=5)``;
    n_faces: how many faces the detector found in the image (this one is the largest).
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray
    n_faces: int = 1

    @property
    def area(self) -> float:
        return (self.box[2] - self.box[0]) * (self.box[3] - self.box[1])


@dataclass(frozen=True)
class AlignedFace:
    """An aligned crop and what produced it: crop (S, S, 3) uint8; face: the detection; landmarks: the face's
    landmarks ((68, 2) or (5, 2)) in crop pixels; matrix: (2, 3) image -> crop similarity."""

    crop: np.ndarray
    face: Face
    landmarks: np.ndarray
    matrix: np.ndarray


class FaceDetector:
    """dlib HOG face detector + 68-point shape predictor, loaded lazily on first use and kept by this object.

    Args:
        upsample: HOG pyramid upsampling count (1, as used for the ORL acceptance numbers).
        points: 68 (iBUG shape predictor, default) or 5 (dlib's smaller, faster 5-point model; crops are aligned
            through the same points of ``align.TEMPLATE_68``).
        models: folder with the dlib ``.dat`` files (default: the ``face_recognition_models`` package).
        threshold: detector score threshold (dlib's ``adjust_threshold``; 0 is dlib's default).
        upscale_below: images whose shorter side is below this are upscaled by an integer factor first
            (``UPSCALE_BELOW``; 0 disables). On ORL (92x112) this raises the HOG detection rate from 385 to 395/400.
    """

    def __init__(self, upsample: int = 1, models: str | os.PathLike | None = None, threshold: float = 0.0,
                 upscale_below: int = UPSCALE_BELOW, points: int = 68):
        if points not in (5, 68):
            raise ValueError(f"points must be 5 or 68, got {points}")
        self.points = points
        self.upsample = int(upsample)
        self.upscale_below = int(upscale_below)
        self.models = models
        self.threshold = float(threshold)
        self._detector = None
        self._predictor = None

    def _load(self):
        if self._detector is None:
            dlib = import_dlib()
            name = SHAPE_68 if self.points == 68 else SHAPE_5
            self._predictor = dlib.shape_predictor(str(model_path(name, self.models)))
            self._detector = dlib.get_frontal_face_detector()
        return self._detector, self._predictor

    def _prepare(self, image: np.ndarray, path=None) -> tuple[np.ndarray, float]:
        """The image dlib sees and its scale relative to the input (integer upscale, or downscale of big ones)."""
        img = as_rgb(image, path)
        h, w = img.shape[:2]
        if min(h, w) < MIN_SIDE:
            raise InputError(path, f"image too small for face detection ({w}x{h} px; "
                                   f"the shorter side must be at least {MIN_SIDE} px)")
        factor = float(max(1, math.ceil(self.upscale_below / min(h, w))))
        if max(h, w) > DOWNSCALE_ABOVE:
            factor = DOWNSCALE_ABOVE / max(h, w)
        if factor != 1.0:
            from PIL import Image
            size = (max(1, round(w * factor)), max(1, round(h * factor)))
            img = np.asarray(Image.fromarray(img).resize(size, Image.BILINEAR))
            factor = size[0] / w
        return np.ascontiguousarray(img), factor

    def detect(self, image: np.ndarray, path=None) -> list[Face]:
        """All faces in an image, largest first, each with its landmarks (68 or 5 points).

        Args:
            image: (H, W, 3) uint8 RGB or (H, W) greyscale.
        Returns:
            list of ``Face`` (empty when none), coordinates in the input image's pixels.
        """
        detector, predictor = self._load()
        img, factor = self._prepare(image, path)
        rects, scores, _ = detector.run(img, self.upsample, self.threshold)
        order = sorted(range(len(rects)), key=lambda i: -rects[i].width() * rects[i].height())
        faces = []
        # scale back: a pixel centre x in the resized image is (x + 0.5) / factor - 0.5 in the original
        back = lambda v: (np.asarray(v, dtype=np.float64) + 0.5) / factor - 0.5  # noqa: E731
        for i in order:
            r = rects[i]
            shape = predictor(img, r)
            lm = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)  # (P, 2), upscaled pixels
            faces.append(Face(box=tuple(float(v) for v in back([r.left(), r.top(), r.right(), r.bottom()])),
                              score=float(scores[i]), landmarks=back(lm), n_faces=len(rects)))
        return faces

    def find(self, image: np.ndarray, path=None) -> Face:
        """The largest face (``Face.n_faces`` says how many were found); ``InputError`` "no face found" if none."""
        faces = self.detect(image, path)
        if not faces:
            raise InputError(path, "no face found")
        return faces[0]

    def align(self, image: np.ndarray, size: int = DIMNET_SIZE, path=None) -> AlignedFace:
        """Detect the largest face and crop it aligned to the template (``voiceface.face.align``) at ``size``."""
        img = as_rgb(image, path)
        face = self.find(img, path)
        if self.points == 68:
            matrix = alignment_transform(face.landmarks, size)
        else:
            matrix = alignment_transform_dlib5(face.landmarks, size)
        return AlignedFace(crop=warp_affine(img, matrix, size), face=face,
                           landmarks=apply_transform(matrix, face.landmarks), matrix=matrix)

    def align_file(self, path: str | os.PathLike, size: int = DIMNET_SIZE) -> AlignedFace:
        """``align`` on an image file (``InputError`` for a missing/corrupt file or no face)."""
        return self.align(load_image(path), size, path=path)

    def align_files(self, paths: Iterable[str | os.PathLike], size: int = DIMNET_SIZE
                    ) -> Iterator[tuple[Path, AlignedFace | InputError]]:
        """Batch alignment: yields ``(path, AlignedFace)`` or ``(path, InputError)``; a bad file never stops the rest.

        Folders are expanded to their image files. Failures are also logged at WARNING level.
        """
        for p in expand_images(paths):
            try:
                yield p, self.align_file(p, size)
            except InputError as e:
                log.warning("%s", e)
                yield p, e
