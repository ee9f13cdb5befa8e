"""``voiceface manifest voxceleb1|voxceleb2|vggface|librispeech|folders ROOT --out FILE.csv [--meta META]
[--split ...]``."""
from __future__ import annotations

import argparse
from collections import Counter


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "manifest", help="build a manifest CSV from a real corpus folder",
        description="Scan a corpus laid out as distributed and write one manifest CSV (path, modality, identity, "
                    "gender, nationality, split, session, duration / size, ...). Layouts: voxceleb1 "
                    "(ROOT/[wav/]idXXXXX/VIDEO/NNNNN.wav, identity = name from vox1_meta.csv), voxceleb2 "
                    "(ROOT/[aac/]idXXXXX/VIDEO/NNNNN.m4a, identity = VGGFace2 id from vox2_meta.csv), vggface "
                    "(ROOT/NAME/*.jpg), librispeech (ROOT/SPEAKER/[CHAPTER/]*.flac + SPEAKERS.TXT) and folders "
                    "(ROOT/IDENTITY/..., audio = voice, images = face).")
    p.add_argument("layout", choices=["voxceleb1", "voxceleb2", "vggface", "librispeech", "folders"],
                   help="corpus layout")
    p.add_argument("root", help="corpus folder")
    p.add_argument("--out", required=True, help="manifest CSV to write (paths stored relative to it)")
    p.add_argument("--meta", help="metadata file (vox1_meta.csv / vox2_meta.csv / SPEAKERS.TXT); the voxceleb and "
                                  "librispeech layouts look for it in ROOT and its parent")
    p.add_argument("--split", choices=["authors", "pins"],
                   help="set the split column: authors (F-Z train, A-B val, C-E test) or pins (Learnable PINs)")
    p.add_argument("--pins-file", help="identity_splits.txt or the voxceleb1_eval_lists folder (for --split pins)")
    p.add_argument("--no-probe", action="store_true", help="do not read durations / image sizes from file headers")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.adapters import ADAPTERS
    from ..data.manifest import write_manifest
    from ..data.splits import apply_split

    manifest = ADAPTERS[args.layout](args.root, meta=args.meta, probe=not args.no_probe)
    if args.split:
        manifest = apply_split(manifest, args.split, pins_file=args.pins_file)
    path = write_manifest(manifest, args.out)
    modalities = Counter(it.modality for it in manifest)
    print(f"wrote {path}: {len(manifest)} items (" + ", ".join(f"{v} {k}" for k, v in sorted(modalities.items()))
          + f") of {len(manifest.identities())} identities")
    if args.split:
        ids = {}
        for it in manifest:
            ids.setdefault(it.split or "(none)", set()).add(it.identity)
        print("split: " + ", ".join(f"{k} {len(v)} identities" for k, v in sorted(ids.items())))
    return 0
