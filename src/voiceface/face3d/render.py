"""Differentiable triangle rasteriser in pure PyTorch (CPU and CUDA), the renderer R(S, R, v, l) of Sec. 4.3.1-4.3.2,
UV unwrapping of an image (Eq. 4.8) and the UV wrap Psi (Sec. 4.3.2, "Reflectance").

Screen convention (see ``voiceface.face3d.geometry``): vertices (B, V, 3) are (x = column, y = row downwards, depth)
in pixels, pixel (i, j) has its centre at (j + 0.5, i + 0.5), and the nearest surface has the *smallest* depth.

How it works (no Python loop over triangles or pixels):

1. Visibility (no gradient): every triangle's pixel bounding box is expanded into candidate (pixel, triangle) pairs
   with ``repeat_interleave`` (in chunks of at most ``chunk`` pairs); the edge functions give the inside test and the
   depth; a ``scatter_reduce(amin)`` over a 64-bit key ``(ordered depth bits << 32) | triangle`` resolves the z-test
   (ties go to the lower triangle index) in one pass.
2. Barycentrics (differentiable): for the winning triangle of each covered pixel, the barycentrics are recomputed
   from the vertex positions (Eq. 4.8's coefficients, via edge functions), so interpolated attributes are
   differentiable w.r.t. vertex positions, vertex attributes (colours) and anything upstream (light, albedo).
3. Anti-aliasing (differentiable silhouettes): an analytic edge pass in the spirit of nvdiffrast's ``antialias``.
   Occluding-contour edges (mesh borders and edges between a front- and a back-facing triangle on screen) are
   walked row by row (steep edges) or column by column (flat ones), vectorised like the triangles in step 1. Where
   a contour edge crosses the segment between two horizontally / vertically adjacent pixel centres that show
   different surfaces (the nearer one ``s``; the other ``d`` is background or farther away), the outermost crossing
   at fraction ``t`` from ``s`` blends the pixel on the far side of the midpoint by ``|t - 1/2|`` towards the other
   pixel's value (1-D box-filter coverage). ``t`` is a differentiable function of the edge's vertices, so the mask
   and the image carry gradients w.r.t. silhouette vertex positions. Like nvdiffrast's, it is an approximation: a
   sliver or tip that covers no pixel centre of either pixel of a pair is missed.

An ``nvdiffrast`` backend is used automatically on CUDA when the package is installed (``backend="auto"``); it returns
the same dictionary (without ``fragments``). It has NOT been tested (nvdiffrast is not installed in the development
environment).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from voiceface.errors import MissingDependencyError
from voiceface.face3d import geometry

_INT64_MAX = torch.iinfo(torch.int64).max
DEFAULT_CHUNK = 1 << 21


def _hw(image_size) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    h, w = image_size
    return int(h), int(w)


def _ordered_bits(z: torch.Tensor) -> torch.Tensor:
    """float32 (N,) -> int64 (N,) with the same order (IEEE-754 bits; negative floats get magnitude bits flipped)."""
    i = z.float().contiguous().view(torch.int32)
    i = torch.where(i < 0, i ^ 0x7FFFFFFF, i)
    return i.to(torch.int64)


@dataclass
class Fragments:
    """What the rasteriser found, per covered pixel (N covered pixels over the batch).

    face_id: (B, H, W) long, winning triangle per pixel, -1 for background.
    pix: (N,) long flat index ``b * H * W + i * W + j`` of covered pixels.  batch: (N,) long.  face: (N,) long.
    bary: (N, 3) barycentrics of the pixel centre in its triangle (differentiable w.r.t. vertex positions).
    depth: (N,) interpolated depth (differentiable).
    """
    face_id: torch.Tensor
    pix: torch.Tensor
    batch: torch.Tensor
    face: torch.Tensor
    bary: torch.Tensor
    depth: torch.Tensor

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.face_id.shape)

    def to_dense(self, values: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
        """Scatter per-fragment values (N, C) into (B, C, H, W) (differentiable)."""
        b, h, w = self.shape
        out = values.new_full((b * h * w, values.shape[-1]), fill)
        out = out.index_put((self.pix,), values)
        return out.reshape(b, h, w, -1).permute(0, 3, 1, 2)


def _edge_terms(x, y, px, py):
    """Edge functions e_k of the edges opposite vertex k at points (px, py); x, y: (..., 3) triangle coordinates."""
    x0, x1, x2 = x.unbind(-1)
    y0, y1, y2 = y.unbind(-1)
    e0 = (x1 - px) * (y2 - py) - (y1 - py) * (x2 - px)
    e1 = (x2 - px) * (y0 - py) - (y2 - py) * (x0 - px)
    e2 = (x0 - px) * (y1 - py) - (y0 - py) * (x1 - px)
    return e0, e1, e2


@torch.no_grad()
def rasterize_ids(verts: torch.Tensor, faces: torch.Tensor, image_size, *, cull_backfaces: bool = False,
                  chunk: int = DEFAULT_CHUNK) -> torch.Tensor:
    """Z-buffered visibility: the nearest triangle covering each pixel centre (not differentiable).

    Args:
        verts: (B, V, 3) screen-space vertices (x, y in pixels, depth; smaller depth is nearer).
        faces: (F, 3) long triangle indices.
        image_size: H or (H, W).
        cull_backfaces: drop triangles that are clockwise on screen as seen by the viewer (back-facing for
            counter-clockwise model triangles, see ``geometry``).
        chunk: the most candidate (pixel, triangle) pairs processed at once (memory ~ 100 bytes per pair).
    Returns:
        face_id: (B, H, W) long, -1 where no triangle covers the pixel centre.
    """
    h, w = _hw(image_size)
    bsz, nf = verts.shape[0], faces.shape[0]
    dev = verts.device
    tri = verts.detach().index_select(1, faces.reshape(-1)).view(bsz, nf, 3, 3)  # (B, F, 3, 3)
    x, y, z = tri[..., 0], tri[..., 1], tri[..., 2]  # (B, F, 3)
    area2 = (x[..., 1] - x[..., 0]) * (y[..., 2] - y[..., 0]) - (y[..., 1] - y[..., 0]) * (x[..., 2] - x[..., 0])
    valid = (area2.abs() > 1e-12) & torch.isfinite(area2 + z.sum(-1))  # non-finite x, y or z -> dropped
    if cull_backfaces:
        valid &= area2 < 0
    c0 = torch.ceil(x.amin(-1) - 0.5).clamp(0, w).long()
    c1 = torch.floor(x.amax(-1) - 0.5).clamp(-1, w - 1).long()
    r0 = torch.ceil(y.amin(-1) - 0.5).clamp(0, h).long()
    r1 = torch.floor(y.amax(-1) - 0.5).clamp(-1, h - 1).long()
    nx = (c1 - c0 + 1).clamp_min(0)
    ny = (r1 - r0 + 1).clamp_min(0)
    count = (nx * ny * valid).reshape(-1)  # (B*F,)
    keep = count.nonzero().squeeze(1)  # flat (b, f) indices with candidates
    count = count[keep]
    # Edge functions as planes e_k(px, py) = A_k px + B_k py + C_k (edge opposite vertex k), times sign(area) so that
    # "inside" is all e_k >= 0; the coefficients of a shared edge are exact negations in the two triangles, so the
    # inside test is watertight. Depth is a plane too: z = Dx px + Dy py + Dc.
    xs, ys, zs = (t.reshape(-1, 3)[keep] for t in (x, y, z))  # (N, 3)
    x1, x2 = xs.roll(-1, 1), xs.roll(-2, 1)  # x_{k+1}, x_{k+2}
    y1, y2 = ys.roll(-1, 1), ys.roll(-2, 1)
    sgn = torch.sign(area2.reshape(-1)[keep])[:, None]
    ca, cb, cc = (y1 - y2) * sgn, (x2 - x1) * sgn, (x1 * y2 - y1 * x2) * sgn  # (N, 3) each
    inv = 1.0 / area2.reshape(-1)[keep].abs()[:, None]
    dz = torch.stack([(ca * zs).sum(1), (cb * zs).sum(1), (cc * zs).sum(1)], 1) * inv  # (N, 3)
    fcoef = torch.cat([ca, cb, cc, dz], 1)  # (N, 12)
    flat_bf = keep
    bidx = torch.div(flat_bf, nf, rounding_mode="floor")
    icoef = torch.stack([c0.reshape(-1)[keep], r0.reshape(-1)[keep], nx.reshape(-1)[keep], bidx * (h * w),
                         flat_bf - bidx * nf], 1)  # (N, 5): first column, first row, box width, pixel base, face

    zbuf = torch.full((bsz * h * w,), _INT64_MAX, dtype=torch.int64, device=dev)
    ends = torch.cumsum(count, 0)
    start = 0
    while start < len(keep):
        # chunk of triangles whose candidate pairs fit in `chunk` (at least one triangle)
        base = int(ends[start - 1]) if start > 0 else 0
        stop = int(torch.searchsorted(ends, torch.tensor(base + chunk, device=dev), right=True))
        stop = max(stop, start + 1)
        cnt = count[start:stop]
        n_pairs = int(ends[stop - 1]) - base
        tid = torch.repeat_interleave(torch.arange(start, stop, device=dev), cnt, output_size=n_pairs)  # (P,)
        first = torch.cumsum(cnt, 0) - cnt
        local = torch.arange(n_pairs, device=dev) - torch.repeat_interleave(first, cnt, output_size=n_pairs)
        ic = icoef.index_select(0, tid)  # (P, 5)
        fc = fcoef.index_select(0, tid)  # (P, 12)
        dy = torch.div(local, ic[:, 2], rounding_mode="floor")
        col = ic[:, 0] + local - dy * ic[:, 2]
        row = ic[:, 1] + dy
        px = (col.to(fc.dtype) + 0.5)[:, None]
        py = (row.to(fc.dtype) + 0.5)[:, None]
        e = torch.addcmul(torch.addcmul(fc[:, 6:9], fc[:, 0:3], px), fc[:, 3:6], py)  # (P, 3) edge functions
        sel = (e.amin(1) >= 0).nonzero().squeeze(1)  # pairs whose pixel centre is inside the triangle
        fs, pxs, pys = fc.index_select(0, sel), px.index_select(0, sel)[:, 0], py.index_select(0, sel)[:, 0]
        depth = fs[:, 9] * pxs + fs[:, 10] * pys + fs[:, 11]
        ok = torch.isfinite(depth)
        pix = (ic[:, 3] + row * w + col).index_select(0, sel)[ok]
        key = (_ordered_bits(depth[ok]) << 32) | ic[:, 4].index_select(0, sel)[ok]
        zbuf.scatter_reduce_(0, pix, key, reduce="amin", include_self=True)
        start = stop
    fid = torch.where(zbuf == _INT64_MAX, torch.full_like(zbuf, -1), zbuf & 0xFFFFFFFF)
    return fid.reshape(bsz, h, w)


def fragments_from_ids(verts: torch.Tensor, faces: torch.Tensor, face_id: torch.Tensor) -> Fragments:
    """Differentiable barycentrics and depth of each covered pixel's centre in its winning triangle.

    Args:
        verts: (B, V, 3) screen-space vertices (the gradient flows to them).  faces: (F, 3).
        face_id: (B, H, W) from :func:`rasterize_ids`.
    """
    b, h, w = face_id.shape
    flat = face_id.reshape(-1)
    pix = (flat >= 0).nonzero().squeeze(1)  # (N,)
    face = flat[pix]
    batch = torch.div(pix, h * w, rounding_mode="floor")
    rem = pix - batch * (h * w)
    row = torch.div(rem, w, rounding_mode="floor")
    col = rem - row * w
    vid = (faces.index_select(0, face) + (batch * verts.shape[1])[:, None]).reshape(-1)  # (3N,) flat vertex ids
    tri = verts.reshape(-1, 3).index_select(0, vid).view(-1, 3, 3)  # (N, 3, 3)
    px = col.to(verts.dtype) + 0.5
    py = row.to(verts.dtype) + 0.5
    e = torch.stack(_edge_terms(tri[..., 0], tri[..., 1], px, py), dim=-1)  # (N, 3)
    bary = e / e.sum(-1, keepdim=True)
    depth = (bary * tri[..., 2]).sum(-1)
    return Fragments(face_id=face_id, pix=pix, batch=batch, face=face, bary=bary, depth=depth)


def rasterize(verts: torch.Tensor, faces: torch.Tensor, image_size, *, cull_backfaces: bool = False,
              chunk: int = DEFAULT_CHUNK) -> Fragments:
    """Rasterise (B, V, 3) screen-space meshes with faces (F, 3) into :class:`Fragments` (z-test, barycentrics)."""
    return fragments_from_ids(verts, faces, rasterize_ids(verts, faces, image_size, cull_backfaces=cull_backfaces,
                                                           chunk=chunk))


def interpolate(attrs: torch.Tensor, faces: torch.Tensor, frags: Fragments) -> torch.Tensor:
    """Barycentric interpolation of vertex attributes (B, V, C) -> per-fragment values (N, C) (differentiable)."""
    c = attrs.shape[-1]
    vid = (faces.index_select(0, frags.face) + (frags.batch * attrs.shape[1])[:, None]).reshape(-1)
    vals = attrs.reshape(-1, c).index_select(0, vid).view(-1, 3, c)  # (N, 3, C)
    return torch.einsum("nk,nkc->nc", frags.bary.to(vals.dtype), vals)


def mesh_edges(faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unique undirected edges of a triangle mesh and the triangles on each side.

    Args:
        faces: (F, 3) long.
    Returns:
        edges (E, 2) vertex indices and edge_faces (E, 2) triangle indices (second = -1 on a mesh border).
    """
    nf = faces.shape[0]
    a = torch.stack([faces[:, 1], faces[:, 2], faces[:, 0]], dim=1).reshape(-1)  # edge opposite vertex k
    b = torch.stack([faces[:, 2], faces[:, 0], faces[:, 1]], dim=1).reshape(-1)
    nv = int(faces.max()) + 1 if nf else 1
    key = torch.minimum(a, b) * nv + torch.maximum(a, b)  # (3F,)
    order = torch.argsort(key, stable=True)
    sk = key[order]
    face_of = torch.div(order, 3, rounding_mode="floor")
    is_first = torch.ones_like(sk, dtype=torch.bool)
    is_first[1:] = sk[1:] != sk[:-1]
    has_next = torch.zeros_like(is_first)
    has_next[:-1] = sk[1:] == sk[:-1]
    first = is_first.nonzero().squeeze(1)  # one row per unique edge (a third sharer of a non-manifold edge is dropped)
    other = torch.where(has_next[first], face_of[(first + 1).clamp_max(len(sk) - 1)], torch.full_like(first, -1))
    edges = torch.stack([a[order[first]], b[order[first]]], dim=1)
    return edges, torch.stack([face_of[first], other], dim=1)


def _signed_area2(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    tri = verts[:, faces]
    x, y = tri[..., 0], tri[..., 1]
    return (x[..., 1] - x[..., 0]) * (y[..., 2] - y[..., 0]) - (y[..., 1] - y[..., 0]) * (x[..., 2] - x[..., 0])


@torch.no_grad()
def contour_edges(verts: torch.Tensor, faces: torch.Tensor, edges: torch.Tensor, edge_faces: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Occluding-contour candidates: mesh borders and edges between a front- and a back-facing triangle on screen.

    Returns (batch index (M,), edge index (M,)).
    """
    sgn = torch.sign(_signed_area2(verts, faces))  # (B, F)
    s0 = sgn[:, edge_faces[:, 0]]
    s1 = torch.where(edge_faces[:, 1] >= 0, sgn[:, edge_faces[:, 1].clamp_min(0)], torch.zeros_like(s0))
    is_contour = (edge_faces[:, 1] < 0) | (s0 != s1)
    bi, ei = is_contour.nonzero(as_tuple=True)
    return bi, ei


def _edge_crossings(p0: torch.Tensor, p1: torch.Tensor, h: int, w: int, axis: int):
    """Where edges cross the lines through pixel centres (no gradient).

    ``axis = 0``: horizontal pixel pairs, one per pixel row the edge spans; ``axis = 1``: vertical pairs, one per
    column. p0, p1: (M, 3) screen endpoints.
    Returns (edge row index into p0 (P,), line index (P,) = row or column, pair start (P,) = column or row).
    """
    a = 1 if axis == 0 else 0  # the coordinate along which lines are enumerated
    lo = torch.minimum(p0[:, a], p1[:, a])
    hi = torch.maximum(p0[:, a], p1[:, a])
    n_lines = h if axis == 0 else w
    first = torch.ceil(lo - 0.5).clamp(0, n_lines).long()
    last = torch.floor(hi - 0.5).clamp(-1, n_lines - 1).long()
    cnt = (last - first + 1).clamp_min(0)
    total = int(cnt.sum())
    eidx = torch.repeat_interleave(torch.arange(len(cnt), device=p0.device), cnt, output_size=total)
    start = torch.cumsum(cnt, 0) - cnt
    line = first[eidx] + torch.arange(total, device=p0.device) - torch.repeat_interleave(start, cnt, output_size=total)
    return eidx, line


def antialias(image: torch.Tensor, verts: torch.Tensor, faces: torch.Tensor, face_id: torch.Tensor,
              depth: torch.Tensor, edges: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Analytic silhouette anti-aliasing (differentiable w.r.t. the image and the contour vertices).

    For each occluding-contour edge (see :func:`contour_edges`) and each pixel row and column it crosses, the pixel
    pair straddling the crossing is examined: if the pixels show different triangles, one nearer (``s``) than the
    other (``d``, or background) and the edge lies in front of ``d``, the outermost such crossing at fraction ``t``
    from ``s`` blends the pixel on the far side of the midpoint by ``|t - 1/2|`` (1-D box-filter coverage along the
    pair). Horizontal pairs are weighted by ``|dy| / (|dx| + |dy|)`` of the edge and vertical pairs by
    ``|dx| / (|dx| + |dy|)``, so each edge is counted once and the result is continuous in the edge's direction.

    Args:
        image: (B, C, H, W) rendered values (colours and the hard mask as channels).
        verts: (B, V, 3) screen-space vertices.  faces: (F, 3).  face_id: (B, H, W).
        depth: (B, H, W) per-pixel depth, +inf on background.
        edges: cached :func:`mesh_edges` result.
    Returns:
        (B, C, H, W) anti-aliased image.
    """
    bsz, c, h, w = image.shape
    edge_v, edge_f = mesh_edges(faces) if edges is None else edges
    bi, ei = contour_edges(verts, faces, edge_v, edge_f)
    flat_img = image.permute(0, 2, 3, 1).reshape(-1, c)
    fid = face_id.reshape(-1)
    zflat = depth.reshape(-1)
    out = flat_img
    for axis in (0, 1):
        with torch.no_grad():
            p0 = verts[bi, edge_v[ei, 0]].detach()
            p1 = verts[bi, edge_v[ei, 1]].detach()
            k, line = _edge_crossings(p0, p1, h, w, axis)
            a, o = (1, 0) if axis == 0 else (0, 1)
            q0, q1 = p0[k], p1[k]
            frac = (line.to(q0.dtype) + 0.5 - q0[:, a]) / (q1[:, a] - q0[:, a])
            cross = q0[:, o] + frac * (q1[:, o] - q0[:, o])  # crossing coordinate along the pair axis
            zc = q0[:, 2] + frac * (q1[:, 2] - q0[:, 2])
            first = torch.floor(cross - 0.5).long()  # pair (first, first + 1) along the pair axis
            n_along = w if axis == 0 else h
            ok = (first >= 0) & (first + 1 < n_along)
            b = bi[k]
            if axis == 0:
                pa = b * (h * w) + line * w + first
                pb = pa + 1
            else:
                pa = b * (h * w) + first * w + line
                pb = pa + w
            pa, pb = pa.clamp(0, bsz * h * w - 1), pb.clamp(0, bsz * h * w - 1)
            za, zb = zflat[pa], zflat[pb]
            a_front = za < zb  # the occluding side s
            s_i = torch.where(a_front, pa, pb)
            d_i = torch.where(a_front, pb, pa)
            ok &= (fid[s_i] >= 0) & (fid[s_i] != fid[d_i]) & (zc < zflat[d_i])
            u = cross - (first.to(cross.dtype) + 0.5)
            t = torch.where(a_front, u, 1 - u)
            ok &= (t >= 0) & (t <= 1)
            sel = ok.nonzero().squeeze(1)
            # outermost crossing per pair: max t, ties to the lower candidate index
            key = (_ordered_bits(t[sel]) << 32) | (2**31 - 1 - sel)
            best = torch.full((bsz * h * w,), torch.iinfo(torch.int64).min, dtype=torch.int64, device=image.device)
            best.scatter_reduce_(0, pa[sel], key, reduce="amax", include_self=True)  # one slot per pair (pa < pb)
            win = sel[best[pa[sel]] == key]
        if len(win) == 0:
            continue
        # differentiable crossing for the winners
        vb = bi[k[win]]
        e0 = verts[vb, edge_v[ei[k[win]], 0]]
        e1 = verts[vb, edge_v[ei[k[win]], 1]]
        frac_g = (line[win].to(e0.dtype) + 0.5 - e0[:, a]) / (e1[:, a] - e0[:, a])
        u_g = e0[:, o] + frac_g * (e1[:, o] - e0[:, o]) - (first[win].to(e0.dtype) + 0.5)
        t_g = torch.where(a_front[win], u_g, 1 - u_g)
        da, do = (e1[:, a] - e0[:, a]).abs(), (e1[:, o] - e0[:, o]).abs()
        share = da / (da + do)  # this pair direction's share of the edge
        sw, dw = s_i[win], d_i[win]
        cs, cd = flat_img[sw], flat_img[dw]
        far = t_g > 0.5  # the edge passes the midpoint: the destination pixel is partly covered
        wgt = (torch.where(far, t_g - 0.5, 0.5 - t_g) * share)[:, None]
        target = torch.where(far, dw, sw)
        delta = torch.where(far[:, None], cs - cd, cd - cs) * wgt
        out = out.index_add(0, target, delta)
    return out.reshape(bsz, h, w, c).permute(0, 3, 1, 2)


def _background(background, like: torch.Tensor) -> torch.Tensor:
    bsz, c, h, w = like.shape
    if background is None:
        return torch.zeros_like(like)
    bg = torch.as_tensor(background, dtype=like.dtype, device=like.device)
    if bg.dim() <= 1:
        bg = bg.reshape(1, -1, 1, 1)
    elif bg.dim() == 2:
        bg = bg[..., None, None]
    return bg.expand(bsz, c, h, w)


_NV_CONTEXTS: dict = {}


def nvdiffrast_available(device: torch.device) -> bool:
    if device.type != "cuda":
        return False
    try:
        import nvdiffrast.torch  # noqa: F401
    except ImportError:
        return False
    return True


def _render_nvdiffrast(verts, faces, colors, image_size, background, antialias_edges):
    """nvdiffrast backend (CUDA only). UNTESTED: nvdiffrast is not installed where this was written."""
    import nvdiffrast.torch as dr

    h, w = image_size
    z = verts[..., 2]
    zmin = z.detach().amin(1, keepdim=True)
    zmax = z.detach().amax(1, keepdim=True)
    zn = (z - zmin) / (zmax - zmin).clamp_min(1e-6) * 1.8 - 0.9
    # clip space: x, y in [-1, 1] over the image (row 0 is y = -1 in nvdiffrast's output), z in [-1, 1], w = 1
    pos = torch.stack([2 * verts[..., 0] / w - 1, 2 * verts[..., 1] / h - 1, zn, torch.ones_like(zn)], -1)
    tri = faces.to(torch.int32).contiguous()
    ctx = _NV_CONTEXTS.get(verts.device)
    if ctx is None:  # one rasteriser context per device, created on first use
        ctx = _NV_CONTEXTS[verts.device] = dr.RasterizeCudaContext(device=verts.device)
    rast, _ = dr.rasterize(ctx, pos.contiguous(), tri, resolution=[h, w])
    ones = torch.ones_like(colors[..., :1])
    attrs = torch.cat([colors, ones, z[..., None]], -1).contiguous()
    out, _ = dr.interpolate(attrs, rast, tri)  # (B, H, W, C+2)
    face_id = rast[..., 3].long() - 1
    fg = (face_id >= 0)[..., None]
    c = colors.shape[-1]
    bg = _background(background, out[..., :c + 1].permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    col = torch.where(fg, out[..., :c], bg[..., :c])
    rgba = torch.cat([col, out[..., c:c + 1] * fg], -1)
    if antialias_edges:
        rgba = dr.antialias(rgba.contiguous(), rast, pos, tri)
    u, v = rast[..., 0], rast[..., 1]
    bary = torch.stack([u, v, 1 - u - v], -1) * fg
    return {
        "image": rgba[..., :c].permute(0, 3, 1, 2), "mask": rgba[..., c:].permute(0, 3, 1, 2),
        "hard_mask": fg.permute(0, 3, 1, 2).to(colors.dtype), "face_id": face_id,
        "bary": bary, "depth": (out[..., c + 1:] * fg).permute(0, 3, 1, 2), "backend": "nvdiffrast",
    }


def render(verts_screen: torch.Tensor, faces: torch.Tensor, vertex_colors: torch.Tensor, image_size, *,
           background=None, antialias_edges: bool = True, cull_backfaces: bool = False, backend: str = "auto",
           edges: tuple[torch.Tensor, torch.Tensor] | None = None, chunk: int = DEFAULT_CHUNK) -> dict:
    """Render batched triangle meshes with per-vertex attributes (the renderer R of Sec. 4.3.1).

    Args:
        verts_screen: (B, V, 3) screen-space vertices (x column, y row in pixels, depth; nearer is smaller).
        faces: (F, 3) long.
        vertex_colors: (B, V, C) per-vertex values (RGB or any C).
        image_size: H or (H, W).
        background: None (zeros), a scalar, (C,), (B, C) or (B, C, H, W).
        antialias_edges: run the analytic silhouette anti-aliasing (needed for silhouette gradients).
        cull_backfaces: drop triangles clockwise on screen (see :func:`rasterize_ids`).
        backend: "auto" (nvdiffrast on CUDA when installed, else torch), "torch" or "nvdiffrast".
        edges: optional cached :func:`mesh_edges` result (for repeated renders of one topology).
    Returns:
        dict with image (B, C, H, W), mask (B, 1, H, W) anti-aliased coverage, hard_mask (B, 1, H, W),
        face_id (B, H, W) long (-1 = background), bary (B, H, W, 3), depth (B, 1, H, W) (0 on background),
        fragments (:class:`Fragments`, torch backend only), backend (str).
    """
    h, w = _hw(image_size)
    if verts_screen.dim() != 3 or verts_screen.shape[-1] != 3:
        raise ValueError(f"verts_screen must be (B, V, 3), got {tuple(verts_screen.shape)}")
    if vertex_colors.shape[:2] != verts_screen.shape[:2]:
        raise ValueError(f"vertex_colors {tuple(vertex_colors.shape)} do not match verts {tuple(verts_screen.shape)}")
    faces = faces.to(device=verts_screen.device, dtype=torch.long)
    if backend == "nvdiffrast" and not nvdiffrast_available(verts_screen.device):
        if verts_screen.device.type != "cuda":
            raise ValueError("the nvdiffrast backend needs CUDA tensors")
        raise MissingDependencyError("nvdiffrast", None, "the nvdiffrast rendering backend",
                                     command="install NVlabs' nvdiffrast on a CUDA machine")
    if backend == "nvdiffrast" or (backend == "auto" and nvdiffrast_available(verts_screen.device)):
        return _render_nvdiffrast(verts_screen, faces, vertex_colors, (h, w), background, antialias_edges)
    if backend not in ("auto", "torch"):
        raise ValueError(f"unknown backend {backend!r} (auto, torch, nvdiffrast)")
    frags = rasterize(verts_screen, faces, (h, w), cull_backfaces=cull_backfaces, chunk=chunk)
    c = vertex_colors.shape[-1]
    vals = interpolate(vertex_colors, faces, frags)  # (N, C)
    ones = torch.ones_like(vals[:, :1])
    dense = frags.to_dense(torch.cat([vals, ones, frags.depth[:, None].to(vals.dtype)], -1))  # (B, C+2, H, W)
    hard = dense[:, c:c + 1]
    depth = dense[:, c + 1:]
    img = dense[:, :c] + (1 - hard) * _background(background, dense[:, :c])
    rgba = torch.cat([img, hard], 1)
    if antialias_edges:
        depth_for_aa = torch.where(frags.face_id >= 0, depth[:, 0].detach(), torch.full_like(depth[:, 0], float("inf")))
        rgba = antialias(rgba, verts_screen, faces, frags.face_id, depth_for_aa, edges)
    bary = frags.to_dense(frags.bary).permute(0, 2, 3, 1)
    return {"image": rgba[:, :c], "mask": rgba[:, c:], "hard_mask": hard, "face_id": frags.face_id, "bary": bary,
            "depth": depth, "fragments": frags, "backend": "torch"}


def render_face(shape: torch.Tensor, albedo: torch.Tensor, viewpoint: torch.Tensor, light: torch.Tensor | None,
                size, *, faces: torch.Tensor, background=None, **kwargs) -> dict:
    """Render shapes with albedo under SH light from a viewpoint: R(S, R, v, l) of Sec. 4.3.1.

    Args:
        shape: (B, V, 3) model-frame vertices S.  albedo: (B, V, 3) reflectance R in [0, 1].
        viewpoint: (B, 7) (Eq. 4.7).  light: (B, 9) | (B, 3, 9) SH coefficients, or None for unlit albedo.
        size: H or (H, W).  faces: (F, 3).
    Returns:
        :func:`render`'s dict plus ``verts_screen`` (B, V, 3) and ``colors`` (B, V, 3) (shaded vertex colours).
    """
    faces = faces.to(device=shape.device, dtype=torch.long)
    q = geometry.project(shape, viewpoint)
    if light is None:
        colors = albedo
    else:
        normals = geometry.rotate(geometry.vertex_normals(shape, faces), viewpoint)
        colors = geometry.shade(albedo, normals, light)
    out = render(q, faces, colors, size, background=background, **kwargs)
    out["verts_screen"] = q
    out["colors"] = colors
    return out


# ---------------------------------------------------------------------------------------------------------------
# UV space: unwrap (Eq. 4.8) and wrap (Psi)
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class UVRaster:
    """The mesh rasterised once in UV space: per texel its triangle (S, S) (-1 outside) and barycentrics (S, S, 3).

    UV convention (OpenGL / OBJ): ``uv`` (V, 2) in [0, 1]; u runs along columns (left to right), v upwards (v = 0 is
    the bottom row of the map image); texel (row r, column c) of an (S_h, S_w) map has its centre at
    ``u = (c + 0.5) / S_w``, ``v = 1 - (r + 0.5) / S_h``.
    """
    face_id: torch.Tensor
    bary: torch.Tensor
    size: tuple[int, int]


def uv_rasterize(uv: torch.Tensor, faces: torch.Tensor, size) -> UVRaster:
    """Rasterise the UV layout (V, 2) with faces (F, 3) at ``size`` S or (S_h, S_w) (no gradient needed)."""
    sh, sw = _hw(size)
    faces = faces.to(device=uv.device, dtype=torch.long)
    pts = torch.stack([uv[:, 0] * sw, (1 - uv[:, 1]) * sh, torch.zeros_like(uv[:, 0])], -1)[None].detach()
    frags = rasterize(pts, faces, (sh, sw))
    bary = frags.to_dense(frags.bary)[0].permute(1, 2, 0)
    return UVRaster(face_id=frags.face_id[0], bary=bary.detach(), size=(sh, sw))


@torch.no_grad()
def visible_faces(face_id: torch.Tensor, num_faces: int) -> torch.Tensor:
    """(B, H, W) triangle ids -> (B, F) bool: the triangle wins at least one pixel (not occluded / culled)."""
    bsz = face_id.shape[0]
    vis = torch.zeros(bsz, num_faces + 1, dtype=torch.bool, device=face_id.device)
    flat = face_id.reshape(bsz, -1)
    vis.scatter_(1, torch.where(flat < 0, num_faces, flat), True)
    return vis[:, :num_faces]


def uv_unwrap(image: torch.Tensor, verts_screen: torch.Tensor, faces: torch.Tensor, uv: torch.Tensor, uv_size=None,
              *, uv_raster: UVRaster | None = None, visible: torch.Tensor | None = None,
              visibility: str = "depth", cull_backfaces: bool = True, depth_tol: float = 1.5
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Unwrap images onto the UV map (the illuminated texture T of Sec. 4.3.2, Eq. 4.8).

    Each texel's triangle and barycentrics (kappa_1..3) in UV space give its image position
    ``(x, y) = sum_k kappa_k Q(v_k)``; ``T = I(x, y)`` is sampled bilinearly. Texels that are not seen are masked:

    * ``visibility="triangle"`` (the thesis's rule): texels of triangles that win no pixel of the image-space
      rasterisation (occluded or back-facing) are dropped. With triangles smaller than a pixel many visible
      triangles win no pixel centre, so this leaves holes.
    * ``visibility="depth"`` (default): a texel is kept when its triangle faces the viewer and its depth is within
      ``depth_tol`` pixels (plus 0.75 px times the triangle's depth slope) of the z-buffer at its image pixel.

    Args:
        image: (B, C, H, W).  verts_screen: (B, V, 3) projected shape Q (x, y in pixels, depth).  faces: (F, 3).
        uv: (V, 2) UV coordinates in [0, 1].  uv_size: S or (S_h, S_w) (ignored when ``uv_raster`` is given).
        uv_raster: cached :func:`uv_rasterize` result.
        visible: optional (B, F) bool visible triangles (forces the "triangle" rule with this set).
    Returns:
        texture (B, C, S_h, S_w) (zero where masked) and mask (B, 1, S_h, S_w); differentiable w.r.t. image and
        verts_screen.
    """
    if visibility not in ("depth", "triangle"):
        raise ValueError(f"visibility must be 'depth' or 'triangle', got {visibility!r}")
    faces = faces.to(device=image.device, dtype=torch.long)
    if uv_raster is None:
        if uv_size is None:
            raise ValueError("uv_unwrap needs uv_size or uv_raster")
        uv_raster = uv_rasterize(uv.to(image.device), faces, uv_size)
    bsz, _, h, w = image.shape
    sh, sw = uv_raster.size
    tex_face = uv_raster.face_id.reshape(-1)  # (S*S,)
    cover = tex_face >= 0
    tf = tex_face.clamp_min(0)
    corners = verts_screen[:, faces[tf]]  # (B, S*S, 3, 3)
    pos = (uv_raster.bary.reshape(-1, 3)[None, :, :, None].to(verts_screen.dtype) * corners).sum(2)  # (B, S*S, 3)
    grid = torch.stack([2 * pos[..., 0] / w - 1, 2 * pos[..., 1] / h - 1], -1).reshape(bsz, sh, sw, 2)
    tex = F.grid_sample(image, grid.to(image.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)
    if visible is not None or visibility == "triangle":
        if visible is None:
            visible = visible_faces(rasterize_ids(verts_screen, faces, (h, w), cull_backfaces=cull_backfaces),
                                    faces.shape[0])
        seen = visible[:, tf]
    else:
        seen = _texel_depth_visibility(verts_screen.detach(), faces, pos.detach(), tf, (h, w), cull_backfaces,
                                       depth_tol)
    mask = (cover[None] & seen).reshape(bsz, 1, sh, sw).to(image.dtype)
    return tex * mask, mask


@torch.no_grad()
def _texel_depth_visibility(verts, faces, pos, tf, image_size, cull_backfaces, depth_tol) -> torch.Tensor:
    """(B, T) bool: texel points ``pos`` (B, T, 3) of triangles ``tf`` (T,) pass the z-buffer test."""
    h, w = image_size
    bsz = verts.shape[0]
    frags = rasterize(verts, faces, (h, w), cull_backfaces=cull_backfaces)
    zmap = frags.to_dense(frags.depth[:, None], fill=float("inf")).reshape(bsz, -1)  # (B, H*W)
    col = torch.floor(pos[..., 0]).long()
    row = torch.floor(pos[..., 1]).long()
    inb = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    zpix = zmap.gather(1, (row.clamp(0, h - 1) * w + col.clamp(0, w - 1)))
    tri = verts[:, faces]  # (B, F, 3, 3)
    area2 = _signed_area2(verts, faces)  # (B, F)
    # depth slope |grad z| of each triangle's plane (pixels of depth per pixel)
    x, y, z = tri[..., 0], tri[..., 1], tri[..., 2]
    ex1, ey1, ez1 = x[..., 1] - x[..., 0], y[..., 1] - y[..., 0], z[..., 1] - z[..., 0]
    ex2, ey2, ez2 = x[..., 2] - x[..., 0], y[..., 2] - y[..., 0], z[..., 2] - z[..., 0]
    safe = torch.where(area2.abs() > 1e-12, area2, torch.ones_like(area2))
    gx = (ez1 * ey2 - ez2 * ey1) / safe
    gy = (ex1 * ez2 - ex2 * ez1) / safe
    slope = torch.sqrt(gx * gx + gy * gy).clamp_max(1e3)  # (B, F)
    ok = inb & torch.isfinite(zpix) & (pos[..., 2] <= zpix + depth_tol + 0.75 * slope[:, tf])
    if cull_backfaces:
        ok &= area2[:, tf] < 0
    return ok


def uv_to_vertex(uv_map: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """The wrap Psi (Sec. 4.3.2): per-vertex values ``R(i) = A(U(i))`` by bilinear sampling of the UV map.

    Args:
        uv_map: (B, C, S_h, S_w).  uv: (V, 2) or (B, V, 2) in [0, 1] (same convention as :class:`UVRaster`).
    Returns:
        (B, V, C), differentiable w.r.t. the UV map.
    """
    bsz = uv_map.shape[0]
    if uv.dim() == 2:
        uv = uv[None].expand(bsz, -1, -1)
    uv = uv.to(uv_map.dtype)
    grid = torch.stack([2 * uv[..., 0] - 1, 1 - 2 * uv[..., 1]], -1)[:, None]  # (B, 1, V, 2); v points up
    out = F.grid_sample(uv_map, grid, mode="bilinear", padding_mode="border", align_corners=False)  # (B, C, 1, V)
    return out[:, :, 0].permute(0, 2, 1)
