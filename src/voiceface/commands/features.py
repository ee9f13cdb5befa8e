"""``voiceface features AUDIO... --out DIR [--workers N] [--standard]``: normalised log-mel features per recording."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "features", help="voice features: VAD + 64-band log mel + CMVN, one NAME.npy per audio file",
        description="Compute the thesis's voice features for each recording: load (any format, resampled to 16 kHz "
                    "mono), WebRTC VAD (mode 2, 20 ms frames, 50 ms padding), 64-band Sphinx-style log mel "
                    "(20-7200 Hz, 25 ms Hamming, 100 frames/s), per-bin mean/variance normalisation. Writes "
                    "DIR/NAME.npy (frames x 64, float32) per input; a folder input is searched recursively and its "
                    "sub-folders are mirrored under DIR. Files that fail are listed on stderr, the rest are "
                    "written; exit status 1 when any failed.")
    p.add_argument("audio", nargs="+", metavar="AUDIO", help="audio files (wav, flac, ogg, mp3, m4a, ...) or folders")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--workers", type=int, default=2, metavar="N", help="worker processes (default 2)")
    p.add_argument("--standard", action="store_true",
                   help="textbook log mel (signal-wide pre-emphasis, zero-padded last frames) instead of the "
                        "default that matches the authors' published features")
    p.add_argument("--raw", action="store_true", help="skip the mean/variance normalisation")
    p.add_argument("--skip-existing", action="store_true", help="keep outputs that already exist (resume)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def plan_outputs(inputs: list[str], out: Path) -> tuple[list[tuple[str, Path]], list[tuple[str, str]]]:
    """(source, DIR/NAME.npy) jobs for the inputs (folders expanded, sub-folders mirrored) and (input, problem)
    for inputs that cannot be used (missing, a folder without audio, a second input with the same output name)."""
    from ..audio.io import AUDIO_EXTENSIONS

    jobs: list[tuple[str, Path]] = []
    bad: list[tuple[str, str]] = []
    taken: dict[Path, str] = {}
    for arg in inputs:
        path = Path(arg)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
            if not found:
                bad.append((arg, f"{arg}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) in this folder"))
            pairs = [(p, out / p.relative_to(path).with_suffix(".npy")) for p in found]
        else:
            known = path.suffix.lower() in AUDIO_EXTENSIONS   # strip only an audio extension: a.take1 != a.take2
            pairs = [(path, out / f"{path.stem if known else path.name}.npy")]  # a missing file fails, named
        for src, dst in pairs:
            if dst in taken:
                bad.append((str(src), f"{src}: same output name {dst.name} as {taken[dst]}; not written"))
                continue
            taken[dst] = str(src)
            jobs.append((str(src), dst))
    return jobs, bad


def run(args: argparse.Namespace) -> int:
    from ..audio.batch import extract_files
    from ..errors import ConfigError

    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs, bad = plan_outputs(args.audio, out)
    result = extract_files(jobs, workers=args.workers, progress=not args.quiet and sys.stderr.isatty(),
                           standard=args.standard, normalize=not args.raw, skip_existing=args.skip_existing)
    failures = bad + result.failures
    for _, message in failures:
        print(f"voiceface features: failed: {message}", file=sys.stderr)
    reused = f", {result.reused} already there" if result.reused else ""
    print(f"wrote {result.computed} feature file(s) to {os.fspath(out)}{reused}; {len(failures)} failed")
    return 1 if failures else 0
