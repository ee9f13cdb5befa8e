"""``voiceface evaluate METHOD --run RUN [--data DATA]``: writes RUN/results.json and RUN/report.md."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a trained run; writes RUN/results.json and RUN/report.md",
                       description="Evaluate a trained run on its own data (or --data). Results are flat named "
                                   "metrics in RUN/results.json; tables in RUN/report.md.")
    p.add_argument("method", help="dimnet | gan | cest | sfv")
    p.add_argument("--run", required=True, help="run folder written by `voiceface train`")
    p.add_argument("--data", help="manifest CSV or world folder (default: the data the run was trained on)")
    p.add_argument("--lists", metavar="DIR",
                   help="dimnet: the published VoxCeleb1 evaluation lists folder (voxceleb1_eval_lists: "
                        "matching/, veriflist/); default $VOICEFACE_LISTS, else the shared sample folder. Listed "
                        "media are matched on the corpus layouts (idXXXXX/VIDEO/NNNNN.wav, NAME/[1.6/]VIDEO/N.jpg "
                        "or aligned .png crops); a warning says when none match")
    p.add_argument("--aflw2000", metavar="DIR",
                   help="cest: evaluate on AFLW2000-3D (<name>.jpg + <name>.mat): 68-landmark NME by yaw")
    p.add_argument("--micc", metavar="DIR",
                   help="cest: evaluate on MICC Florence (subject folders with .obj scans and images to "
                        "reconstruct): shape NME against the scans")
    p.add_argument("--max-test-frames", type=int, metavar="N",
                   help="cest: score at most N test frames, spread evenly over the test clips (default: the run's "
                        "data.max_test_frames; a larger N lowers the noise of the shape error, the fitting "
                        "baseline still fits eval.fit_frames of them)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..methods import registry

    methods = registry()
    if args.method not in methods:
        raise ConfigError(f"unknown method '{args.method}' (known: {', '.join(sorted(methods))})")
    extra = {}
    if args.lists is not None:
        if args.method != "dimnet":
            raise ConfigError(f"--lists applies to dimnet only, not '{args.method}'")
        extra["lists"] = args.lists
    for flag in ("aflw2000", "micc", "max_test_frames"):
        if getattr(args, flag) is not None:
            if args.method != "cest":
                raise ConfigError(f"--{flag.replace('_', '-')} applies to cest only, not '{args.method}'")
            extra[flag] = getattr(args, flag)
    results = methods[args.method].evaluate(args.run, data=args.data, **extra)
    width = max((len(k) for k in results), default=0)
    for key, value in sorted(results.items()):
        print(f"{key:<{width}}  {value:.4g}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    report = "report_benchmarks.md" if ("aflw2000" in extra or "micc" in extra) and args.data is None else "report.md"
    print(f"wrote {args.run}/results.json and {args.run}/{report}")
    return 0
