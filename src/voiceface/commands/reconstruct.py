"""``voiceface reconstruct IMAGE... --run RUN -o DIR``: 3D faces from photographs with a trained CEST run."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reconstruct", help="reconstruct 3D faces (shape, reflectance, light) from photos with CEST",
                       description="Per image: DIR/<name>.obj (shape with reflectance vertex colours), "
                                   "<name>_overlay.png (crop | render over the crop), <name>_uv.png (reflectance UV "
                                   "map), <name>_shading.png, <name>_relit.png (four other lights) and <name>.json "
                                   "(viewpoint, coefficients, light, photometric error in the face mask). Faces are "
                                   "found with dlib; greyscale photos are used as three equal channels.")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="photos or folders of photos")
    p.add_argument("--run", required=True, help="CEST run folder (`voiceface train cest`)")
    p.add_argument("-o", "--out", required=True, help="output folder (created)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..methods.cest.reconstruct import reconstruct_images

    results = reconstruct_images(args.run, args.images, args.out)
    ok = [r for r in results if "error" not in r]
    for r in results:
        if "error" in r:
            print(f"{r['image']}: skipped ({r['error']})")
        else:
            print(f"{r['image']}: {r['obj']} (photometric error {r['photometric_error']:.2f} / 255 in the face mask"
                  f"{', greyscale' if r['greyscale'] else ''})")
    if ok:
        mean = sum(r["photometric_error"] for r in ok) / len(ok)
        luma = sum(r["photometric_error_luma"] for r in ok) / len(ok)
        print(f"{len(ok)}/{len(results)} reconstructed; mean photometric error {mean:.2f} (0-255 scale, RGB), "
              f"{luma:.2f} (render luminance vs grey level)")
    return 0 if ok else 1
