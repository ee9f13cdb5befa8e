"""``voiceface align IMAGE... --size 128 --out DIR``: aligned face crops (PNG) of photos."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "align", help="detect, align and crop faces (dlib) to PNGs",
        description="Detect the largest face in each image (dlib HOG + 68 landmarks), align it by a similarity "
                    "transform to the fixed template and write DIR/NAME.png, NAME being the file name minus only "
                    "a known image extension (person01.smile -> person01.smile.png). Folders are expanded "
                    "recursively to every file with image content, whatever its name, and their layout is kept "
                    "under DIR. Two inputs never share a crop: a clash is renamed and reported. Images without a "
                    "face are reported and skipped; the exit status is 1 if any image failed. Needs the 'align' "
                    "extra (dlib).")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--size", type=int, default=128, help="crop side in pixels: 128 (DIMNet, default) or 64 (GAN)")
    p.add_argument("--landmarks", action="store_true",
                   help="also write NAME.json: 68 landmarks in crop pixels, face box, score, faces found")
    p.add_argument("--check", action="store_true",
                   help="treat each image's parent folder as its identity and report the detection rate and how "
                        "much closer crops of one person are than of different people (pixels and dlib "
                        "descriptors); written to DIR/check.json")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image
    from tqdm import tqdm

    from ..errors import InputError
    from ..face.detect import FaceDetector, plan_outputs

    out = Path(args.out)
    work = plan_outputs(args.images)
    if not work.jobs:
        raise InputError(None, f"no images given (folders held no image files; {work.skipped} other files)")
    for line in work.renamed:
        print(f"align: {line}", file=sys.stderr)
    detector = FaceDetector()
    failed, multi, crops, labels, written = [], 0, [], [], 0
    for path, rel in tqdm(work.jobs, desc="align", unit="img", disable=not sys.stderr.isatty()):
        try:
            res = detector.align_file(path, args.size)
        except InputError as e:
            failed.append(str(e))
            print(f"skipped {e}", file=sys.stderr)
            continue
        target = out / f"{rel}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(res.crop).save(target)
        written += 1
        multi += res.face.n_faces > 1
        if args.landmarks:
            (out / f"{rel}.json").write_text(json.dumps({
                "source": str(path), "size": args.size, "landmarks": np.round(res.landmarks, 3).tolist(),
                "box": list(res.face.box), "score": res.face.score, "faces_found": res.face.n_faces}))
        if args.check:
            crops.append(res.crop)
            labels.append(path.parent.name)
    print(f"aligned {written}/{len(work.jobs)} images to {written} crops in {out} ({len(failed)} without a usable "
          f"face, {multi} with several faces: the largest was used; {len(work.renamed)} renamed to keep one crop per "
          f"image; {work.skipped} non-image files in folders passed over)")
    if args.check:
        _check(crops, labels, len(work.jobs), out)
    return 1 if failed else 0


def _check(crops, labels, total: int, out: Path) -> None:
    import numpy as np

    from ..face.descriptors import FaceDescriber, identity_separation

    if len(set(labels)) < 2:
        print("check: needs images of at least two identities (parent folders)")
        return
    x = np.stack(crops)
    result = {"detected": len(crops), "images": total, "detection_rate": len(crops) / total,
              "pixels": identity_separation(x.reshape(len(x), -1) / 255.0, labels),
              "descriptors": identity_separation(FaceDescriber().describe_aligned_batch(x), labels)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "check.json").write_text(json.dumps(result, indent=2))
    print(f"detection rate {result['detection_rate']:.4f} ({len(crops)}/{total})")
    for kind in ("pixels", "descriptors"):
        r = result[kind]
        print(f"{kind:11s}: mean intra-identity distance {r['intra']:.4f} vs inter {r['inter']:.4f} "
              f"(ratio {r['ratio']:.3f}); leave-one-out 1-NN identification {r['nn_accuracy']:.4f} "
              f"over {r['n']} crops of {r['identities']} identities")
