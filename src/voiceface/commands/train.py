"""``voiceface train METHOD --data DATA --out RUN [--config FILE] [key=value ...]``."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a method (dimnet, gan, cest, sfv) into a run folder",
                       description="Train a method on a manifest or a simulated world, on the config's device "
                                   "(device=auto: CUDA when present, else CPU). Resumes when RUN already holds a "
                                   "checkpoint; a resume whose config or data (the manifest's digest) differs from "
                                   "the run's is refused with the differing keys unless --force-config; the same "
                                   "data at a new path resumes. Each start logs world_size, device and "
                                   "precision to RUN/log.jsonl. Under torchrun, trains with DDP.")
    p.add_argument("method", help="dimnet | gan | cest | sfv")
    p.add_argument("--data", required=True,
                   help="manifest CSV or folder with manifest.csv (e.g. a sim world); cest also takes a tree of "
                        "video frame folders (ID/VIDEO/FRAME.jpg), faces prepared once into data.cache_dir")
    p.add_argument("--out", required=True, help="run folder (created; resumed if it holds a checkpoint)")
    p.add_argument("--config", help="YAML config (e.g. configs/dimnet/cpu.yaml)")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed: sets the config's `seed` (same as seed=N; default: the config's, 0)")
    p.add_argument("--force-config", action="store_true",
                   help="resume even though the config differs from the run's (the change is logged in "
                        "RUN/log.jsonl)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, dotted keys for nesting")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..methods import registry

    methods = registry()
    if args.method not in methods:
        raise ConfigError(f"unknown method '{args.method}' (known: {', '.join(sorted(methods))})")
    out = methods[args.method].train(args.data, args.out, config_file=args.config, overrides=args.overrides,
                                     seed=args.seed, force_config=args.force_config)
    print(f"trained {args.method}: {out}")
    return 0
