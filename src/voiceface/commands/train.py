"""``voiceface train METHOD --data DATA --out RUN [--config FILE] [key=value ...]``."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a method (dimnet, gan, cest, sfv) into a run folder",
                       description="Train a method on a manifest or a simulated world. Resumes when RUN already "
                                   "holds a checkpoint. Under torchrun, trains with DDP.")
    p.add_argument("method", help="dimnet | gan | cest | sfv")
    p.add_argument("--data", required=True, help="manifest CSV or folder with manifest.csv (e.g. a sim world)")
    p.add_argument("--out", required=True, help="run folder (created; resumed if it holds a checkpoint)")
    p.add_argument("--config", help="YAML config (e.g. configs/dimnet/cpu.yaml)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, dotted keys for nesting")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..methods import registry

    methods = registry()
    if args.method not in methods:
        raise ConfigError(f"unknown method '{args.method}' (known: {', '.join(sorted(methods))})")
    out = methods[args.method].train(args.data, args.out, config_file=args.config, overrides=args.overrides,
                                     seed=args.seed)
    print(f"trained {args.method}: {out}")
    return 0
