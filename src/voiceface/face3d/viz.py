"""Figures of 3D faces: shaded renders (front, profile, turntable GIF), per-vertex error heat maps (the style of
Fig. 5.8), anthropometric measurements drawn on the face (the style of Fig. 5.6) and contact sheets.

All renders use ``voiceface.face3d.render`` (CPU or the vertices' device) and return numpy arrays; figures with
colour bars are ``matplotlib.figure.Figure`` objects built without pyplot (no global state), saved when ``path`` is
given. Vertices are in the model frame (y up, z towards the viewer, see ``geometry``); yaw rotates about the vertical
axis (positive yaw turns the face to the viewer's right, so ``yaw = pi / 2`` shows the left profile).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from . import geometry, render

DEFAULT_ALBEDO = 0.75
_LIGHT_DIR = (0.3, 0.4, 1.0)


def _batch(verts) -> torch.Tensor:
    v = torch.as_tensor(verts, dtype=torch.float32)
    return v[None] if v.dim() == 2 else v


def fit_viewpoint(verts: torch.Tensor, size: int, rotation: torch.Tensor | None = None, margin: float = 0.9,
                  reference: torch.Tensor | None = None) -> torch.Tensor:
    """Viewpoints (B, 7) that centre each rotated mesh and scale it to ``margin`` of the image.

    Args:
        verts: (B, V, 3) model-frame vertices.  size: image size.  rotation: (B, 3) rotation vectors (default frontal).
        reference: optional (V, 3) shape whose frontal extent fixes one common scale for all (so a batch of faces is
            drawn at the same scale; default: each mesh's own extent).
    """
    b = verts.shape[0]
    rot = torch.zeros(b, 3, dtype=verts.dtype, device=verts.device) if rotation is None else rotation
    ref = verts if reference is None else reference[None].expand(b, -1, -1)
    extent = (ref.amax(1) - ref.amin(1))[:, :2].amax(-1)  # (B,) width/height in model units
    view = geometry.make_viewpoint(b, size, margin * size / extent, rot.to(verts.dtype), dtype=verts.dtype,
                                   device=verts.device)
    q = geometry.project(verts, view)
    centre = 0.5 * (q.amin(1) + q.amax(1))  # (B, 3)
    view[:, 4] += size / 2.0 - centre[:, 0]
    view[:, 5] += size / 2.0 - centre[:, 1]
    return view


def render_views(verts, faces, colors=None, *, size: int = 256, yaws: Sequence[float] = (0.0,), pitch: float = 0.0,
                 light: torch.Tensor | None = None, background: float = 1.0, shade: bool = True,
                 same_scale: bool = True) -> np.ndarray:
    """Shaded renders of meshes from several yaw angles.

    Args:
        verts: (V, 3) or (B, V, 3).  faces: (F, 3).  colors: None (grey), (V, 3) or (B, V, 3) albedo in [0, 1].
        size: image size.  yaws: angles in radians.  pitch: nod angle (radians).  light: (B, 9) | (B, 3, 9) SH
        light (default: soft key light).  shade: False to draw the colours unlit.
        same_scale: frame all meshes with the first mesh's frontal extent (comparable sizes).
    Returns:
        float array (len(yaws), B, size, size, 3) in [0, 1].
    """
    v = _batch(verts)
    b = v.shape[0]
    faces = torch.as_tensor(faces, dtype=torch.long, device=v.device)
    if colors is None:
        col = torch.full_like(v, DEFAULT_ALBEDO)
    else:
        col = torch.as_tensor(colors, dtype=v.dtype, device=v.device)
        col = (col[None] if col.dim() == 2 else col).expand(b, -1, -1)
    if light is None:
        light = geometry.sh_light(b, 0.45, _LIGHT_DIR, 0.75, dtype=v.dtype, device=v.device)
    ref = v[0] if same_scale else None
    out = []
    with torch.no_grad():
        for yaw in yaws:
            rot = view_rotation(pitch, yaw).to(v)[None].expand(b, 3)
            view = fit_viewpoint(v, size, rot, reference=ref)
            res = render.render_face(v, col, view, light if shade else None, size, faces=faces,
                                     background=background)
            out.append(res["image"].clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy())
    return np.stack(out)


def view_rotation(pitch: float, yaw: float) -> torch.Tensor:
    """Rotation vector (3,) of ``R_x(pitch) R_y(yaw)``: turn the head by ``yaw``, then nod it by ``pitch``."""
    from scipy.spatial.transform import Rotation

    rot = Rotation.from_rotvec([pitch, 0.0, 0.0]) * Rotation.from_rotvec([0.0, yaw, 0.0])
    return torch.tensor(rot.as_rotvec(), dtype=torch.float32)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Float image(s) in [0, 1] -> uint8."""
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def save_png(img: np.ndarray, path) -> Path:
    """Save an (H, W, 3) float [0, 1] or uint8 image as PNG (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = img if img.dtype == np.uint8 else to_uint8(img)
    Image.fromarray(arr).save(path)
    return path


def front_profile(verts, faces, colors=None, *, size: int = 256, path=None) -> np.ndarray:
    """Front and profile renders of one mesh side by side: uint8 (size, 2 * size, 3); saved as PNG if ``path``."""
    views = render_views(verts, faces, colors, size=size, yaws=(0.0, math.pi / 2))[:, 0]  # (2, H, W, 3)
    img = to_uint8(np.concatenate(list(views), axis=1))
    if path is not None:
        save_png(img, path)
    return img


def turntable_gif(verts, faces, path, colors=None, *, frames: int = 24, size: int = 128, max_yaw: float = math.pi / 2,
                  duration_ms: int = 80) -> Path:
    """An animated GIF swinging the head from ``-max_yaw`` to ``+max_yaw`` and back (a triangle wave of ``frames``)."""
    yaws = max_yaw * (1 - 4 * np.abs(np.arange(frames) / frames - 0.5))
    views = to_uint8(render_views(verts, faces, colors, size=size, yaws=yaws.tolist())[:, 0])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ims = [Image.fromarray(f) for f in views]
    ims[0].save(path, save_all=True, append_images=ims[1:], duration=duration_ms, loop=0, optimize=False)
    return path


def _figure(width_in: float, height_in: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def error_colors(errors, *, cmap: str = "jet", vmin: float = 0.0, vmax: float | None = None) -> np.ndarray:
    """Per-vertex errors (V,) -> RGB colours (V, 3) in [0, 1] through a matplotlib colormap."""
    import matplotlib

    e = np.asarray(torch.as_tensor(errors).detach().cpu(), dtype=np.float64).reshape(-1)
    hi = float(np.nanmax(e)) if vmax is None else vmax
    norm = np.clip((e - vmin) / max(hi - vmin, 1e-12), 0, 1)
    return matplotlib.colormaps[cmap](norm)[:, :3]


def error_heatmap(verts, faces, errors, path=None, *, cmap: str = "jet", vmin: float = 0.0,
                  vmax: float | None = None, label: str = "error (mm)", size: int = 256,
                  yaws: Sequence[float] = (0.0, math.pi / 2), title: str | None = None):
    """Per-vertex error heat map on the face (Fig. 5.8 style): renders coloured by error plus a colour bar.

    Args:
        verts: (V, 3) the face to draw (e.g. the ground-truth shape).  faces: (F, 3).  errors: (V,) per-vertex errors.
        yaws: views (radians).  vmax: top of the colour scale (default: the maximum error).
    Returns:
        matplotlib Figure (saved as PNG when ``path`` is given).
    """
    import matplotlib

    e = np.asarray(torch.as_tensor(errors).detach().cpu(), dtype=np.float64).reshape(-1)
    hi = float(np.nanmax(e)) if vmax is None else vmax
    cols = torch.tensor(error_colors(e, cmap=cmap, vmin=vmin, vmax=hi), dtype=torch.float32)
    v = _batch(verts)
    light = geometry.sh_light(1, 0.65, _LIGHT_DIR, 0.4)
    views = render_views(v[:1], faces, cols, size=size, yaws=yaws, light=light)[:, 0]
    n = len(views)
    fig = _figure(2.6 * n + 0.9, 2.8)
    axes = [fig.add_axes([0.02 + i * 0.9 / n, 0.04, 0.88 / n, 0.84]) for i in range(n)]
    for ax, img in zip(axes, views):
        ax.imshow(img)
        ax.set_axis_off()
    cax = fig.add_axes([0.93, 0.1, 0.02, 0.72])
    sm = matplotlib.cm.ScalarMappable(norm=matplotlib.colors.Normalize(vmin, hi), cmap=cmap)
    fig.colorbar(sm, cax=cax, label=label)
    return _finish(fig, title, path)


def am_segments(am_landmarks: Sequence[tuple[int, ...]]) -> list[tuple[int, int]]:
    """Line segments (0-based landmark index pairs) that draw AMs given by their 1-based landmark numbers:
    a distance (a, b) is one segment, a proportion (a, b, c, d) two, an angle (a, v, c) the two arms."""
    segs = []
    for lm in am_landmarks:
        if len(lm) == 2:
            segs.append((lm[0] - 1, lm[1] - 1))
        elif len(lm) == 4:
            segs += [(lm[0] - 1, lm[1] - 1), (lm[2] - 1, lm[3] - 1)]
        elif len(lm) == 3:
            segs += [(lm[0] - 1, lm[1] - 1), (lm[1] - 1, lm[2] - 1)]
        else:
            raise ValueError(f"an AM has 2, 3 or 4 landmarks, got {lm}")
    return segs


def draw_ams(verts, faces, points, segments: Sequence[tuple[int, int]], path=None, *, colors=None,
             segment_colors: Sequence | None = None, size: int = 256, yaw: float = 0.0, label_points: bool = False,
             title: str | None = None):
    """AMs drawn on the face (Fig. 5.6 style): lines between landmark points over a shaded render.

    Args:
        verts: (V, 3) face.  faces: (F, 3).  points: (L, 3) landmark positions (e.g. ``model.landmarks(shape, 'am')``).
        segments: pairs of 0-based indices into ``points`` (see :func:`am_segments`).
        colors: optional (V, 3) albedo.  segment_colors: one matplotlib colour per segment (default: red).
        yaw: view angle (radians).  label_points: write 1-based landmark numbers.
    Returns:
        matplotlib Figure (saved when ``path`` is given).
    """
    v = _batch(verts)[:1]
    view = fit_viewpoint(v, size, view_rotation(0.0, yaw)[None], reference=v[0])
    img = render_views(v, faces, colors, size=size, yaws=(yaw,))[0, 0]
    pts = geometry.project(torch.as_tensor(points, dtype=torch.float32)[None], view)[0, :, :2].numpy()
    fig = _figure(4.0, 4.0)
    ax = fig.add_axes([0, 0, 1, 0.93 if title else 1])
    ax.imshow(img, extent=(0, size, size, 0))
    for k, (i, j) in enumerate(segments):
        c = "tab:red" if segment_colors is None else segment_colors[k]
        ax.plot([pts[i, 0], pts[j, 0]], [pts[i, 1], pts[j, 1]], "-", color=c, lw=1.4)
    used = sorted({i for s in segments for i in s})
    ax.plot(pts[used, 0], pts[used, 1], "o", color="tab:blue", ms=2.5)
    if label_points:
        for i in used:
            ax.text(pts[i, 0] + 1.5, pts[i, 1] - 1.5, str(i + 1), fontsize=5, color="navy")
    ax.set_xlim(0, size)
    ax.set_ylim(size, 0)
    ax.set_axis_off()
    return _finish(fig, title, path)


def contact_sheet(images, ncols: int | None = None, path=None, *, pad: int = 2, background: int = 255,
                  labels: Sequence[str] | None = None) -> np.ndarray:
    """Tile images (N, H, W, 3) (float [0, 1] or uint8; or a list of equal-size arrays) into one uint8 sheet.

    Labels, if given, are written in the top-left corner of each tile with PIL's default font.
    """
    arr = [np.asarray(im) for im in images]
    arr = [im if im.dtype == np.uint8 else to_uint8(im) for im in arr]
    arr = [np.repeat(im[..., None], 3, -1) if im.ndim == 2 else im[..., :3] for im in arr]
    n = len(arr)
    if n == 0:
        raise ValueError("contact_sheet needs at least one image")
    h, w = arr[0].shape[:2]
    ncols = ncols or int(math.ceil(math.sqrt(n)))
    nrows = int(math.ceil(n / ncols))
    sheet = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, 3), background, np.uint8)
    for k, im in enumerate(arr):
        r, c = divmod(k, ncols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        sheet[y:y + h, x:x + w] = im
    if labels is not None:
        from PIL import ImageDraw

        pil = Image.fromarray(sheet)
        draw = ImageDraw.Draw(pil)
        for k, text in enumerate(labels[:n]):
            r, c = divmod(k, ncols)
            draw.text((pad + c * (w + pad) + 2, pad + r * (h + pad) + 1), str(text), fill=(0, 0, 0))
        sheet = np.asarray(pil)
    if path is not None:
        save_png(sheet, path)
    return sheet


def _finish(fig, title: str | None, path):
    """Title a figure, save it to ``path`` when given (creating the folder), and return it."""
    if title:
        fig.suptitle(title, fontsize=10)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    return fig
