"""``voiceface demo [--out DIR]``: the whole system on the simulated world, with an HTML report."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run every method end to end on the simulated world; writes DIR/report.html",
                       description="Build the simulated world, train and evaluate each method on it, and write "
                                   "DIR/report.html with every table and figure.")
    p.add_argument("--out", default="demo", help="output folder (default: demo)")
    p.add_argument("--preset", default="small", help="world preset: tiny | small | paper (default small)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..methods import registry

    methods = registry()
    if not methods:
        print("voiceface demo: the simulated world and the methods are not built yet; nothing to run.")
        return 0
    return 0
