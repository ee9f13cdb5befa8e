"""``voiceface demo [--out DIR]``: the whole system on the simulated world, with an HTML report."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run every method end to end on the simulated world; writes DIR/report.html",
                       description="Build the simulated world, train and evaluate each method on it (CPU presets), "
                                   "and write DIR/report.html, DIR/report.md and DIR/results.json.")
    p.add_argument("--out", default="demo", help="output folder (default: demo)")
    p.add_argument("--preset", default="small", help="world preset: tiny | small | paper (default small)")
    p.add_argument("--seed", type=int, default=0, help="seed for the world and every model (default 0)")
    p.add_argument("--workers", type=int, default=2, help="processes for building the world (default 2)")
    p.add_argument("--methods", nargs="+", metavar="NAME", help="run only these methods (default: all)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or stage lines (the summary still prints)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import format_summary, run_demo

    result = run_demo(args.out, preset=args.preset, seed=args.seed, workers=args.workers, methods=args.methods,
                      progress=not args.quiet)
    print(format_summary(result.summary))
    for name, problem in result.failures.items():
        print(f"voiceface demo: {name} failed: {problem}")
    print(f"wrote {result.report}")
    return 1 if result.failures else 0
