"""dlib's 128-d face descriptor (ResNet, ``dlib_face_recognition_resnet_model_v1.dat``) for raw or aligned images.

Used to measure identity similarity of real or generated faces (e.g. the ORL separation check, and as an independent
face-identity metric beside the thesis's own classifiers). Two descriptors of one person are typically closer than
0.6 in Euclidean distance (dlib's documented threshold).

* raw image: the largest face is found by ``FaceDetector``; dlib's 5-point model places the chip; ``InputError``
  "no face found" when there is none.
* aligned crop (``voiceface.face.align`` template, any size): no detection is run; dlib's 5-point model is applied in
  the fixed box ``align.FACE_BOX`` where an aligned face lies, so generated or simulated crops always get a descriptor.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from ..errors import InputError
from .align import FACE_BOX, as_rgb
from .detect import RESNET, SHAPE_5, FaceDetector, import_dlib, model_path

DESCRIPTOR_DIM = 128
SAME_PERSON_DISTANCE = 0.6
"""dlib's documented Euclidean distance threshold below which two descriptors are usually the same person."""
PARALLEL_MIN = 256
"""``describe_aligned_batch`` only spreads stacks of at least this many crops over processes (each process takes
~2-3 s to start: it imports the package)."""
MIN_ALIGNED_SIDE = 150
"""Aligned crops smaller than this are bilinearly upscaled before description (dlib's chips are 150x150)."""


class FaceDescriber:
    """dlib face descriptors; models loaded lazily on first use and kept by this object.

    Args:
        detector: a ``FaceDetector`` for raw images (a default one is made when needed).
        models: folder with the dlib ``.dat`` files (default: ``face_recognition_models``).
        num_jitters: dlib's test-time jittering (0 = off; deterministic).
    """

    def __init__(self, detector: FaceDetector | None = None, models: str | os.PathLike | None = None,
                 num_jitters: int = 0):
        self.models = models
        self.detector = detector if detector is not None else FaceDetector(models=models)
        self.num_jitters = int(num_jitters)
        self._net = None
        self._shape5 = None

    def _load(self):
        if self._net is None:
            dlib = import_dlib("face descriptors")
            self._shape5 = dlib.shape_predictor(str(model_path(SHAPE_5, self.models)))
            self._net = dlib.face_recognition_model_v1(str(model_path(RESNET, self.models)))
        return self._net, self._shape5

    def _describe_in_box(self, img: np.ndarray, box) -> np.ndarray:
        dlib = import_dlib("face descriptors")
        net, shape5 = self._load()
        rect = dlib.rectangle(*(int(round(v)) for v in box))
        shape = shape5(img, rect)
        return np.asarray(net.compute_face_descriptor(img, shape, self.num_jitters), dtype=np.float64)

    def describe(self, image: np.ndarray, path=None) -> np.ndarray:
        """Descriptor of the largest face in a raw image.

        Args:
            image: (H, W, 3) uint8 RGB or (H, W) greyscale.
        Returns:
            (128,) float64 descriptor (unit-free; L2 distances compare faces).
        """
        img = np.ascontiguousarray(as_rgb(image, path))
        face = self.detector.find(img, path)
        return self._describe_in_box(img, face.box)

    def describe_aligned(self, crop: np.ndarray, path=None) -> np.ndarray:
        """Descriptor of a crop aligned to ``voiceface.face.align``'s template.

        Args:
            crop: (S, S, 3) uint8 RGB aligned crop (S >= 16; upscaled to at least 150 px).
        Returns:
            (128,) float64 descriptor.
        """
        img = as_rgb(crop, path)
        if img.shape[0] != img.shape[1] or img.shape[0] < 16:
            raise InputError(path, f"an aligned crop must be square and at least 16 px, got {img.shape[:2]}")
        size = img.shape[0]
        if size < MIN_ALIGNED_SIDE:
            from PIL import Image
            size = MIN_ALIGNED_SIDE
            img = np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))
        # unit box -> pixel box of this size (unit u maps to pixel u * size - 0.5)
        box = [v * size - 0.5 for v in FACE_BOX]
        return self._describe_in_box(np.ascontiguousarray(img), box)

    def describe_aligned_batch(self, crops: np.ndarray, workers: int = 1) -> np.ndarray:
        """Descriptors of a stack of aligned crops: (N, S, S, 3) uint8 -> (N, 128) float64.

        dlib's network runs on one core, so ``workers`` > 1 splits a stack of at least ``PARALLEL_MIN`` crops into
        that many contiguous chunks described in separate processes (each loads the models once); the result is
        the same as with one worker."""
        if len(crops) == 0:
            return np.zeros((0, DESCRIPTOR_DIM))
        if workers <= 1 or len(crops) < PARALLEL_MIN:
            return np.stack([self.describe_aligned(c) for c in crops])
        chunks = np.array_split(np.asarray(crops), workers)
        # spawn, not fork: the caller may hold torch's thread pool, which a forked child can deadlock on
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            return np.concatenate(list(pool.map(_describe_chunk, [(self.models, self.num_jitters, c) for c in chunks])))


def _describe_chunk(job: tuple) -> np.ndarray:
    """Worker of ``describe_aligned_batch``: (models folder, num_jitters, (n, S, S, 3) crops) -> (n, 128)."""
    models, num_jitters, crops = job
    return FaceDescriber(models=models, num_jitters=num_jitters).describe_aligned_batch(crops)


def default_workers() -> int:
    """Processes for large dlib batches: the machine's cores, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def pairwise_distances(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Euclidean distances between rows: (N, D), (M, D) -> (N, M) (``b`` defaults to ``a``)."""
    a = np.asarray(a, dtype=np.float64)
    b = a if b is None else np.asarray(b, dtype=np.float64)
    sq = (a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0))


def identity_separation(features: np.ndarray, labels) -> dict[str, float]:
    """How well features separate identities: mean intra- vs inter-identity distance and leave-one-out 1-NN accuracy.

    Args:
        features: (N, D) one row per image (flattened pixels or descriptors).
        labels: (N,) identity labels (at least two identities, at least one with two images).
    Returns:
        {"intra": mean distance over same-identity pairs, "inter": mean over different-identity pairs,
         "ratio": intra / inter, "nn_accuracy": fraction of images whose nearest other image has the same identity,
         "n": N, "identities": number of identities}.
    """
    labels = np.asarray(labels)
    d = pairwise_distances(features)                      # (N, N)
    same = labels[:, None] == labels[None, :]
    off = ~np.eye(len(labels), dtype=bool)
    if not (same & off).any() or not (~same).any():
        raise ValueError("need at least two identities and one identity with two or more images")
    intra, inter = d[same & off].mean(), d[~same].mean()
    nearest = np.where(off, d, np.inf).argmin(1)
    return {"intra": float(intra), "inter": float(inter), "ratio": float(intra / inter),
            "nn_accuracy": float((labels[nearest] == labels).mean()), "n": int(len(labels)),
            "identities": int(len(np.unique(labels)))}
