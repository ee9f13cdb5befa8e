"""``voiceface generate VOICE... -o DIR --run RUN``: one face PNG per recording plus a contact sheet."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="generate a face image from each voice recording (GAN, Chapter 3)",
                       description="Generate 64x64 faces from recordings (files or folders, any format and length; "
                                   "short ones are repeated to 10 s) with a trained GAN run, or with imported "
                                   "authors' weights (--run GENERATOR.pt --voice VOICE.pt). Writes DIR/<name>.png "
                                   "and DIR/sheet.png.")
    p.add_argument("voices", nargs="+", metavar="VOICE", help="audio file or folder")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--run", required=True, help="GAN run folder (voiceface train gan), or an imported generator .pt")
    p.add_argument("--voice", help="imported voice-network .pt (with an imported generator as --run)")
    p.add_argument("--batch-size", type=int, default=32, help="recordings per forward pass (default 32)")
    p.add_argument("--device", default="auto",
                   help="auto (default: CUDA when present, else CPU), cpu, cuda, cuda:1 ...")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from ..methods.gan.generate import generate, load_model, save_faces

    from ..engine import dist

    model = load_model(args.run, args.voice, dist.default_device(args.device))
    gen = generate(model, args.voices, batch_size=args.batch_size)
    written = save_faces(gen, args.out)
    for path, message in gen.failed:
        print(f"skipped {message}", file=sys.stderr)
    print(f"wrote {len(written)} face(s) and {args.out}/sheet.png" if written else "no faces written")
    return 0 if written else 2
