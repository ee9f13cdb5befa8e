"""``voiceface sim build|listen|show|check``: build the simulated world, write samples a person can hear and see, and
score its realism with pretrained judges against real data."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sim", help="build the simulated audiovisual world; listen to / look at one",
                       description="The simulated world: people, rendered faces and clips, synthesised voices and "
                                   "the ground truth of the voice-face link (world.json).")
    s = p.add_subparsers(dest="sim_command", required=True, metavar="ACTION")
    b = s.add_parser("build", help="generate a world folder (resumes a partial build)",
                     description="Generate a world: manifest.csv, world.json, people.csv, voices/, faces/, faces64/, "
                                 "meshes/, clips/. Deterministic from --seed; rerun to resume.")
    b.add_argument("--preset", default="small",
                   help="tiny | small | paper | video (faces only: clips and meshes, for CEST) (default small)")
    b.add_argument("--out", required=True, help="world folder")
    b.add_argument("--seed", type=int, default=0, help="world seed (default 0)")
    b.add_argument("--coupling", type=float, default=1.0, help="face-to-voice link strength in [0, 1] (default 1)")
    b.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="changes to the preset, e.g. identities=1225 split=[924,112,189] utterances=6 images=6 "
                        "clips=0 age_cue=0 (the world is then named PRESET-custom unless name=... is given)")
    b.set_defaults(func=run_build)
    li = s.add_parser("listen", help="copy a few voices and draw their spectrograms",
                      description="Write a few WAVs (different people, both genders) and spectrogram.png to DIR.")
    li.add_argument("world", help="world folder")
    li.add_argument("--out", required=True, help="output folder")
    li.add_argument("-n", type=int, default=4, help="number of voices (default 4)")
    li.set_defaults(func=run_listen)
    sh = s.add_parser("show", help="contact sheet of faces and a clip strip",
                      description="Write faces.png (aligned crops, one row per person) and clip.png (one clip's "
                                  "frames, masks and landmarks) to DIR.")
    sh.add_argument("world", help="world folder")
    sh.add_argument("--out", required=True, help="output folder")
    sh.add_argument("-n", type=int, default=8, help="number of people (default 8)")
    sh.set_defaults(func=run_show)
    c = s.add_parser("check", help="how real the world looks to pretrained GE2E and dlib models",
                     description="Score a world split with the pretrained GE2E speaker encoder (verification EER and "
                                 "1-NN identification across recording sessions) and dlib's face descriptor (1-NN "
                                 "identification, verification EER), beside the same figures on real LibriSpeech "
                                 "voices and ORL faces. Prints a Markdown table and stores the figures in "
                                 "WORLD/world.json under \"check\".")
    c.add_argument("world", help="world folder")
    c.add_argument("--split", default="test", help="the world split to judge (default test)")
    c.add_argument("--real-data", default=None,
                   help="folder with librispeech_test_other/ and orl_faces/ (default $VOICEFACE_SHARED_DATA or "
                        "../shared/data beside the checkout)")
    c.add_argument("--no-real", action="store_true", help="no real-data column")
    c.add_argument("--json", default=None, metavar="OUT", help="also write the figures to this JSON file")
    c.set_defaults(func=run_check)


def run_build(args: argparse.Namespace) -> int:
    import json
    import time

    from .. import config as cfglib
    from ..sim import build_world
    from ..sim.presets import get_preset

    t = time.perf_counter()
    preset = get_preset(args.preset)
    if args.overrides:
        preset = cfglib.replace(preset, {"name": f"{preset.name}-custom", **cfglib.parse_overrides(args.overrides)})
    manifest = build_world(args.out, preset=preset, seed=args.seed, coupling=args.coupling,
                           workers=args.workers, progress=not args.quiet)
    info = json.loads((Path(args.out) / "world.json").read_text())
    c = info["counts"]
    print(f"world {preset.name} (seed {args.seed}, coupling {args.coupling:g}, age_cue {preset.age_cue:g}) in "
          f"{time.perf_counter() - t:.1f} s: "
          f"{c['identities']} people ({c['train']}/{c['val']}/{c['test']}), {c['voice']} voices "
          f"({c['audio_seconds']:.0f} s), {c['face']} faces, {c['clip']} clips, {c['mesh']} meshes -> {manifest}")
    for g in ("m", "f"):
        gt = info["ground_truth"][g]
        top = ", ".join(f"{a} ({gt['r2_voice'][a]:.2f})" for a in gt["linked_ams"][:5])
        print(f"  voice-linked AMs ({'male' if g == 'm' else 'female'}, R^2): {top or 'none'}")
    return 0


def run_listen(args: argparse.Namespace) -> int:
    import shutil

    from ..sim.plots import spectrogram_figure
    from ..sim.world import load_world

    w = load_world(args.world)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    chosen = _pick_voices(w, args.n)
    paths = []
    for it in chosen:
        dst = out / f"{it.identity}_{it.gender}_{Path(it.path).stem}.wav"
        shutil.copyfile(it.path, dst)
        paths.append(dst)
    spectrogram_figure(paths, out / "spectrogram.png")
    print(f"wrote {len(paths)} WAVs and spectrogram.png to {out}")
    return 0


def _pick_voices(world, n: int):
    voices = world.manifest.select(modality="voice")
    by_gender = {g: [] for g in ("m", "f")}
    seen = set()
    for it in voices:
        if it.identity not in seen and it.gender in by_gender:
            by_gender[it.gender].append(it)
            seen.add(it.identity)
    out = []
    for k in range(n):
        lst = by_gender["m" if k % 2 == 0 else "f"] or by_gender["m"] or by_gender["f"]
        if k // 2 < len(lst):
            out.append(lst[k // 2])
    return out


def run_show(args: argparse.Namespace) -> int:
    from ..sim.plots import clip_strip, contact_sheet
    from ..sim.world import load_world

    w = load_world(args.world)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    contact_sheet(w, out / "faces.png", people=args.n)
    clips = w.manifest.select(modality="clip")
    if len(clips):
        clip_strip(clips[0].path, out / "clip.png")
    print(f"wrote faces.png{' and clip.png' if len(clips) else ''} to {out}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from ..data.samples import shared_data_dir
    from ..engine.runs import write_json
    from ..sim.check import check_table, check_world, store_check
    from ..sim.world import load_world

    w = load_world(args.world)
    real = None if args.no_real else Path(args.real_data) if args.real_data else shared_data_dir()
    res = check_world(w, real_data=real, split=args.split)
    if args.no_real:
        res["real_note"] = "--no-real given"
    elif real is None:
        res["real_note"] = "no real sample folder (../shared/data or $VOICEFACE_SHARED_DATA)"
    print(check_table(res), end="")
    store_check(w.root, res)
    if args.json:
        write_json(args.json, res)
    print(f"({res['seconds']:.0f} s; figures stored in {w.root / 'world.json'} under \"check\""
          + (f" and {args.json}" if args.json else "") + ")")
    return 0
