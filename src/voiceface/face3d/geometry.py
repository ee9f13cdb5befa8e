"""Geometry for the 3D face stack: rotations, weak-perspective projection (Eq. 4.7), the in-plane alignment warp
(Eq. 4.5), vertex normals and spherical-harmonics Lambertian shading (Sec. 4.3.2, "Illumination").

Coordinate conventions (used by every function here and by ``voiceface.face3d.render``)
---------------------------------------------------------------------------------------
* **Model frame** (the morphable model's vertices ``S``): x to the viewer's right, y up, z out of the face towards
  the viewer (the BFM / FLAME convention); triangles are counter-clockwise seen from outside, so the normals from
  :func:`vertex_normals` point outwards.
* **Viewpoint** ``v`` (B, 7), Sec. 4.3.2: ``v[:, 0]`` log-scale, ``v[:, 1:4]`` rotation vector ``w`` (axis * angle,
  radians), ``v[:, 4:7]`` translation ``(tx, ty, tz)`` in pixels.
* **Image / screen frame** (the output ``Q`` of :func:`project`, the input of the rasteriser): ``Q[..., 0]`` is the
  column coordinate x in pixels, ``Q[..., 1]`` the row coordinate y in pixels, growing *downwards*, with the image's
  top-left corner at (0, 0), so the centre of pixel (row i, column j) is (j + 0.5, i + 0.5); ``Q[..., 2]`` is
  **depth**, growing *away* from the viewer (smaller depth = nearer; the z-buffer keeps the smallest).
  Going from the model frame to the image frame flips y and z: ``Q = exp(v1) * F R(w) S + t`` with
  ``F = diag(1, -1, -1)``. With a pure in-plane rotation (w = (0, 0, v4)) the x/y part of ``Q`` is exactly the map of
  Eq. 4.5 applied to the canonical coordinates ``(x', y') = (S_x, -S_y)``, so the two equations agree.
* **Spherical harmonics**: normals are unit vectors in the model frame *after rotation* (i.e. ``R n``, y up, z towards
  the viewer), so light coefficients describe the light in camera-aligned directions independent of head pose.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# Flip from the model frame (y up, z to viewer) to the image frame (y down, depth away from viewer).
_FLIP = (1.0, -1.0, -1.0)


def skew(w: torch.Tensor) -> torch.Tensor:
    """Cross-product matrix ``[w]_x`` of vectors ``w`` (..., 3) -> (..., 3, 3)."""
    x, y, z = w.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], dim=-1).reshape(*w.shape[:-1], 3, 3)


def rotation_matrix(w: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula (the rotation of Eq. 4.7): rotation vectors ``w`` (..., 3) -> matrices (..., 3, 3).

    ``R = I + a(phi) [w]_x + b(phi) [w]_x^2`` with ``phi = |w|``, ``a = sin(phi)/phi``, ``b = (1 - cos(phi))/phi^2``;
    this equals Eq. 4.7's ``u u^T + cos(phi) (I - u u^T) + sin(phi) [u]_x`` with ``u = w / phi``. Near ``phi = 0`` the
    coefficients use their Taylor series, so values and gradients are finite (and exact) at ``w = 0``.
    """
    theta2 = (w * w).sum(-1)  # (...)
    small = theta2 < 1e-6
    safe2 = torch.where(small, torch.ones_like(theta2), theta2)
    theta = safe2.sqrt()
    a = torch.where(small, 1.0 - theta2 / 6.0 + theta2 * theta2 / 120.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0 + theta2 * theta2 / 720.0, (1.0 - torch.cos(theta)) / safe2)
    k = skew(w)  # (..., 3, 3)
    eye = torch.eye(3, dtype=w.dtype, device=w.device).expand_as(k)
    return eye + a[..., None, None] * k + b[..., None, None] * (k @ k)


def split_viewpoint(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Viewpoint ``v`` (B, 7) -> (log_scale (B,), rotation vector (B, 3), translation (B, 3))."""
    if v.shape[-1] != 7:
        raise ValueError(f"viewpoint must have 7 entries (log-scale, rotation vector, translation), "
                         f"got {tuple(v.shape)}")
    return v[..., 0], v[..., 1:4], v[..., 4:7]


def project(shape: torch.Tensor, viewpoint: torch.Tensor) -> torch.Tensor:
    """Weak-perspective projection of Eq. 4.7: model-frame shapes -> image-frame points with depth.

    Args:
        shape: (B, V, 3) vertices S in the model frame (y up, z towards the viewer).
        viewpoint: (B, 7) ``v = (log-scale, w (3), t (3))``; t in pixels.
    Returns:
        Q: (B, V, 3) with x = column, y = row (downwards) in pixels and depth (away from the viewer), see the
        module docstring; ``Q = exp(v1) * diag(1, -1, -1) R(w) S + t``.
    """
    log_s, w, t = split_viewpoint(viewpoint)
    rot = rotation_matrix(w)  # (B, 3, 3)
    flip = shape.new_tensor(_FLIP)
    q = torch.einsum("bij,bvj->bvi", rot, shape) * flip  # (B, V, 3)
    return torch.exp(log_s)[:, None, None] * q + t[:, None, :]


def rotate(points: torch.Tensor, viewpoint: torch.Tensor) -> torch.Tensor:
    """Rotate model-frame vectors (B, V, 3) by the viewpoint's rotation only (e.g. normals for shading)."""
    return torch.einsum("bij,bvj->bvi", rotation_matrix(split_viewpoint(viewpoint)[1]), points)


def make_viewpoint(batch: int, image_size: int | tuple[int, int], scale: float | torch.Tensor,
                   rotation: torch.Tensor | None = None, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """A viewpoint (B, 7) that puts the model origin at the image centre with ``scale`` pixels per model unit.

    Args:
        batch: B.  image_size: H or (H, W).  scale: float or (B,) pixels per model unit.
        rotation: optional (B, 3) rotation vectors (default: frontal).
    """
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    v = torch.zeros(batch, 7, dtype=dtype, device=device)
    v[:, 0] = torch.log(torch.as_tensor(scale, dtype=dtype, device=device))
    if rotation is not None:
        v[:, 1:4] = rotation.to(dtype=dtype, device=device)
    v[:, 4] = w / 2.0
    v[:, 5] = h / 2.0
    return v


def alignment_theta(viewpoint: torch.Tensor, image_size: tuple[int, int], extent: float | tuple[float, float]
                    ) -> torch.Tensor:
    """The affine map of Eq. 4.5 in ``affine_grid``'s normalised coordinates (B, 2, 3).

    The canonical crop spans ``extent`` model units (width, height) centred on the model origin; a canonical point
    ``(x', y')`` (model units, y down) maps to the image pixel
    ``x = e^{v1}(cos v4 x' + sin v4 y') + v5``, ``y = e^{v1}(-sin v4 x' + cos v4 y') + v6``.
    """
    h, w = image_size
    ex, ey = (extent, extent) if isinstance(extent, (int, float)) else extent
    log_s, rot, t = split_viewpoint(viewpoint)
    s = torch.exp(log_s)
    c, sn = torch.cos(rot[:, 2]), torch.sin(rot[:, 2])
    # image pixel -> normalised input coordinate: X = 2x/W - 1; canonical normalised X' -> x' = X' ex / 2
    row0 = torch.stack([2.0 / w * s * c * ex / 2, 2.0 / w * s * sn * ey / 2, 2.0 * t[:, 0] / w - 1.0], dim=-1)
    row1 = torch.stack([2.0 / h * -s * sn * ex / 2, 2.0 / h * s * c * ey / 2, 2.0 * t[:, 1] / h - 1.0], dim=-1)
    return torch.stack([row0, row1], dim=1)


def align_crop(image: torch.Tensor, viewpoint: torch.Tensor, out_size: int | tuple[int, int],
               extent: float | tuple[float, float]) -> torch.Tensor:
    """The in-plane alignment of Eq. 4.5: ``(I o v)(x', y') = I(x, y)``, bilinear and differentiable in I and v.

    Args:
        image: (B, C, H, W) images.
        viewpoint: (B, 7); only the log-scale v1, the in-plane rotation v4 and the translation v5, v6 are used.
        out_size: crop size Ho or (Ho, Wo).
        extent: width (or (width, height)) of the crop in model units, centred on the model origin.
    Returns:
        (B, C, Ho, Wo) canonical-view crops; outside the image is zero.
    """
    ho, wo = (out_size, out_size) if isinstance(out_size, int) else out_size
    theta = alignment_theta(viewpoint.to(image.dtype), image.shape[-2:], extent)
    grid = F.affine_grid(theta, [image.shape[0], image.shape[1], ho, wo], align_corners=False)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def face_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Unnormalised face normals (B, F, 3) = (v1 - v0) x (v2 - v0); their length is twice the triangle area."""
    v0, v1, v2 = (verts[:, faces[:, k]] for k in range(3))
    return torch.cross(v1 - v0, v2 - v0, dim=-1)


def vertex_normals(verts: torch.Tensor, faces: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Area-weighted unit vertex normals.

    Args:
        verts: (B, V, 3).  faces: (F, 3) long, counter-clockwise seen from outside.
    Returns:
        (B, V, 3) unit normals (zero for vertices in no triangle).
    """
    fn = face_normals(verts, faces)  # (B, F, 3), area-weighted
    acc = torch.zeros_like(verts)
    idx = faces.reshape(-1)  # (3F,)
    acc = acc.index_add(1, idx, fn.repeat_interleave(3, dim=1))
    return acc / acc.norm(dim=-1, keepdim=True).clamp_min(eps)


# Real spherical harmonics up to band 2 (constants 1/(2 sqrt(pi)), sqrt(3/(4 pi)), ...).
SH_C0 = 0.5 / math.sqrt(math.pi)
SH_C1 = math.sqrt(3.0 / (4.0 * math.pi))
SH_C2 = 0.5 * math.sqrt(15.0 / math.pi)
SH_C20 = 0.25 * math.sqrt(5.0 / math.pi)
SH_C22 = 0.25 * math.sqrt(15.0 / math.pi)
# Lambertian (clamped-cosine) convolution per band divided by pi (Ramamoorthi & Hanrahan 2001): radiance of a
# unit-albedo Lambertian surface is sum_lm (A_l / pi) L_lm Y_lm(n) with A = (pi, 2 pi / 3, pi / 4).
SH_LAMBERT = (1.0, 2.0 / 3.0, 0.25)


def sh_basis(normals: torch.Tensor) -> torch.Tensor:
    """The 9 real SH basis functions Y_lm at unit directions (..., 3) -> (..., 9).

    Order: Y00, Y1-1 (y), Y10 (z), Y11 (x), Y2-2 (xy), Y2-1 (yz), Y20 (3z^2 - 1), Y21 (xz), Y22 (x^2 - y^2).
    """
    x, y, z = normals.unbind(-1)
    return torch.stack([
        torch.full_like(x, SH_C0),
        SH_C1 * y, SH_C1 * z, SH_C1 * x,
        SH_C2 * x * y, SH_C2 * y * z, SH_C20 * (3.0 * z * z - 1.0), SH_C2 * x * z, SH_C22 * (x * x - y * y),
    ], dim=-1)


def _lambert_weights(dtype, device) -> torch.Tensor:
    a0, a1, a2 = SH_LAMBERT
    return torch.tensor([a0, a1, a1, a1, a2, a2, a2, a2, a2], dtype=dtype, device=device)


def sh_shading(normals: torch.Tensor, light: torch.Tensor) -> torch.Tensor:
    """Lambertian SH shading (Sec. 4.3.2, 9 coefficients): radiance of a unit-albedo surface.

    Args:
        normals: (B, V, 3) unit normals (camera-aligned model frame, see the module docstring).
        light: (B, 9) grey light or (B, 3, 9) per-colour light (SH coefficients of the incident radiance).
    Returns:
        (B, V, 1) for grey light, (B, V, 3) for per-colour light; ``shading = sum_k (A_l/pi) L_k Y_k(n)``.
    """
    basis = sh_basis(normals) * _lambert_weights(normals.dtype, normals.device)  # (B, V, 9)
    if light.dim() == 2:
        return torch.einsum("bvk,bk->bv", basis, light)[..., None]
    if light.dim() == 3:
        return torch.einsum("bvk,bck->bvc", basis, light)
    raise ValueError(f"light must be (B, 9) or (B, 3, 9), got {tuple(light.shape)}")


def shade(albedo: torch.Tensor, normals: torch.Tensor, light: torch.Tensor) -> torch.Tensor:
    """Lambertian SH colours: albedo (B, V, 3) * :func:`sh_shading` (normals (B, V, 3), light (B, 9)|(B, 3, 9))."""
    return albedo * sh_shading(normals, light)


def sh_light(batch: int, ambient: float = 1.0, direction=(0.0, 0.0, 1.0), intensity: float = 0.0,
             *, dtype=torch.float32, device=None) -> torch.Tensor:
    """Grey SH light (B, 9): ``ambient`` plus a distant light of ``intensity`` from ``direction``.

    Shading is ``ambient`` everywhere for ``intensity = 0``, and approximately
    ``ambient + intensity * max(0, n . d)`` otherwise (the order-2 SH approximation of the clamped cosine).
    """
    d = torch.as_tensor(direction, dtype=dtype, device=device)
    d = d / d.norm().clamp_min(1e-12)
    coef = intensity * math.pi * sh_basis(d)  # delta light: L_lm = I * Y_lm(d); times pi undoes the 1/pi
    coef = coef.clone()
    coef[0] = coef[0] + ambient / SH_C0
    return coef.expand(batch, 9).clone()
