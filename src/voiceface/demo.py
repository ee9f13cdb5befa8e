"""``voiceface demo``: build the simulated world, run every method on it, write one report.

``DIR/world/`` the simulated world (resumable), ``DIR/<method>/`` each method's runs and figures,
``DIR/report.html`` + ``DIR/report.md`` the report, ``DIR/results.json`` every method's flat metrics plus timings.
A method that fails is reported in the page (and in the return value) and the others still run.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .engine.runs import write_json
from .errors import VoicefaceError
from .methods import DemoSection, registry
from .report.html import write_report

log = logging.getLogger(__name__)


# per method, the metrics the terminal summary shows (label, key of the method's DemoSection.metrics); missing
# keys are skipped, so a method whose metrics change shows what it still has
HEADLINES: dict[str, tuple[tuple[str, str], ...]] = {
    "world check": (("GE2E EER across sessions", "world.voice_eer"), ("GE2E 1-NN", "world.voice_1nn"),
                    ("dlib 1-NN", "world.face_1nn"), ("dlib EER", "world.face_eer")),
    "dimnet": (("v->f 1:2 (U)", "DIMNet-IG/match_v2f_U"), ("v->f 1:2 (G)", "DIMNet-IG/match_v2f_G"),
               ("DIMNet-G v->f (U)", "DIMNet-G/match_v2f_U"),
               ("DIMNet-G gender, real speech", "DIMNet-G/real_acc_gender_voice_librispeech")),
    "gan": (("gender of generated faces", "gen_gender_acc"), ("v->f 1:2 via generated (U)", "gen_match_v2f_U"),
            ("D(speech)", "d_speech_mean")),
    "cest": (("NME %", "cest_a/nme"), ("NME mean shape %", "cest/nme_mean_shape"),
             ("photometric error", "cest_a/photometric_error"),
             ("shape error / mean shape's, landmark-weighted", "cest_kp/shape_ratio_mean_shape")),
    "sfv": (("AMs selected (m)", "sfv_selected_male"), ("recall", "sfv_recall"),
            ("vertex error", "sfv_vertex_error"), ("vertex error mean shape", "sfv_vertex_error_mean_shape")),
}


@dataclass(frozen=True)
class DemoResult:
    """``report``: the HTML page; ``results``: every method's flat metrics + timings (results.json);
    ``summary``: one row per stage (stage, wall time in s, status, headline metrics as "label: value" strings)."""

    report: Path
    results: dict
    failures: dict[str, str] = field(default_factory=dict)
    summary: list[dict] = field(default_factory=list)


def headline(method: str, metrics: dict) -> list[str]:
    """The method's ``HEADLINES`` present in ``metrics``, as "label value" strings (fractions with 3 digits)."""
    out = []
    for label, key in HEADLINES.get(method, ()):
        v = metrics.get(key)
        if isinstance(v, (int, float)) and v == v:
            out.append(f"{label} {v:.3g}" if isinstance(v, float) else f"{label} {v}")
    return out


def format_summary(summary: list[dict]) -> str:
    """The terminal table of a demo: stage, wall time, status, headline metrics (plain text, aligned)."""
    rows = [("stage", "time", "status", "headline metrics")]
    rows += [(r["stage"], f"{r['seconds']:.0f} s", r["status"], "; ".join(r["metrics"]) or "-") for r in summary]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3] for r in rows)


def world_check(world) -> tuple[dict, str]:
    """``voiceface sim check`` on the world's test split (with the real-data column when ``../shared/data`` is there),
    stored in ``world.json``; returns (figures, "") or ({}, a one-line note saying why there are none)."""
    from .data.samples import shared_data_dir
    from .sim.check import check_world, store_check

    real = shared_data_dir()
    try:
        res = check_world(world, real_data=real, split="test")
    except VoicefaceError as e:
        return {}, f"The realism check did not run: {e}"
    if real is None:
        res["real_note"] = "no real sample folder (../shared/data or $VOICEFACE_SHARED_DATA)"
    store_check(world.root, res)
    return res, ""


def world_section(world, out: Path, check: dict | None = None, check_note: str = "") -> DemoSection:
    """The report's first section: what the world holds, a face contact sheet, a clip, spectrograms, the
    ground truth of the voice-face link and (``check``: ``sim.check.check_world``'s figures) how real it looks to
    pretrained judges."""
    from .report.tables import markdown_table
    from .sim.plots import clip_strip, contact_sheet, spectrogram_figure

    out.mkdir(parents=True, exist_ok=True)
    m = world.manifest
    rows = []
    for split in ("train", "val", "test"):
        sel = m.select(split=split)
        rows.append({"split": split, "identities": len(sel.identities()),
                     **{mod: len(sel.select(modality=mod)) for mod in ("voice", "face", "clip", "mesh")}})
    figures = [contact_sheet(world, out / "faces.png")]
    clips = m.select(modality="clip")
    if len(clips):
        figures.append(clip_strip(clips[0].path, out / "clip.png"))
    voices = m.select(modality="voice")
    figures.append(spectrogram_figure([it.path for it in voices[:3]], out / "spectrograms.png"))
    gt = world.ground_truth
    link_rows = [{"gender": g, "linked AMs (R^2 >= threshold)": len(v["linked_ams"]),
                  "unlinked AMs": len(v["unlinked_ams"]),
                  "strongest": ", ".join(v["linked_ams"][:5])}
                 for g, v in gt.items() if isinstance(v, dict) and "linked_ams" in v]
    text = (f"Simulated world `{world.root}` (preset `{world.info['preset']['name']}`, seed {world.info.get('seed')}, "
            f"coupling {world.coupling}). People have gender, age and nationality; faces come from the built-in "
            "morphable model, voices from the source-filter synthesiser whose vocal tract, nasal branch and lip "
            "rounding follow the face.\n\n" + markdown_table(rows) +
            "\nWhich anthropometric measurements (Table 5.1) the voice carries, from the generator itself:\n\n" +
            markdown_table(link_rows))
    metrics = {}
    if check:
        from .sim.check import check_table
        text += ("\nHow real the test split looks to two pretrained judges (GE2E speaker encoder, dlib face "
                 "descriptor), beside the same figures on real recordings and photos "
                 f"(`voiceface sim check {world.root}`):\n\n" + check_table(check))
        metrics = {f"check.{k}": v for k, v in check.items()
                   if isinstance(v, (int, float)) and not k.endswith("seconds")}
    elif check_note:
        text += f"\n{check_note}\n"
    return DemoSection("The simulated world", text, metrics, tuple(str(f) for f in figures))


def run_demo(out: str | Path, preset: str = "small", seed: int = 0, workers: int = 2,
             methods: Sequence[str] | None = None, progress: bool = True) -> DemoResult:
    """Run the whole system on a simulated world of ``preset`` and write ``out/report.html``.

    ``progress``: the world's bar, each training's bar (step, losses, ETA) and a line per stage on stderr (bars
    hide themselves when stderr is not a terminal). The returned ``summary`` is for the caller to print
    (``format_summary``)."""
    from .engine import announce
    from .sim import build_world, load_world

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    world = load_world(build_world(out / "world", preset=preset, seed=seed, workers=workers, progress=progress))
    timings["world"] = time.perf_counter() - t0
    summary = [{"stage": "world", "seconds": timings["world"], "status": "ok",
                "metrics": [f"{len(world.manifest.identities())} people", f"{len(world.manifest)} items"]}]
    t0 = time.perf_counter()
    announce("demo: realism check of the world (GE2E voices, dlib faces)", progress)
    check, check_note = world_check(world)
    timings["world check"] = time.perf_counter() - t0
    summary.append({"stage": "world check", "seconds": timings["world check"], "status": "ok" if check else "skipped",
                    "metrics": headline("world check", check)})
    sections: list[DemoSection] = [world_section(world, out / "world_figures", check, check_note)]
    results: dict = dict(sections[0].metrics)        # the world check's figures (check.world.*, check.real.*)
    failures: dict[str, str] = {}
    available = registry()
    unknown = sorted(set(methods or ()) - set(available))
    if unknown:
        raise VoicefaceError(f"unknown method(s): {', '.join(unknown)} (known: {', '.join(available)})")
    todo = [name for name in available if not methods or name in methods]
    for k, name in enumerate(todo, 1):
        t = time.perf_counter()
        announce(f"demo [{k}/{len(todo)}]: {name} ({available[name].summary})", progress)
        try:
            section = available[name].demo(out / "world", out / name, seed=seed, progress=progress)
        except VoicefaceError as e:
            failures[name] = str(e)
            section = DemoSection(title=f"{name}: failed", markdown=f"<p class='failed'>{e}</p>")
        timings[name] = time.perf_counter() - t
        summary.append({"stage": name, "seconds": timings[name], "status": "failed" if name in failures else "ok",
                        "metrics": headline(name, dict(section.metrics))})
        announce(f"demo [{k}/{len(todo)}]: {name} done in {timings[name]:.0f} s", progress)
        results.update(section.metrics)
        sections.append(section)
    timing_md = "\n".join(f"| {k} | {v:.0f} s |" for k, v in timings.items())
    intro = (f"Everything on this page was produced by `voiceface demo --out {out} --preset {preset} --seed {seed}` "
             f"on a simulated world (ground truth known; no real corpus). Rerun that command to reproduce it.\n\n"
             f"| stage | wall time |\n|---|---|\n{timing_md}\n")
    results["timings_s"] = timings
    write_json(out / "results.json", results)
    md = "\n\n".join([f"# voiceface demo\n\n{intro}"] + [f"## {s.title}\n\n{s.markdown}" for s in sections])
    (out / "report.md").write_text(md, encoding="utf-8")
    report = write_report(sections, out / "report.html", "voiceface demo", intro)
    return DemoResult(report, results, failures, summary)
