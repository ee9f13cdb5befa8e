"""``voiceface face3d show --model builtin|FILE --out DIR``: look at a morphable model.

Writes front and profile renders of the mean face and of -3 / +3 standard deviations along the first identity
components, an overview ``grid.png``, the Table 5.1 distances drawn on the mean face (``am_distances.png``, Fig. 5.6
style), optionally a turntable GIF, the mean face as ``mean.obj`` (with albedo vertex colours) and ``summary.json``.
Renders use ``voiceface.face3d.viz``.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("face3d", help="inspect 3D morphable face models (renders, OBJ, summary)",
                       description="Tools for the 3D face stack.")
    s = p.add_subparsers(dest="face3d_command", required=True, metavar="SUBCOMMAND")
    show = s.add_parser("show", help="render the mean face and +/-3 sd along the first components",
                        description="Write front/profile PNG renders of the mean face and of -3/+3 sd along the "
                                    "first identity components, mean.obj and summary.json into DIR.")
    show.add_argument("--model", default="builtin",
                      help="'builtin' (default) or a model file: .npz (ours), BFM 2009 .mat, BFM 2017/2019 .h5, "
                           "FLAME .pkl")
    show.add_argument("--landmarks", help="landmark index file for a user model (.npz or text; see docs)")
    show.add_argument("--out", required=True, help="output folder (created)")
    show.add_argument("--components", type=int, default=3, help="identity components to show (default 3)")
    show.add_argument("--size", type=int, default=256, help="render size in pixels (default 256)")
    show.add_argument("--turntable", action="store_true", help="also write turntable.gif of the mean face")
    show.set_defaults(func=run_show)


def run_show(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from ..face3d import anthropometry, meshio, viz
    from ..face3d.model import load_model

    model = load_model(args.model, landmarks=args.landmarks)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    k = max(0, min(args.components, model.num_identity))
    coeffs = torch.zeros(1 + 2 * k, model.num_identity)
    labels = ["mean"]
    for i in range(k):
        coeffs[1 + 2 * i, i], coeffs[2 + 2 * i, i] = -3.0, 3.0
        labels += [f"pc{i + 1}_minus3sd", f"pc{i + 1}_plus3sd"]
    with torch.no_grad():
        shapes = model.shape(coeffs)
    albedo = model.albedo_mean
    views = viz.render_views(shapes, model.triangles, albedo, size=args.size, yaws=(0.0, math.pi / 2))
    pix = viz.to_uint8(views)                                                      # (2, B, H, W, 3)
    for vi, view_name in enumerate(("front", "profile")):
        for bi, label in enumerate(labels):
            viz.save_png(pix[vi, bi], out / f"{label}_{view_name}.png")
    # overview: first row the mean (front, profile); then per component -3 sd (front, profile), +3 sd (front, profile)
    blank = np.full_like(pix[0, 0], 255)
    tiles = [blank, pix[0, 0], pix[1, 0], blank]
    for i in range(k):
        tiles += [pix[0, 1 + 2 * i], pix[1, 1 + 2 * i], pix[0, 2 + 2 * i], pix[1, 2 + 2 * i]]
    viz.contact_sheet(tiles, ncols=4, path=out / "grid.png")
    if model.am_landmarks.numel():
        dist = [lm for lm, kind in zip(anthropometry.AM_LANDMARKS, anthropometry.AM_KINDS) if kind == "distance"]
        fig = viz.draw_ams(model.mean, model.triangles, model.landmarks(model.mean, "am"), viz.am_segments(dist),
                           out / "am_distances.png", colors=albedo, size=args.size, label_points=True,
                           title="Table 5.1 distances on the mean face")
        fig.clear()
    if args.turntable:
        viz.turntable_gif(model.mean, model.triangles, out / "turntable.gif", colors=albedo, size=128)
    meshio.save_mesh(out / "mean.obj", model.mean, model.triangles, model.albedo_mean)
    summary = {
        "model": str(args.model), "name": model.name, "units": model.units,
        "vertices": model.num_vertices, "triangles": int(model.triangles.shape[0]),
        "identity_components": model.num_identity, "expression_components": model.num_expression,
        "albedo_components": model.num_albedo, "landmarks68": model.landmarks68.tolist(),
        "am_landmarks": model.am_landmarks.tolist(), "am_count": anthropometry.NUM_AMS,
        "identity_std_first": [round(float(x), 4) for x in model.id_std[:10]],
        "renders": sorted(p.name for p in out.iterdir() if p.suffix in (".png", ".gif")),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"{model.name}: {summary['vertices']} vertices, {summary['triangles']} triangles, "
          f"{summary['identity_components']} identity / {summary['expression_components']} expression components "
          f"-> {out}")
    return 0
