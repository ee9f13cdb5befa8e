"""``voiceface prepare voxceleb --vox1 DIR [--vox2 DIR] --faces DIR... --out OUT``: the joined voice+face corpus
(manifest with both identity splits, aligned face crops, cached voice features) and its Table 2.1 counts."""
from __future__ import annotations

import argparse
import json
import os
import sys

ROWS = ("identities", "male ids", "female ids", "speech segments", "face images", "genders", "nationalities")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare", help="VoxCeleb + VGGFace -> joined voice+face manifest, splits, aligned crops, voice features",
        description="Scan VoxCeleb1 (ROOT/[wav/]idXXXXX/VIDEO/NNNNN.wav, named through vox1_meta.csv), optionally "
                    "VoxCeleb2 (ROOT/[aac/]idXXXXX/VIDEO/NNNNN.m4a, named by VGGFace2 id through vox2_meta.csv) "
                    "and VGGFace / VGGFace2 face folders (ROOT/NAME/*.jpg), keep the identities with both voices "
                    "and faces and write OUT/manifest.csv: gender and nationality covariates, the 'split' column "
                    "(--split) and both schemes in 'split_authors' (F-Z train, A-B val, C-E test) and 'split_pins' "
                    "(Learnable PINs identity_splits.txt, when --pins-file is given). Faces are aligned to "
                    "OUT/faces/NAME/*.png (and OUT/faces64 with --sizes 128,64) by worker processes; voice "
                    "features are cached in OUT/cache/logmel64, where training looks for them. Both steps resume: "
                    "finished crops and features are kept. Unreadable images, images without a face and "
                    "undecodable audio are reported and left out (exit status 1). Prints the Table 2.1 counts.")
    p.add_argument("corpus", choices=["voxceleb"], help="corpus family (VoxCeleb voices + VGGFace faces)")
    p.add_argument("--vox1", required=True, metavar="DIR", help="VoxCeleb1 audio root")
    p.add_argument("--vox2", metavar="DIR", help="VoxCeleb2 audio root (optional)")
    p.add_argument("--faces", required=True, nargs="+", metavar="DIR", help="VGGFace / VGGFace2 image roots")
    p.add_argument("--meta", metavar="FILE", help="vox1_meta.csv (default: in the VoxCeleb1 root or its parent)")
    p.add_argument("--vox2-meta", metavar="FILE", help="vox2_meta.csv (default: beside the VoxCeleb2 root)")
    p.add_argument("--out", required=True, metavar="OUT", help="output folder (manifest.csv, faces/, cache/)")
    p.add_argument("--split", choices=["authors", "pins"], default="authors",
                   help="scheme written to the 'split' column (default authors; pins needs --pins-file)")
    p.add_argument("--pins-file", metavar="FILE",
                   help="Learnable PINs splits/identity_splits.txt or the voxceleb1_eval_lists folder (default: "
                        "$VOICEFACE_LISTS when set, the folder 'voiceface evaluate dimnet' reads lists from)")
    p.add_argument("--workers", type=int, default=2, metavar="N", help="worker processes (default 2)")
    p.add_argument("--sizes", default="128", help="crop sides, comma-separated from 128 (DIMNet) and 64 (GAN)")
    p.add_argument("--no-align", action="store_true", help="keep the original images (no crops)")
    p.add_argument("--retry-failed", action="store_true",
                   help="decode again the images a previous run could not align (default: report them again)")
    p.add_argument("--no-probe", action="store_true",
                   help="do not read audio durations from file headers (faster scan of VoxCeleb2's .m4a files)")
    p.add_argument("--no-features", action="store_true", help="do not compute voice features now")
    p.set_defaults(func=run)


def format_table(counts: dict[str, dict[str, int]], title: str) -> str:
    """Table 2.1-style text: one column per split (+ total), one row per count."""
    names = {"": "(unlisted)", "val": "validation"}
    cols = list(counts)
    head = f"{title:<16s}" + "".join(f"{names.get(c, c):>12s}" for c in cols)
    lines = [head] + [f"{row:<16s}" + "".join(f"{counts[c][row]:>12,d}" for c in cols) for row in ROWS]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..data.prepare import split_counts, prepare_corpus
    from ..errors import ConfigError

    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    try:
        sizes = tuple(sorted({int(s) for s in args.sizes.split(",")}, reverse=True))
    except ValueError:
        raise ConfigError(f"--sizes must be integers separated by commas, got {args.sizes!r}") from None
    if not set(sizes) <= {128, 64}:
        raise ConfigError(f"--sizes must be 128 and/or 64, got {args.sizes!r}")
    pins_file = args.pins_file or os.environ.get("VOICEFACE_LISTS") or None
    res = prepare_corpus(args.vox1, args.faces, args.out, vox2=args.vox2, meta=args.meta, vox2_meta=args.vox2_meta,
                         split=args.split, pins_file=pins_file, align=not args.no_align, sizes=sizes,
                         features=not args.no_features, workers=args.workers, retry_failed=args.retry_failed,
                         probe=not args.no_probe, progress=sys.stderr.isatty())
    for _, message in res.face_failures + res.voice_failures:
        print(f"voiceface prepare: skipped {message}", file=sys.stderr)
    j = res.join
    print(f"joined {len(j.joined)} identities with voices and faces ({len(j.voice_only)} with voices only, "
          f"{len(j.face_only)} with faces only left out): {j.voices} speech segments, {j.faces} face images")
    if res.align is not None:
        print(f"face crops: {res.align.computed} aligned, {res.align.reused} already there, "
              f"{len(res.align.failures)} skipped (unreadable or no face"
              + (f"; {res.align.known} as in the previous run, not retried" if res.align.known else "") + ")")
    elif res.face_failures:
        print(f"face images: {len(res.face_failures)} unreadable, left out")
    if not args.no_features:
        print(f"voice features: {res.features_computed} computed, {res.features_reused} already there, "
              f"{len(res.voice_failures)} failed")
    tables = {"split_authors": "authors split", "split_pins": "PINs split"}
    report = {}
    for column, title in tables.items():
        if column == "split_pins" and not pins_file:
            print("PINs split: not computed (give --pins-file identity_splits.txt)")
            continue
        report[column] = split_counts(res.manifest, column)
        print(format_table(report[column], title))
    (res.path.parent / "prepare.json").write_text(json.dumps(
        {"counts": report, "face_failures": res.face_failures, "voice_failures": res.voice_failures}, indent=1))
    print(f"wrote {res.path}: {len(res.manifest)} items (--split {args.split} in the 'split' column)")
    return 1 if res.face_failures or res.voice_failures else 0
