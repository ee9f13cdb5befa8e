"""Face alignment by a similarity transform to a fixed landmark template (thesis Sec. 2.3.2 / 3.3.1 pre-processing).

The thesis crops faces "by similarity transformation" from detected landmarks to 128x128 (DIMNet) and 64x64 (GAN)
RGB images and scales each pixel as (x - 127.5) / 127.5. This module is that step, shared by real photos
(``voiceface.face.detect``) and the simulated world (which projects its 3D faces' 68 landmarks and calls
``align_image`` / ``alignment_transform`` so that simulated crops are aligned exactly like real ones).

Coordinate conventions (used everywhere in voiceface):

* Landmarks are ``(x, y)`` in pixels, x to the right, y down, with the *centre* of pixel ``(row i, column j)`` at
  ``(x, y) = (j, i)`` (dlib's convention). An image of width W spans x in [-0.5, W - 0.5].
* Template coordinates are *unit* coordinates in [0, 1] across the crop: unit ``u`` maps to crop pixel
  ``u * size - 0.5``, so the template scales exactly with the crop size (the 64x64 crop is the 128x128 crop at half
  resolution).
* The 5 alignment points, in this order, are: left eye centre, right eye centre, nose tip, left mouth corner, right
  mouth corner, where left/right mean *in the image* (the subject's right eye is the image's left eye).
* 68-point landmarks follow the iBUG 300-W / dlib order (0-based): jaw 0-16, brows 17-26, nose 27-35, eyes 36-47,
  mouth 48-67. ``points68_to_5`` reduces them to the 5 alignment points.

The thesis does not publish its template. ``TEMPLATE_5`` is the widely used 5-point face-recognition template (the
ArcFace 112x112 reference points) mirror-symmetrised about the vertical centre line, in unit coordinates, scaled by
0.8 about the crop centre and raised by 0.02 so that the whole face, chin included, lies inside the crop (with the
unscaled points the chin falls below the crop's bottom edge).
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from ..errors import InputError

DIMNET_SIZE = 128
"""Crop size of DIMNet face inputs (thesis Sec. 2.3.2)."""
GAN_SIZE = 64
"""Crop size of the voice-to-face GAN's faces (thesis Sec. 3.3.1)."""

EYE_Y = 0.4486
"""Unit y of both eye centres."""
EYE_HALF_GAP = 0.1258
"""Unit horizontal distance of each eye centre from the vertical centre line."""
NOSE_Y = 0.5924
"""Unit y of the nose tip (on the centre line)."""
MOUTH_Y = 0.7392
"""Unit y of both mouth corners."""
MOUTH_HALF_GAP = 0.1038
"""Unit horizontal distance of each mouth corner from the centre line."""

TEMPLATE_5 = np.array([
    [0.5 - EYE_HALF_GAP, EYE_Y],      # left eye centre (image left)
    [0.5 + EYE_HALF_GAP, EYE_Y],      # right eye centre
    [0.5, NOSE_Y],                    # nose tip
    [0.5 - MOUTH_HALF_GAP, MOUTH_Y],  # left mouth corner
    [0.5 + MOUTH_HALF_GAP, MOUTH_Y],  # right mouth corner
], dtype=np.float64)
"""(5, 2) alignment template in unit coordinates [0, 1] (x, y)."""
TEMPLATE_5.setflags(write=False)

TEMPLATE_68 = np.array([
    [0.2029, 0.4726], [0.207, 0.5468], [0.2157, 0.62], [0.2296, 0.6924],
    [0.255, 0.7613], [0.2975, 0.8225], [0.3547, 0.8723], [0.4211, 0.9101],
    [0.5, 0.9202], [0.5789, 0.9101], [0.6453, 0.8723], [0.7025, 0.8225],
    [0.745, 0.7613], [0.7704, 0.6924], [0.7843, 0.62], [0.793, 0.5468],
    [0.7971, 0.4726], [0.253, 0.4233], [0.2887, 0.3863], [0.3423, 0.3735],
    [0.3989, 0.3789], [0.4524, 0.3981], [0.5476, 0.3981], [0.6011, 0.3789],
    [0.6577, 0.3735], [0.7113, 0.3863], [0.747, 0.4233], [0.5, 0.4501],
    [0.5, 0.4974], [0.5, 0.5446], [0.5, 0.5937], [0.4394, 0.6307],
    [0.4683, 0.641], [0.5, 0.6498], [0.5317, 0.641], [0.5606, 0.6307],
    [0.316, 0.4646], [0.3479, 0.4466], [0.386, 0.446], [0.4215, 0.468],
    [0.3848, 0.4746], [0.3468, 0.4756], [0.5785, 0.468], [0.614, 0.446],
    [0.6521, 0.4466], [0.684, 0.4646], [0.6532, 0.4756], [0.6152, 0.4746],
    [0.3818, 0.7246], [0.4262, 0.709], [0.469, 0.7003], [0.5, 0.7077],
    [0.531, 0.7003], [0.5738, 0.709], [0.6182, 0.7246], [0.5752, 0.7591],
    [0.5331, 0.7744], [0.5, 0.7774], [0.4669, 0.7744], [0.4248, 0.7591],
    [0.3998, 0.7263], [0.4687, 0.7236], [0.5, 0.7271], [0.5313, 0.7236],
    [0.6002, 0.7263], [0.5318, 0.7384], [0.5, 0.7421], [0.4682, 0.7384],
], dtype=np.float64)
"""(68, 2) iBUG landmarks of an average face aligned to ``TEMPLATE_5``, unit coordinates (x, y): the mean over the
395 ORL faces dlib finds (``FaceDetector`` defaults) of their 68 landmarks carried into the crop by
``alignment_transform``, then mirror-symmetrised with ``MIRROR_68``. Where a face is expected in a crop (e.g. the
box for descriptors of aligned crops, checks of simulated faces, the dlib 5-point model's points)."""
TEMPLATE_68.setflags(write=False)

MIRROR_68 = np.array([16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 26, 25, 24, 23, 22, 21, 20, 19, 18,
                      17, 27, 28, 29, 30, 35, 34, 33, 32, 31, 45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40, 54, 53,
                      52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65])
"""Permutation of the 68 iBUG indices under a horizontal flip: ``flipped[i] = mirror_x(landmarks[MIRROR_68[i]])``."""
MIRROR_68.setflags(write=False)

DLIB5_IN_68 = (45, 42, 36, 39, 33)
"""68-point indices of dlib's 5-point model's points (image-right eye outer/inner corner, image-left eye outer/inner
corner, bottom of the nose)."""

FACE_BOX = (0.164, 0.265, 0.836, 0.903)
"""(left, top, right, bottom) unit box where dlib's HOG detector puts an aligned face (mean over ORL, symmetrised)."""

LEFT_EYE_68 = tuple(range(36, 42))
"""68-point indices of the image-left eye (the subject's right eye) contour."""
RIGHT_EYE_68 = tuple(range(42, 48))
"""68-point indices of the image-right eye contour."""
NOSE_TIP_68 = 30
LEFT_MOUTH_68 = 48
RIGHT_MOUTH_68 = 54


def template(size: int) -> np.ndarray:
    """The 5-point template in pixel coordinates of a ``size`` x ``size`` crop: (5, 2) float64 (x, y)."""
    if size < 8:
        raise ValueError(f"crop size must be at least 8 pixels, got {size}")
    return TEMPLATE_5 * size - 0.5


def template68(size: int) -> np.ndarray:
    """``TEMPLATE_68`` in pixel coordinates of a ``size`` x ``size`` crop: (68, 2) float64 (x, y)."""
    if size < 8:
        raise ValueError(f"crop size must be at least 8 pixels, got {size}")
    return TEMPLATE_68 * size - 0.5


def flip_landmarks(landmarks: np.ndarray, width: int) -> np.ndarray:
    """Landmarks of the horizontally flipped image (``image[:, ::-1]``): (..., 68, 2) -> (..., 68, 2), with the
    indices permuted by ``MIRROR_68`` so that point i keeps its meaning (e.g. 36 stays the image-left eye corner)."""
    lm = np.asarray(landmarks, dtype=np.float64)[..., MIRROR_68, :].copy()
    lm[..., 0] = width - 1 - lm[..., 0]
    return lm


def points68_to_5(landmarks: np.ndarray) -> np.ndarray:
    """Reduce 68 iBUG landmarks to the 5 alignment points.

    Args:
        landmarks: (..., 68, 2) pixel coordinates (x, y).
    Returns:
        (..., 5, 2): eye centres (mean of each eye's 6 contour points), nose tip (point 30), mouth corners (48, 54).
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape[-2:] != (68, 2):
        raise ValueError(f"expected (..., 68, 2) landmarks, got shape {lm.shape}")
    return np.stack([lm[..., LEFT_EYE_68, :].mean(-2), lm[..., RIGHT_EYE_68, :].mean(-2), lm[..., NOSE_TIP_68, :],
                     lm[..., LEFT_MOUTH_68, :], lm[..., RIGHT_MOUTH_68, :]], axis=-2)


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """(5, 2) alignment points from (5, 2) points (returned as is) or (68, 2) iBUG landmarks."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape == (68, 2):
        return points68_to_5(lm)
    if lm.shape == (5, 2):
        return lm
    raise ValueError(f"landmarks must have shape (5, 2) or (68, 2), got {lm.shape}")


def similarity_from_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, translation) mapping ``src`` onto ``dst``.

    Umeyama's closed form (IEEE TPAMI 1991), reflections excluded: minimises sum_i ||dst_i - (s R src_i + t)||^2.

    Args:
        src: (N, 2) points, N >= 2, not all equal.
        dst: (N, 2) points.
    Returns:
        (2, 3) matrix ``M = [s R | t]`` so that ``dst ~= src @ M[:, :2].T + M[:, 2]``.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or src.shape[0] < 2:
        raise ValueError(f"need two (N, 2) point sets with N >= 2, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    var_s = (xs ** 2).sum() / len(src)
    if var_s <= 1e-12:
        raise ValueError("source points are all equal: no similarity transform is defined")
    cov = xd.T @ xs / len(src)                       # (2, 2)
    u, d, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:     # exclude reflections
        sign[-1] = -1.0
    rot = u @ np.diag(sign) @ vt
    scale = (d * sign).sum() / var_s
    out = np.empty((2, 3))
    out[:, :2] = scale * rot
    out[:, 2] = mu_d - scale * rot @ mu_s
    return out


def apply_transform(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (..., 2) points through a (2, 3) affine matrix: (..., 2)."""
    m = np.asarray(matrix, dtype=np.float64)
    p = np.asarray(points, dtype=np.float64)
    return p @ m[:, :2].T + m[:, 2]


def alignment_transform(landmarks: np.ndarray, size: int) -> np.ndarray:
    """(2, 3) similarity taking image pixel coordinates to ``size`` x ``size`` crop pixel coordinates.

    Args:
        landmarks: (5, 2) alignment points or (68, 2) iBUG landmarks in image pixels.
        size: crop side in pixels (128 for DIMNet, 64 for the GAN).
    Use ``apply_transform(M, landmarks68)`` to carry all landmarks into the crop.
    """
    return similarity_from_points(five_points(landmarks), template(size))


def alignment_transform_dlib5(points: np.ndarray, size: int) -> np.ndarray:
    """(2, 3) image -> crop similarity from dlib's 5-point model (eye corners and nose bottom, ``DLIB5_IN_68``),
    fitted to the same points of ``TEMPLATE_68`` so crops match those aligned from 68 landmarks.

    Args:
        points: (5, 2) dlib 5-point landmarks, image pixels.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape != (5, 2):
        raise ValueError(f"dlib 5-point landmarks must have shape (5, 2), got {pts.shape}")
    return similarity_from_points(pts, template68(size)[list(DLIB5_IN_68)])


def warp_affine(image: np.ndarray, matrix: np.ndarray, size: int, fill: int = 0) -> np.ndarray:
    """Warp an image by the (2, 3) affine ``matrix`` (image -> crop coordinates) into a ``size`` x ``size`` crop.

    Each crop pixel is sampled bilinearly at its inverse-mapped image position; outside the image it is ``fill``.

    Args:
        image: (H, W, C) or (H, W) uint8 (or float) array.
    Returns:
        (size, size, C) or (size, size) array of the input's dtype (uint8 values rounded and clipped).
    """
    img = np.asarray(image)
    m = np.asarray(matrix, dtype=np.float64)
    a_inv = np.linalg.inv(m[:, :2])                            # crop -> image
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)       # (S, S) crop pixel centres
    crop_pts = np.stack([xs - m[0, 2], ys - m[1, 2]], -1)      # (S, S, 2)
    src = crop_pts @ a_inv.T                                   # (S, S, 2) image (x, y)
    coords = np.stack([src[..., 1], src[..., 0]])              # (2, S, S) (row, col)
    planes = img[..., None] if img.ndim == 2 else img
    out = np.stack([ndimage.map_coordinates(planes[..., c].astype(np.float64), coords, order=1, mode="constant",
                                            cval=float(fill)) for c in range(planes.shape[-1])], -1)
    if img.dtype == np.uint8:
        out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    else:
        out = out.astype(img.dtype)
    return out[..., 0] if img.ndim == 2 else out


def as_rgb(image: np.ndarray, path=None) -> np.ndarray:
    """(H, W, 3) uint8 from (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 (grey replicated, alpha dropped)."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise InputError(path, f"expected a uint8 image, got dtype {img.dtype}")
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[-1] not in (1, 3, 4):
        raise InputError(path, f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {img.shape}")
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    return np.ascontiguousarray(img[..., :3])


def align_image(image: np.ndarray, landmarks: np.ndarray, size: int = DIMNET_SIZE) -> np.ndarray:
    """Aligned face crop: similarity-warp ``image`` so its landmarks land on the template (thesis Sec. 2.3.2).

    Args:
        image: (H, W, 3) uint8 RGB (greyscale (H, W) is replicated to 3 channels).
        landmarks: (5, 2) alignment points or (68, 2) iBUG landmarks, image pixels (x, y).
        size: 128 (DIMNet) or 64 (GAN); any size >= 8 works.
    Returns:
        (size, size, 3) uint8 RGB crop; areas outside the image are black.
    """
    return warp_affine(as_rgb(image), alignment_transform(landmarks, size), size)


def to_tensor(crop: np.ndarray) -> torch.Tensor:
    """(S, S, 3) uint8 crop -> (3, S, S) float32 tensor scaled as (x - 127.5) / 127.5, in [-1, 1]."""
    c = as_rgb(crop)
    t = torch.from_numpy(c).permute(2, 0, 1).to(torch.float32)  # (3, S, S)
    return (t - 127.5) / 127.5


def from_tensor(tensor: torch.Tensor) -> np.ndarray:
    """Inverse of ``to_tensor``: (3, S, S) float in [-1, 1] -> (S, S, 3) uint8 (values clipped)."""
    t = tensor.detach().to("cpu", torch.float32)
    return (t * 127.5 + 127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
