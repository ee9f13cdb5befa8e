"""The ``voiceface`` command line: parses arguments, calls library functions, prints for people.

Each subcommand lives in ``voiceface.commands.<name>`` with a ``register(subparsers)`` function that adds its parser
and sets ``func(args) -> int``. Errors a user can fix (``VoicefaceError``) print one line and exit with status 2.
"""
from __future__ import annotations

import argparse
import logging
import sys

from . import __version__
from .errors import VoicefaceError


def build_parser() -> argparse.ArgumentParser:
    from .commands import COMMANDS

    parser = argparse.ArgumentParser(
        prog="voiceface",
        description="Reconstruct faces from voices: DIMNet matching, voice-to-face GAN, CEST 3D reconstruction "
                    "and shape-from-voice, on real corpora you bring or on the built-in simulated world.")
    parser.add_argument("--version", action="version", version=f"voiceface {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # `train ... key=value --seed 1 key=value`: overrides may stand between options; argparse leaves the later
    # ones unparsed, so they are collected here. Anything else unknown is an error.
    if extra and isinstance(getattr(args, "overrides", None), list) \
            and all("=" in a and not a.startswith("-") for a in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except VoicefaceError as e:
        print(f"voiceface {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
