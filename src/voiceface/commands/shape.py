"""``voiceface shape VOICE... --run RUN -o DIR [--gender m|f | --meta vox1_meta.csv | --dimnet RUN]``: 3D faces
from voices (SfV). Without --gender or --meta the gender is estimated from each voice by a DIMNet run's gender
classifier (--dimnet, default: the demo folder's ``dimnet/dimnet_IG`` (or another run with G) beside the SfV run)."""
from __future__ import annotations

import argparse
import csv
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("shape", help="reconstruct 3D facial shapes from voice recordings with a trained SfV run",
                       description="Per recording: DIR/<name>.obj (reconstructed face), DIR/<name>.json (every AM's "
                                   "prediction, uncertainty and whether it is selected) and DIR/<name>.png (render "
                                   "beside the gender's mean face). The run must be trained and evaluated "
                                   "(`voiceface train sfv`, `voiceface evaluate sfv`).")
    p.add_argument("voices", nargs="+", metavar="VOICE", help="recordings (wav, flac, ...)")
    p.add_argument("--run", required=True, help="SfV run folder")
    p.add_argument("-o", "--out", required=True, help="output folder (created)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--gender", choices=("m", "f"), help="speaker gender for every recording (default: estimated "
                                                          "from each voice, see --dimnet)")
    g.add_argument("--meta", help="VoxCeleb1 meta CSV (tab-separated; name column 'VGGFace1 ID' matches the file "
                                  "stem, 'Gender' m/f)")
    p.add_argument("--dimnet", help="DIMNet run with a gender classifier, for estimating the gender from the voice "
                                    "when neither --gender nor --meta is given (default: the demo folder's)")
    p.set_defaults(func=run)


def _meta_genders(meta: str) -> dict[str, str]:
    from ..errors import InputError

    path = Path(meta)
    if not path.is_file():
        raise InputError(path, "meta file not found")
    with open(path, newline="", encoding="utf-8") as f:
        sample = f.readline()
        f.seek(0)
        rows = list(csv.DictReader(f, delimiter="\t" if "\t" in sample else ","))
    key_name = next((k for k in ("VGGFace1 ID", "name", "identity") if rows and k in rows[0]), None)
    key_gender = next((k for k in ("Gender", "gender") if rows and k in rows[0]), None)
    if key_name is None or key_gender is None:
        raise InputError(path, "needs a name column ('VGGFace1 ID') and a 'Gender' column")
    return {r[key_name].strip(): r[key_gender].strip().lower()[:1] for r in rows}


def _voice_genders(voices: list[str], dimnet: str | None, sfv_run: str) -> list[str]:
    """Gender per recording estimated by a DIMNet run (printed with its probability; '' when it failed)."""
    from ..app.inference import estimate_genders
    from ..app.runs import DIMNET_ORDER, run_method
    from ..errors import InputError

    if dimnet is None:
        demo = Path(sfv_run).resolve().parent.parent / "dimnet"
        with_gender = [v for v in DIMNET_ORDER if "G" in v.split("_")[1]]
        dimnet = next((str(demo / v) for v in with_gender if run_method(demo / v) == "dimnet"), None)
    if dimnet is None:
        raise InputError(sfv_run, "no speaker gender: give --gender m|f, --meta CSV, or --dimnet RUN (a DIMNet run "
                                  "trained with covariates=G or IG) to estimate it from the voice")
    out = []
    for v, est in zip(voices, estimate_genders(dimnet, voices)):
        if "error" in est:
            print(f"{v}: gender not estimated ({est['error']})")
            out.append("")
            continue
        print(f"{v}: gender estimated from the voice: {est['gender']} (p = {est['probability']:.2f})")
        out.append(est["gender"])
    return out


def run(args: argparse.Namespace) -> int:
    from ..methods.sfv.evaluate import shape_voices

    if args.meta:
        table = _meta_genders(args.meta)
        genders = [table.get(Path(v).stem, "") for v in args.voices]
    elif args.gender:
        genders = [args.gender] * len(args.voices)
    else:
        genders = _voice_genders(args.voices, args.dimnet, args.run)
    results = shape_voices(args.run, args.voices, genders, args.out)
    failed = 0
    for r in results:
        if "error" in r:
            failed += 1
            print(f"{r['voice']}: skipped ({r['error']})")
        else:
            print(f"{r['voice']} [{r['gender']}]: {r['obj']} ({r['n_selected']} AMs selected, "
                  f"mean offset from the {r['gender']} mean face {r['mean_abs_offset_from_mean_face']:.3g})")
    return 1 if failed == len(results) else 0
