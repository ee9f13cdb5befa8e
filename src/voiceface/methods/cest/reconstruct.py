"""Reconstruct 3D faces from photographs with a trained CEST run, and the views used by the figures
(Fig. 4.4 overlays / reflectance / geometry / illumination, Fig. 4.8 relighting).

Real photos go through the face front end (``voiceface.face.detect``: dlib detection + 68 landmarks), are cropped
by a similarity to the framing of the training clips (eye-to-mouth distance ``net.face_fraction`` of the side,
5-point centre at the image centre) and their face region M comes from a :class:`~.data.FaceSegmenter` (default
:class:`~.data.HullSkinSegmenter`). Greyscale photos (e.g. ORL) are replicated to three equal channels, so CEST sees
a grey image; the estimated reflectance and light then come out (nearly) grey, and the photometric error is
measured on the three identical channels (``photometric_error``); ``photometric_error_luma`` compares the render's
luminance (0.299 R + 0.587 G + 0.114 B) with the grey level instead, as a greyscale camera would see the render.
"""
from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from ...errors import InputError
from ...face import align
from ...face3d import geometry
from .data import FaceSegmenter, HullSkinSegmenter
from .model import CEST

log = logging.getLogger(__name__)

# the five alignment points of the face front end's template: eye-to-mouth distance and centre (fractions of S)
_TEMPLATE_EYE_MOUTH = align.MOUTH_Y - align.EYE_Y
_TEMPLATE_CENTRE_Y = (2 * align.EYE_Y + align.NOSE_Y + 2 * align.MOUTH_Y) / 5.0


def clip_alignment(landmarks: np.ndarray, size: int, face_fraction: float) -> np.ndarray:
    """(2, 3) similarity from photo pixels to a ``size`` crop framed like the training clips (see module doc)."""
    m = align.alignment_transform(landmarks, size)
    k = face_fraction / _TEMPLATE_EYE_MOUTH
    centre = np.array([0.5 * size, _TEMPLATE_CENTRE_Y * size])
    out = m * k
    out[:, 2] = k * (m[:, 2] - centre) + size / 2.0
    return out


def canonical_viewpoint(model: CEST, n: int) -> torch.Tensor:
    """(n, 7) frontal viewpoint of the model's neutral framing (no rotation)."""
    return model.v0.expand(n, -1).clone()


@torch.no_grad()
def render_views(model: CEST, shape: torch.Tensor, reflectance: torch.Tensor, light: torch.Tensor,
                 viewpoint: torch.Tensor | None = None, size: int | None = None) -> dict[str, torch.Tensor]:
    """Renders of (n, V, 3) shapes with reflectance (n, V, 3) under light (n, 9|3, 9) from ``viewpoint`` (default
    canonical): ``shaded`` (n, 3, S, S) full render, ``albedo`` reflectance only, ``shading`` grey geometry
    (unit albedo), ``mask`` (n, 1, S, S)."""
    n = shape.shape[0]
    v = canonical_viewpoint(model, n) if viewpoint is None else viewpoint
    q = geometry.project(shape, v)
    sh = model.shading(shape, v, light)
    grey = model.shading(shape, v, geometry.sh_light(n, 0.35, (0.3, 0.4, 1.0), 0.8))
    ones = torch.ones_like(reflectance)
    full = model.render(q, sh, reflectance[:, None], size)
    geo = model.render(q, grey, ones[:, None], size)
    alb = model.render(q, torch.ones_like(sh[..., :1]), reflectance[:, None], size)
    return {"shaded": full["image"][:, 0], "albedo": alb["image"][:, 0], "shading": geo["image"][:, 0],
            "mask": full["mask"]}


def sphere_image(light: torch.Tensor, size: int = 64) -> torch.Tensor:
    """(n, 3, size, size) a unit-albedo sphere lit by SH lights (n, 9) | (n, 3, 9) (the illumination column)."""
    n = light.shape[0]
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    r2 = xx ** 2 + yy ** 2
    inside = r2 <= 1.0
    normals = torch.stack([xx, -yy, torch.sqrt((1 - r2).clamp_min(0))], -1).reshape(1, -1, 3).expand(n, -1, -1)
    s = geometry.sh_shading(normals, light)                                     # (n, P, 1|3)
    s = s.expand(-1, -1, 3) if s.shape[-1] == 1 else s
    img = s.permute(0, 2, 1).reshape(n, 3, size, size) * inside
    return img + (~inside) * 1.0


def to_uint8(img: torch.Tensor | np.ndarray) -> np.ndarray:
    """(3, H, W) or (H, W, 3) float in [0, 1] -> (H, W, 3) uint8."""
    a = img.detach().cpu().numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
    if a.ndim == 3 and a.shape[0] == 3:
        a = a.transpose(1, 2, 0)
    return (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)


def overlay(image: torch.Tensor, rendered: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The rendered face composited over the input (Fig. 4.4 'overlay'): (n, 3, S, S) each, mask (n, 1, S, S)."""
    m = mask.clamp(0, 1)
    return rendered * m + image * (1 - m)


def relight_lights(n: int = 4) -> torch.Tensor:
    """(n, 9) grey target lights for Fig. 4.8: a distant light circling the face plus ambient."""
    out = []
    for k in range(n):
        a = 2 * math.pi * k / n
        out.append(geometry.sh_light(1, 0.5, (0.8 * math.cos(a), 0.8 * math.sin(a), 0.6), 0.7)[0])
    return torch.stack(out)


def _save_png(img: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(img).save(path)


def reconstruct_images(run: str | os.PathLike, images: Iterable[str | os.PathLike], out: str | os.PathLike, *,
                       segmenter: FaceSegmenter | None = None, detector=None) -> list[dict]:
    """``voiceface reconstruct``: per image ``OUT/<stem>.obj`` (vertex colours = reflectance), ``<stem>_overlay.png``,
    ``<stem>_uv.png`` (reflectance UV map A), ``<stem>_shading.png`` (geometry under the estimated light, unit
    albedo), ``<stem>_relit.png`` (canonical view under four other lights), ``<stem>.json`` (viewpoint, coefficients,
    light, photometric error); ``<stem>`` is the file name minus a known image extension, ``<folder>_<stem>`` (or
    another free name, see ``face.detect.plan_outputs``) when names repeat (ORL's s1/1.pgm, s2/1.pgm).
    A file that fails (unreadable, no face) is reported in its result and skipped.
    Returns one dict per image (``error`` set for skipped ones)."""
    from ...face.detect import FaceDetector, load_image, plan_outputs
    from ...face3d.meshio import save_mesh
    from .train import load_trained

    model, cfg = load_trained(run)
    seg = segmenter or HullSkinSegmenter()
    det = detector or FaceDetector()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    s = cfg.net.image_size
    results = []
    for path, name in plan_outputs(images, flat=True).jobs:      # one output name per input, never shared
        try:
            photo = load_image(path)
            face = det.find(photo, path)
        except InputError as e:
            log.warning("%s", e)
            results.append({"image": str(path), "error": str(e)})
            continue
        grey = bool(np.all(photo[..., 0] == photo[..., 1]) and np.all(photo[..., 1] == photo[..., 2]))
        m = clip_alignment(face.landmarks, s, cfg.net.face_fraction)
        crop = align.warp_affine(photo, m, s)
        lm = align.apply_transform(m, face.landmarks) + 0.5                  # renderer convention (centre j + 0.5)
        mask = seg(crop[None], lm[None])[0]
        img = torch.from_numpy(crop).permute(2, 0, 1).float()[None] / 255.0
        with torch.no_grad():
            o = model(img)
            sh = model.shading(o["shape"], o["viewpoint"], o["light"])
            r = model.render(o["verts_screen"], sh, o["reflectance"][:, None], face_id=o["face_id"])
            rendered, rmask = r["image"][:, 0], r["mask"]
            shading_img = model.render(o["verts_screen"], sh, torch.ones_like(o["reflectance"])[:, None],
                                       face_id=o["face_id"])["image"][:, 0]
            lights = relight_lights()
            if model.light_dim == 27:
                lights = lights[:, None].expand(-1, 3, -1)
            relit = render_views(model, o["shape"].expand(len(lights), -1, -1),
                                 o["reflectance"].expand(len(lights), -1, -1), lights)["shaded"]
        mt = torch.from_numpy(mask)[None, None].float()
        err = float(255.0 * ((rendered - img).abs() * mt).sum() / (3.0 * mt.sum()).clamp_min(1.0))
        luma = (rendered * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        err_luma = float(255.0 * ((luma - img.mean(1, keepdim=True)).abs() * mt).sum() / mt.sum().clamp_min(1.0))
        stem = str(name)
        save_mesh(out / f"{stem}.obj", o["shape"][0].numpy(), model.face.triangles.numpy(),
                  o["reflectance"][0].clamp(0, 1).numpy())
        _save_png(np.concatenate([crop, to_uint8(overlay(img, rendered, rmask)[0])], 1), out / f"{stem}_overlay.png")
        _save_png(to_uint8(o["uv_reflectance"][0]), out / f"{stem}_uv.png")
        _save_png(to_uint8(shading_img[0].clamp(0, 1)), out / f"{stem}_shading.png")
        _save_png(np.concatenate([to_uint8(x) for x in relit], 1), out / f"{stem}_relit.png")
        rec = {"image": str(path), "obj": str(out / f"{stem}.obj"), "greyscale": grey,
               "photometric_error": err, "photometric_error_luma": err_luma, "mask_pixels": int(mask.sum()),
               "n_faces": int(face.n_faces),
               "viewpoint": o["viewpoint"][0].tolist(), "coeffs": o["coeffs"][0].tolist(),
               "light": o["light"][0].tolist(), "crop_matrix": m.tolist(), "landmarks_crop": lm.tolist()}
        (out / f"{stem}.json").write_text(json.dumps(rec, indent=1), encoding="utf-8")
        results.append(rec)
    return results
