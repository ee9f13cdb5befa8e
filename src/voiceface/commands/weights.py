"""``voiceface weights import --kind voice|generator FILE --out FILE.pt``: use the authors' released GAN weights."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="import released model weights (the GAN authors' .pth files)",
                       description="Convert the authors' released voice-embedding / generator state dicts "
                                   "(keys model.<i>.weight ...) into a voiceface checkpoint usable by "
                                   "`voiceface generate --run FILE.pt`.")
    wsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    imp = wsub.add_parser("import", help="convert an authors' .pth into a voiceface checkpoint")
    imp.add_argument("file", help="the authors' state dict (.pth)")
    imp.add_argument("--kind", required=True, choices=["voice", "generator"], help="which network the file holds")
    imp.add_argument("--out", required=True, help="voiceface checkpoint to write (.pt)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..methods.gan.weights import import_to_checkpoint

    out, arch = import_to_checkpoint(args.kind, args.file, args.out)
    print(f"imported {args.kind} network {arch} from {args.file} -> {out}")
    return 0
