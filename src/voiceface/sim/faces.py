"""Rendered faces of the simulated world: aligned still photos and short video clips with full ground truth.

Stills (DIMNet Sec. 2.3.2, GAN Sec. 3.3.1 inputs): a person's 3D face (identity shape plus one of their expressions)
is rendered with the pure-PyTorch rasteriser (``voiceface.face3d.render.render_face``, Sec. 4.3.1) under a
random, mostly near-frontal viewpoint (Eq. 4.7: log-scale, rotation vector, translation), random coloured
9-coefficient SH light (Sec. 4.3.2; ambient plus a key light from in front) that the camera's automatic exposure
and white balance partly compensate, over a random textured background, with camera noise; then its 68 projected
landmarks go through the *same* alignment as real photos (``voiceface.face.align``: 68 -> 5 points, similarity to
the template) to give 128x128 and 64x64 crops.

Clips (CEST, Ch. 4): F frames of one person with pose, light and expression varying smoothly (cosine interpolation
between random key states), rendered unaligned at the preset's clip size, with per-frame ground truth.

Coordinate conventions: ``pose`` arrays are the renderer's viewpoints (B, 7) in its screen frame (pixel (i, j) has
its centre at (j + 0.5, i + 0.5)); *clip* landmarks are in that screen frame (``geometry.project(shape, pose)``'s
x, y at the 68 landmark vertices), *still* landmarks (the JSON next to each crop) are in the face front end's crop
pixel convention (pixel centre at (j, i)), i.e. exactly where ``face.align`` put them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..face import align
from ..face3d import geometry, render
from . import looks

MAX_YAW_DEG = 30.0
MAX_PITCH_DEG = 15.0
MAX_ROLL_DEG = 10.0


@dataclass(frozen=True)
class RenderKit:
    """What rendering needs from the face model, prepared once.

    Attributes:
        faces: (F, 3) long triangles.
        lm68: (68,) long vertex indices of the iBUG landmarks.
        edges: cached ``render.mesh_edges`` of the triangles.
        anchor: (3,) model point at the centre of the 5 alignment points of the mean face.
        eye_mouth: distance (model units) between the eye-centre midpoint and the mouth-corner midpoint (mean face).
    """

    faces: torch.Tensor
    lm68: torch.Tensor
    edges: tuple
    anchor: torch.Tensor
    eye_mouth: float

    @classmethod
    def build(cls, mean_shape: torch.Tensor, faces: torch.Tensor, lm68) -> "RenderKit":
        """From the model's mean shape (V, 3), triangles (F, 3) and 68 landmark vertex indices."""
        faces = torch.as_tensor(faces, dtype=torch.long)
        lm68 = torch.as_tensor(np.asarray(lm68), dtype=torch.long)
        pts = mean_shape[lm68].double().numpy()                                   # (68, 3)
        eyes = 0.5 * (pts[list(align.LEFT_EYE_68)].mean(0) + pts[list(align.RIGHT_EYE_68)].mean(0))
        mouth = 0.5 * (pts[align.LEFT_MOUTH_68] + pts[align.RIGHT_MOUTH_68])
        five = np.stack([pts[list(align.LEFT_EYE_68)].mean(0), pts[list(align.RIGHT_EYE_68)].mean(0),
                         pts[align.NOSE_TIP_68], pts[align.LEFT_MOUTH_68], pts[align.RIGHT_MOUTH_68]])
        return cls(faces=faces, lm68=lm68, edges=render.mesh_edges(faces),
                   anchor=torch.as_tensor(five.mean(0), dtype=torch.float32),
                   eye_mouth=float(np.linalg.norm(eyes - mouth)))


# ---------------------------------------------------------------------------------------------------------------
# Random viewing conditions
# ---------------------------------------------------------------------------------------------------------------

def euler_to_rotvec(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Rotation vectors (N, 3) of R = Rz(roll) Ry(yaw) Rx(pitch) (model frame, radians)."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_euler("ZYX", np.stack([roll, yaw, pitch], -1)).as_rotvec()


def viewpoints(kit: RenderKit, rotvec: np.ndarray, size: int, face_frac: np.ndarray, shift: np.ndarray
               ) -> np.ndarray:
    """Viewpoints (N, 7) placing the face's alignment centre at the image centre plus ``shift`` (N, 2) (fraction
    of the size), with the eye-to-mouth distance spanning ``face_frac`` (N,) of the image."""
    n = len(rotvec)
    scale = face_frac * size / kit.eye_mouth
    v = np.zeros((n, 7))
    v[:, 0] = np.log(scale)
    v[:, 1:4] = rotvec
    # translation so that the anchor lands at the target pixel: t = target - s * diag(1,-1,-1) R anchor
    vt = torch.as_tensor(v, dtype=torch.float32)
    q0 = geometry.project(kit.anchor.expand(n, 1, 3).contiguous(), vt)[:, 0].double().numpy()   # (N, 3)
    target = size / 2.0 + shift * size
    v[:, 4:6] = target - q0[:, :2]
    v[:, 6] = 0.0
    return v


def sample_rotations(rng: np.random.Generator, n: int, scale: float = 1.0) -> np.ndarray:
    """(N, 3) random head rotations: yaw, pitch, roll uniform within +/- the MAX_*_DEG limits times ``scale``."""
    yaw = np.deg2rad(rng.uniform(-MAX_YAW_DEG, MAX_YAW_DEG, n) * scale)
    pitch = np.deg2rad(rng.uniform(-MAX_PITCH_DEG, MAX_PITCH_DEG, n) * scale)
    roll = np.deg2rad(rng.uniform(-MAX_ROLL_DEG, MAX_ROLL_DEG, n) * scale)
    return euler_to_rotvec(yaw, pitch, roll)


def sample_photo_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """(N, 3) head rotations of still photos: like real photo collections, mostly near-frontal: yaw, pitch and
    roll normal with sd 1/4 of the MAX_*_DEG limits, truncated at the limits."""
    lim = np.array([MAX_YAW_DEG, MAX_PITCH_DEG, MAX_ROLL_DEG])
    a = np.deg2rad(np.clip(lim / 4.0 * rng.standard_normal((n, 3)), -lim, lim))
    return euler_to_rotvec(a[:, 0], a[:, 1], a[:, 2])


def sample_lights(rng: np.random.Generator, n: int) -> np.ndarray:
    """(N, 3, 9) coloured SH lights: ambient (tinted by a colour temperature) plus one distant key light from in
    front (up to ~20 deg to the side, from level to well above; its SH projection, as
    ``geometry.sh_light``)."""
    ambient = rng.uniform(0.6, 0.95, n)
    intensity = rng.uniform(0.1, 0.45, n)
    d = np.stack([rng.uniform(-0.3, 0.3, n), rng.uniform(0.0, 0.6, n), rng.uniform(0.7, 1.0, n)], -1)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    basis = geometry.sh_basis(torch.as_tensor(d, dtype=torch.float64)).numpy()          # (N, 9)
    coef = intensity[:, None] * np.pi * basis
    coef[:, 0] += ambient / geometry.SH_C0
    warm = rng.uniform(-0.6, 0.6, n)
    tint = np.stack([1.0 + 0.08 * warm, np.ones(n), 1.0 - 0.1 * warm], -1) * rng.uniform(0.97, 1.03, (n, 3))
    return coef[:, None, :] * tint[:, :, None]


def sample_backgrounds(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """(N, 3, S, S) float backgrounds in [0, 1], muted as real photo backgrounds are: a grey level tinted towards
    one of a few everyday hues (grey, beige/brown, blue, green, warm white) at low saturation, a linear
    brightness gradient and a smooth, mostly achromatic blob texture (bilinearly upsampled random grids)."""
    hues = np.array([[1.0, 1.0, 1.0], [1.18, 1.0, 0.78], [0.82, 0.95, 1.2], [0.9, 1.06, 0.9], [1.06, 1.02, 0.94]])
    level = rng.uniform(0.12, 0.85, (n, 1))
    sat = rng.uniform(0.2, 1.0, (n, 1))
    base = (level * (1.0 + sat * (hues[rng.integers(0, len(hues), n)] - 1.0)))[:, :, None, None]
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1) - 0.5
    ang = rng.uniform(0, 2 * np.pi, n)
    grad = (np.cos(ang)[:, None, None] * xx + np.sin(ang)[:, None, None] * yy)[:, None]     # (N, 1, S, S)
    cells = int(rng.integers(3, 8))
    grid = rng.uniform(-1, 1, (n, 1, cells, cells)) + 0.2 * rng.uniform(-1, 1, (n, 3, cells, cells))
    tex = torch.nn.functional.interpolate(torch.as_tensor(grid, dtype=torch.float32), size=(size, size),
                                          mode="bicubic", align_corners=True).numpy()
    amp = rng.uniform(0.0, 0.2, (n, 1, 1, 1))
    return np.clip(base + rng.uniform(0, 0.3, (n, 1, 1, 1)) * grad + amp * tex, 0.0, 1.0)


def camera_noise(rng: np.random.Generator, images: np.ndarray) -> np.ndarray:
    """Per-image exposure, gamma and Gaussian sensor noise: (N, H, W, 3) float [0, 1] -> uint8."""
    n = len(images)
    gain = rng.uniform(0.85, 1.15, (n, 1, 1, 1))
    gamma = rng.uniform(0.85, 1.15, (n, 1, 1, 1))
    sd = rng.uniform(0.5, 4.0, (n, 1, 1, 1)) / 255.0
    x = np.clip(images * gain, 0.0, 1.0) ** gamma + sd * rng.standard_normal(images.shape)
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


# ---------------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------------

AUTO_EXPOSURE = 0.85
"""How far a still camera's automatic exposure and white balance cancel the light falling on the face (0: not
at all, 1: fully)."""


def auto_expose(rng: np.random.Generator, shapes: torch.Tensor, faces_: torch.Tensor, poses: np.ndarray,
                lights: np.ndarray) -> np.ndarray:
    """Lights (B, 3, 9) rescaled per colour channel as a camera's automatic exposure and white balance would: the
    mean Lambertian shading of the front of the face is brought towards 1 (by ``AUTO_EXPOSURE``), with a residual
    exposure error of +/-7 %. shapes: (B, V, 3); faces_: (F, 3); poses: (B, 7)."""
    front = torch.as_tensor(looks.face_vertices())
    with torch.no_grad():
        normals = geometry.rotate(geometry.vertex_normals(shapes.float(), faces_)[:, front],
                                  torch.as_tensor(poses, dtype=torch.float32))
        shading = geometry.sh_shading(normals, torch.as_tensor(lights, dtype=torch.float32))   # (B, Vf, 3)
    level = np.clip(shading.mean(1).double().numpy(), 0.05, None)                              # (B, 3)
    gain = level ** -AUTO_EXPOSURE * rng.uniform(0.93, 1.07, (len(level), 1))
    return lights * gain[:, :, None]


def render_batch(kit: RenderKit, shapes: torch.Tensor, albedo: torch.Tensor, poses: np.ndarray, lights: np.ndarray,
                 backgrounds: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """Render faces over backgrounds.

    Args:
        shapes: (B, V, 3) model-frame vertices.  albedo: (B, V, 3) or (V, 3) reflectance in [0, 1].
        poses: (B, 7) viewpoints.  lights: (B, 3, 9) SH.  backgrounds: (B, 3, S, S).  size: S.
    Returns:
        dict: image (B, S, S, 3) float [0, 1] (before camera noise), mask (B, S, S) bool (face pixels),
        landmarks (B, 68, 2) screen-frame x, y (pixel centre at j + 0.5).
    """
    b = shapes.shape[0]
    if albedo.dim() == 2:
        albedo = albedo.expand(b, -1, -1)
    with torch.no_grad():
        out = render.render_face(shapes.float(), albedo.float(), torch.as_tensor(poses, dtype=torch.float32),
                                 torch.as_tensor(lights, dtype=torch.float32), size, faces=kit.faces,
                                 background=torch.as_tensor(backgrounds, dtype=torch.float32),
                                 edges=kit.edges)
    img = out["image"].clamp(0, 1).permute(0, 2, 3, 1).numpy()
    mask = out["hard_mask"][:, 0].numpy() > 0.5
    lm = out["verts_screen"][:, kit.lm68, :2].double().numpy()
    return {"image": img, "mask": mask, "landmarks": lm}


def aligned_stills(kit: RenderKit, rng: np.random.Generator, shapes: torch.Tensor, albedo: torch.Tensor,
                   render_size: int, sizes=(align.DIMNET_SIZE, align.GAN_SIZE), look=None) -> list[dict]:
    """Render B still photos under random conditions and align them as real photos are aligned.

    Args:
        shapes: (B, V, 3) (identity + expression) shapes of one or more people.  albedo: (B, V, 3) or (V, 3).
        render_size: side of the rendered "photo" before alignment.  look: the person's ``looks.Look`` (long
        hair is painted behind the head, ``looks.paint_hair``; glasses over the face, ``looks.paint_glasses``) or
        None.
    Returns:
        B dicts: ``crops`` {size: (size, size, 3) uint8}, ``landmarks`` {size: (68, 2) crop pixels},
        ``pose`` (7,), ``light`` (3, 9), ``photo_landmarks`` (68, 2) (front end convention, photo pixels).
    """
    b = shapes.shape[0]
    rot = sample_photo_rotations(rng, b)
    frac = rng.uniform(0.19, 0.22, b)
    shift = rng.uniform(-0.04, 0.04, (b, 2))
    poses = viewpoints(kit, rot, render_size, frac, shift)
    lights = auto_expose(rng, shapes, kit.faces, poses, sample_lights(rng, b))
    bg = looks.paint_hair(sample_backgrounds(rng, b, render_size), poses, lights, look, rng)
    out = render_batch(kit, shapes, albedo, poses, lights, bg, render_size)
    photos = camera_noise(rng, looks.paint_glasses(out["image"], poses, look, rng))
    lm_photo = out["landmarks"] - 0.5                       # renderer centre (j + 0.5) -> front end centre (j)
    results = []
    for i in range(b):
        crops, lms = {}, {}
        for s in sizes:
            m = align.alignment_transform(lm_photo[i], s)
            crops[s] = align.warp_affine(photos[i], m, s)
            lms[s] = align.apply_transform(m, lm_photo[i])
        results.append({"crops": crops, "landmarks": lms, "pose": poses[i], "light": lights[i],
                        "photo_landmarks": lm_photo[i]})
    return results


def _smooth_path(rng: np.random.Generator, start: np.ndarray, end: np.ndarray, frames: int) -> np.ndarray:
    """(F, ...) cosine interpolation from ``start`` to ``end`` through a random midpoint (smooth motion)."""
    mid = 0.5 * (start + end) + 0.25 * (end - start) * rng.standard_normal(start.shape)
    t = np.linspace(0.0, 1.0, frames)
    w = 0.5 - 0.5 * np.cos(np.pi * t)                                           # ease in/out
    first = start + (mid - start) * np.clip(2 * w, 0, 1)[(...,) + (None,) * start.ndim]
    second = mid + (end - mid) * np.clip(2 * w - 1, 0, 1)[(...,) + (None,) * start.ndim]
    return np.where((w <= 0.5)[(...,) + (None,) * start.ndim], first, second)


def render_clip(kit: RenderKit, rng: np.random.Generator, identity_shape: torch.Tensor, exp_basis: torch.Tensor | None,
                expr_start: np.ndarray, expr_end: np.ndarray, albedo: torch.Tensor, frames: int, size: int,
                look=None) -> dict[str, np.ndarray]:
    """A video clip of one person with smoothly varying pose, light and expression.

    Args:
        identity_shape: (V, 3) neutral shape.  exp_basis: (Ke, V, 3) or None.  expr_start, expr_end: (Ke,).
        albedo: (V, 3).  frames: F.  size: S.  look: ``looks.Look`` (hair behind the head) or None.
    Returns:
        frames (F, S, S, 3) uint8, masks (F, S, S) bool, landmarks (F, 68, 2) float32 (screen frame),
        expression (F, Ke) float32, pose (F, 7) float32, light (F, 27) float32 ((3, 9) flattened, RGB-major).
    """
    ends = [sample_rotations(rng, 1, 0.8)[0], sample_rotations(rng, 1, 0.8)[0]]
    rot = _smooth_path(rng, ends[0], ends[1], frames)                            # (F, 3)
    frac = _smooth_path(rng, np.array([rng.uniform(0.24, 0.3)]), np.array([rng.uniform(0.24, 0.3)]), frames)[:, 0]
    shift = _smooth_path(rng, rng.uniform(-0.05, 0.05, 2), rng.uniform(-0.05, 0.05, 2), frames)
    poses = viewpoints(kit, rot, size, frac, shift)
    l0, l1 = sample_lights(rng, 2)
    lights = _smooth_path(rng, l0, l1, frames)                                   # (F, 3, 9)
    expr = _smooth_path(rng, expr_start, expr_end, frames)                       # (F, Ke)
    shapes = identity_shape.expand(frames, -1, -1)
    if exp_basis is not None and exp_basis.shape[0]:
        shapes = shapes + torch.einsum("fk,kvc->fvc", torch.as_tensor(expr, dtype=torch.float32), exp_basis)
    bg = looks.paint_hair(np.repeat(sample_backgrounds(rng, 1, size), frames, axis=0), poses, lights, look, rng)
    out = render_batch(kit, shapes, albedo, poses, lights, bg, size)
    return {"frames": camera_noise(rng, out["image"]), "masks": out["mask"],
            "landmarks": out["landmarks"].astype(np.float32), "expression": expr.astype(np.float32),
            "pose": poses.astype(np.float32), "light": lights.reshape(frames, 27).astype(np.float32)}
