"""CEST networks (Sec. 4.3.2, Eq. 4.4-4.8, Tables 4.1-4.2): conditional estimation of viewpoint, shape,
reflectance and illumination, and the differentiable re-rendering I_hat = R(S, R, v, l) (Sec. 4.3.1).

Order of estimation (``conditional=True``, CEST, Fig. 4.2)::

    v     = f_v(I)                                   (B, 7)  log-scale, rotation vector, translation
    I o v = Eq. 4.5 crop of I (bilinear affine warp)  (B, 3, S, S)
    alpha = f_s(I o v)                               (B, Ki + Ke) identity + expression coefficients (Eq. 4.6)
    Q     = project(S(alpha), v)                     (B, V, 3)  Eq. 4.7
    T     = unwrap(I, Q)                             (B, 3, U, U)  Eq. 4.8, occluded triangles masked out
    A     = f_r(T)                                   (B, 3, U, U)  U-Net with additive skips (Table 4.2)
    R     = Psi(A)                                   (B, V, 3)
    l     = f_l(I, T, A)                             (B, 9) or (B, 3, 9) SH

IEST (``conditional=False``, the ablation of Fig. 4.4(b)): the same four networks fed the image alone
(alpha = f_s(I), A = f_r(I), l = f_l(I)). No training code here.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...face3d import geometry, render
from ...face3d.model import MorphableModel
from .config import NetConfig


def conv_bn_relu(cin: int, cout: int, k: int, stride: int, pad: int) -> nn.Sequential:
    """Conv k x k (stride, padding) + BN + ReLU, the unit of Tables 4.1 and 4.2."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, pad, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ResBlock(nn.Module):
    """The bracketed pair of Conv 3x3/1,1 + BN + ReLU layers of Table 4.1, with an identity shortcut."""

    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn_relu(c, c, 3, 1, 1), conv_bn_relu(c, c, 3, 1, 1))

    def forward(self, x):                                   # (B, C, H, W) -> (B, C, H, W)
        return x + self.body(x)


def _levels(size: int) -> int:
    n = int(round(math.log2(size / 4)))
    if size < 16 or 4 * 2 ** n != size:
        raise ValueError(f"image / UV size must be a power of two >= 16, got {size}")
    return n


def _widths(widths, n: int, mult: float) -> list[int]:
    w = list(widths)
    if len(w) < n:
        w = [w[0]] * (n - len(w)) + w
    return [max(4, int(round(x * mult))) for x in w[-n:]]


class Encoder(nn.Module):
    """Table 4.1 encoder: stride-2 Conv 4x4 stages from S down to 4x4 (residual blocks after the stages ending at
    16x16 and 8x8), then a 4x4 valid convolution to a 1x1xd output. The last layer starts at zero, so the
    network initially outputs the prior (zero offsets).

    Args: in_ch, out_dim (d), widths (one per stage, tail used), size S, width_mult.
    Input (B, in_ch, S, S) -> output (B, d).
    """

    def __init__(self, in_ch: int, out_dim: int, widths, size: int, width_mult: float = 1.0):
        super().__init__()
        n = _levels(size)
        ws = _widths(widths, n, width_mult)
        layers, c, side = [], in_ch, size
        for w in ws:
            layers.append(conv_bn_relu(c, w, 4, 2, 1))
            side //= 2
            c = w
            if side in (16, 8):
                layers.append(ResBlock(c))
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(c, out_dim, 4, 1, 0)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x):
        return self.head(self.body(x)).flatten(1)          # (B, d)


class UNet(nn.Module):
    """Table 4.2 reflectance network: encoder levels (Conv 4x4/2 + Conv 3x3, the latter's output kept as a
    shortcut except at 4x4), decoder levels (2x bilinear upsample, Conv 3x3, Conv 3x3, plus the shortcut added,
    not concatenated), then upsample, Conv 3x3 + BN + ReLU and Conv 3x3 + Tanh.

    Input (B, in_ch, U, U) -> output (B, out_ch, U, U) in (-1, 1).
    """

    def __init__(self, in_ch: int, out_ch: int, widths, size: int, width_mult: float = 1.0):
        super().__init__()
        n = _levels(size)
        ws = _widths(widths, n, width_mult)
        self.down = nn.ModuleList()
        c = in_ch
        for w in ws:
            self.down.append(nn.Sequential(conv_bn_relu(c, w, 4, 2, 1), conv_bn_relu(w, w, 3, 1, 1)))
            c = w
        self.up = nn.ModuleList()
        for i in range(n - 2, -1, -1):
            self.up.append(nn.Sequential(conv_bn_relu(ws[i + 1], ws[i], 3, 1, 1), conv_bn_relu(ws[i], ws[i], 3, 1, 1)))
        self.out = nn.Sequential(conv_bn_relu(ws[0], out_ch, 3, 1, 1), nn.Conv2d(out_ch, out_ch, 3, 1, 1), nn.Tanh())

    def forward(self, x):
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        for layer, skip in zip(self.up, reversed(skips[:-1])):
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = layer(x) + skip                              # additive shortcut (Table 4.2)
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return self.out(x)


def mirror_index(vertices: np.ndarray) -> np.ndarray:
    """(V,) index of each vertex's mirror image across the x = 0 plane (nearest vertex to (-x, y, z)) of a
    left-right symmetric mean shape (V, 3); ``R[mirror]`` is the horizontally flipped reflectance R^x."""
    from scipy.spatial import cKDTree

    v = np.asarray(vertices, dtype=np.float64)
    _, idx = cKDTree(v).query(v * np.array([-1.0, 1.0, 1.0]))
    return idx.astype(np.int64)


class CEST(nn.Module):
    """The CEST estimator + renderer (Eq. 4.4). ``face`` is the (fixed) morphable model of Eq. 4.6.

    forward(images (B, 3, S, S) in [0, 1]) -> dict:
        viewpoint (B, 7); crop (B, 3, S, S) (Eq. 4.5); coeffs (B, Ki + Ke); shape (B, V, 3) (Eq. 4.6);
        verts_screen Q (B, V, 3) (Eq. 4.7); texture T (B, 3, U, U) and texture_mask (B, 1, U, U) (Eq. 4.8);
        uv_reflectance A (B, 3, U, U) in [0, 1]; reflectance R (B, V, 3) (Psi); light (B, 9) or (B, 3, 9);
        face_id (B, S, S) the z-buffer of Q (reused by :meth:`render` when the size matches).
    """

    def __init__(self, face: MorphableModel, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        self.face = face
        s = cfg.image_size
        self.uv_size = cfg.uv_size or s
        _levels(s)
        _levels(self.uv_size)
        self.n_id, self.n_exp = face.num_identity, face.num_expression
        self.light_dim = 27 if cfg.per_channel_light else 9
        self.f_v = Encoder(3, 7, cfg.encoder_widths, s, cfg.width_mult)
        self.f_s = Encoder(3, self.n_id + self.n_exp, cfg.shape_widths, s, cfg.width_mult)
        self.f_r = UNet(3, 3, cfg.unet_widths, self.uv_size, cfg.width_mult)
        self.f_l = Encoder(9 if cfg.conditional else 3, self.light_dim, cfg.encoder_widths, s, cfg.width_mult)
        # neutral viewpoint: model origin at the image centre, eye-to-mouth distance = face_fraction * S
        lm = face.mean[face.landmarks68].double()
        eyes = 0.5 * (lm[36:42].mean(0) + lm[42:48].mean(0))
        mouth = 0.5 * (lm[48] + lm[54])
        scale = cfg.face_fraction * s / float((eyes - mouth).norm())
        v0 = geometry.make_viewpoint(1, s, scale)[0]
        v0[4:6] = v0[4:6] + torch.tensor([-1.0, 1.0]) * scale * lm[:, :2].mean(0).float()
        self.register_buffer("v0", v0, persistent=False)
        self.register_buffer("v_step", torch.tensor([0.1, 0.1, 0.1, 0.1, 0.05 * s, 0.05 * s, 0.05 * s]),
                             persistent=False)
        self.extent = s / scale                              # model units spanned by the Eq. 4.5 crop
        ambient = torch.zeros(self.light_dim)
        ambient[0::9] = 1.0 / geometry.SH_C0                 # zero network output = white ambient light
        self.register_buffer("light0", ambient, persistent=False)
        self.register_buffer("mirror", torch.from_numpy(mirror_index(face.mean.cpu().numpy())), persistent=False)
        self._uv_raster = None
        self._edges = None

    # ---- helpers ----
    def uv_raster(self) -> render.UVRaster:
        if self._uv_raster is None or self._uv_raster.face_id.device != self.face.uv.device:
            self._uv_raster = render.uv_rasterize(self.face.uv, self.face.triangles, self.uv_size)
        return self._uv_raster

    def edges(self):
        if self._edges is None or self._edges[0].device != self.face.triangles.device:
            self._edges = render.mesh_edges(self.face.triangles)
        return self._edges

    def flip(self, reflectance: torch.Tensor) -> torch.Tensor:
        """R^x: (..., V, 3) reflectance mirrored left-right through the model's vertex symmetry."""
        return reflectance[..., self.mirror, :]

    @torch.no_grad()
    def visible_triangles(self, q: torch.Tensor, face_id: torch.Tensor, tol: float = 0.03) -> torch.Tensor:
        """(B, F) bool triangles of Eq. 4.8's unwrap: front-facing and not occluded, i.e. the centroid's depth is
        within ``tol`` x the crop extent (scaled to pixels) of the z-buffer at the centroid's pixel. Unlike "wins a
        pixel centre", this keeps triangles smaller than a pixel, so T has no holes at low resolution.

        Args: q (B, V, 3) projected shape; face_id (B, S, S) its z-buffer triangle ids.
        """
        faces = self.face.triangles
        b, s = q.shape[0], face_id.shape[-1]
        frags = render.fragments_from_ids(q.detach(), faces, face_id)
        zbuf = torch.full((b * s * s,), float("inf"), dtype=q.dtype, device=q.device)
        zbuf[frags.pix] = frags.depth
        tri = q.detach()[:, faces]                                             # (B, F, 3, 3)
        x, y = tri[..., 0], tri[..., 1]
        area2 = (x[..., 1] - x[..., 0]) * (y[..., 2] - y[..., 0]) - (y[..., 1] - y[..., 0]) * (x[..., 2] - x[..., 0])
        c = tri.mean(2)                                                        # (B, F, 3) centroids
        col = c[..., 0].floor().long().clamp(0, s - 1)
        row = c[..., 1].floor().long().clamp(0, s - 1)
        base = (torch.arange(b, device=q.device) * s * s)[:, None]
        zb = zbuf[base + row * s + col]                                        # (B, F)
        scale = q.new_tensor(tol * self.extent) * (s / self.cfg.image_size)
        pix_tol = scale * torch.exp(self.v0[0])                                 # model units -> pixels (neutral scale)
        return (area2 < 0) & (c[..., 2] <= zb + pix_tol) & torch.isfinite(zb)

    def shape_from_coeffs(self, coeffs: torch.Tensor) -> torch.Tensor:
        """Eq. 4.6: coeffs (B, Ki + Ke) -> vertices (B, V, 3)."""
        return self.face.shape(coeffs[:, :self.n_id], coeffs[:, self.n_id:] if self.n_exp else None)

    def light_from_output(self, out: torch.Tensor) -> torch.Tensor:
        light = out + self.light0
        return light.view(-1, 3, 9) if self.light_dim == 27 else light

    # ---- Eq. 4.4 ----
    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = images * 2.0 - 1.0                                                # (B, 3, S, S) in [-1, 1]
        v = self.v0 + self.f_v(x) * self.v_step                               # (B, 7)
        crop = geometry.align_crop(x, v, self.cfg.image_size, self.extent)    # Eq. 4.5
        coeffs = self.f_s(crop if self.cfg.conditional else x)                # (B, Ki + Ke)
        shape = self.shape_from_coeffs(coeffs)                                # (B, V, 3)
        q = geometry.project(shape, v)                                        # (B, V, 3) Eq. 4.7
        s = self.cfg.image_size
        face_id = render.rasterize_ids(q, self.face.triangles, s)            # (B, S, S), one z-buffer pass
        visible = self.visible_triangles(q, face_id)                         # occluded triangles ignored
        tex, tex_mask = render.uv_unwrap(images, q, self.face.triangles, self.face.uv, uv_raster=self.uv_raster(),
                                         visible=visible)
        if self.cfg.conditional:
            a = self.f_r(tex * 2.0 - 1.0)                                     # A = f_r(T)
        else:
            a = self.f_r(F.interpolate(x, size=self.uv_size, mode="bilinear", align_corners=False))
        a = (a + 1.0) * 0.5                                                   # (B, 3, U, U) in [0, 1]
        refl = render.uv_to_vertex(a, self.face.uv)                           # R = Psi(A), (B, V, 3)
        if self.cfg.conditional:
            li = torch.cat([x, F.interpolate(torch.cat([tex, a], 1) * 2 - 1, size=s, mode="bilinear",
                                             align_corners=False)], 1)        # (B, 9, S, S)
        else:
            li = x
        light = self.light_from_output(self.f_l(li))
        return {"viewpoint": v, "crop": crop, "coeffs": coeffs, "shape": shape, "verts_screen": q, "face_id": face_id,
                "texture": tex, "texture_mask": tex_mask, "uv_reflectance": a, "reflectance": refl, "light": light}

    def shading(self, shape: torch.Tensor, viewpoint: torch.Tensor, light: torch.Tensor) -> torch.Tensor:
        """Per-vertex SH shading (B, V, 1|3) of shapes (B, V, 3) seen from viewpoint (B, 7) under light."""
        normals = geometry.rotate(geometry.vertex_normals(shape, self.face.triangles), viewpoint)
        return geometry.sh_shading(normals, light)

    def render(self, verts_screen: torch.Tensor, shading: torch.Tensor, reflectances: torch.Tensor,
               size: int | None = None, face_id: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """I_hat = R(S, R, v, l) for k reflectances at once (one rasterisation, 3k channels, black background).

        Args:
            verts_screen: (B, V, 3) projected shape Q.  shading: (B, V, 1|3).
            reflectances: (B, k, V, 3) vertex reflectances.
            face_id: optional (B, S, S) z-buffer of ``verts_screen`` (from :meth:`forward`) to skip rasterising.
        Returns:
            image (B, k, 3, S, S), mask (B, 1, S, S) anti-aliased coverage.
        """
        b, k, nv, _ = reflectances.shape
        s = size or self.cfg.image_size
        faces = self.face.triangles
        colors = (reflectances * shading[:, None]).permute(0, 2, 1, 3).reshape(b, nv, k * 3)
        if face_id is None or face_id.shape[-1] != s:
            face_id = render.rasterize_ids(verts_screen, faces, s)
        frags = render.fragments_from_ids(verts_screen, faces, face_id)
        vals = render.interpolate(colors, faces, frags)                                    # (N, 3k)
        dense = frags.to_dense(torch.cat([vals, torch.ones_like(vals[:, :1])], -1))        # (B, 3k + 1, S, S)
        depth = torch.full(face_id.shape, float("inf"), dtype=vals.dtype, device=vals.device)
        depth = depth.reshape(-1).index_put((frags.pix,), frags.depth.detach()).view_as(depth)
        out = render.antialias(dense, verts_screen, faces, face_id, depth, self.edges())
        return {"image": out[:, :3 * k].reshape(b, k, 3, s, s), "mask": out[:, 3 * k:]}


def build_model(cfg: NetConfig, face: MorphableModel | None = None) -> CEST:
    """The CEST (or IEST) module for ``cfg`` with the configured morphable model."""
    from ...face3d import load_model

    return CEST(face if face is not None else load_model(cfg.model), cfg)
