"""DIMNet: voice and face embeddings learned from covariates, applied to each modality separately (Chapter 2).

``voiceface train dimnet --data WORLD --out RUN [--config configs/dimnet/cpu.yaml] [covariates=IG ...]`` and
``voiceface evaluate dimnet --run RUN``; ``load_voice_net(run)`` gives the trained voice network to other methods.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from .. import DemoSection, Method
from .config import PRESETS, DIMNetConfig
from .evaluate import evaluate
from .train import load_trained, load_voice_net, train

log = logging.getLogger(__name__)

DEMO_VARIANTS = ("G", "I", "IG")
DEMO_STEPS = None
"""Training steps per demo variant: None, the cpu preset's 2,000 (~1.5 min each on two free cores; 600 steps did not
learn the age cue the world's voices share with its faces: DIMNet-IG 71.6% / 51.9% unstratified / gender-stratified)."""


def demo(world: str | os.PathLike, out: str | os.PathLike, seed: int = 0, variants=DEMO_VARIANTS,
         steps: int | None = DEMO_STEPS, progress: bool = False) -> DemoSection:
    """Train DIMNet-G, -I and -IG (CPU preset) on the simulated world and report the thesis's findings (Sec. 2.3)
    on the unseen identities of the val and test splits (no model selection uses val):
    gender-only matching near 75% unstratified and at chance when gender-stratified; identity supervision well
    above chance under stratification; identity + gender slightly better than identity alone.
    ``steps``: training steps per variant (None: the cpu preset's 2,000; the step schedule is rescaled);
    ``progress``: training bars and stage lines on stderr."""
    from ... import config as cfglib
    from ...engine import announce
    from .report import plot_curve, tables_markdown

    out = Path(out)
    rows = {}
    for v in variants:
        changes = {"covariates": v, "seed": seed, "data": {"test_splits": ["val", "test"]}}
        if steps:
            changes["optim"] = {"steps": steps, "milestones": [int(0.7 * steps), int(0.9 * steps)]}
        cfg = cfglib.replace(PRESETS["cpu"], changes)
        run = out / f"dimnet_{v}"
        train(world, run, config=cfg, progress=progress)
        announce(f"dimnet: evaluating DIMNet-{v} (1:2 / 1:N matching, verification, retrieval)", progress)
        rows[f"DIMNet-{v}"] = evaluate(run, label=f"DIMNet-{v}")
    curve = plot_curve(rows, out / "dimnet_curve.png")
    metrics = {f"{name}/{k}": rows[name][k] for name in rows for k in
               ("match_v2f_U", "match_v2f_G", "match_f2v_U", "match_f2v_G", "eer_U", "auc_U", "map_v2f_id",
                "real_acc_gender_voice_librispeech", "real_acc_gender_voice_voxceleb1")
               if k in rows[name]}
    md = [_findings(rows), "", tables_markdown(rows, out)]
    figures = [str(curve)] + [str(out / f"dimnet_{v}" / "mds.png") for v in variants
                              if (out / f"dimnet_{v}" / "mds.png").exists()][:1]
    return DemoSection("DIMNet: voice-face matching through covariates (Chapter 2)", "\n".join(md), metrics,
                       tuple(figures))


def _findings(rows) -> str:
    """The thesis's three findings, checked on our numbers (binomial standard errors from the trial counts)."""
    def acc(name, s):
        r = rows.get(name, {})
        p, n = r.get(f"match_v2f_{s}"), r.get(f"n_trials_v2f_{s}")
        if p is None or not n:
            return None
        return p, (p * (1 - p) / n) ** 0.5

    def fmt(a):
        return f"{100 * a[0]:.1f} ± {100 * a[1]:.1f}%"

    lines = ["Narrow CPU preset (short training) on the simulated world, one model per variant; 1:2 voice -> face matching accuracy "
             "on unseen identities (val + test splits; ± binomial standard error over the trials; trials share items, so the real "
             "uncertainty is larger). U: random imposters, G: imposters of the probe's gender."]
    gu, gg, iu, ig, igu, igg = (acc("DIMNet-G", "U"), acc("DIMNet-G", "G"), acc("DIMNet-I", "U"),
                                acc("DIMNet-I", "G"), acc("DIMNet-IG", "U"), acc("DIMNet-IG", "G"))
    if gu and gg:
        lines.append(f"- DIMNet-G (gender only): U {fmt(gu)} (thesis 72.9%; a perfect gender matcher gives 75%), "
                     f"G {fmt(gg)} (thesis 50.3%, chance 50%): "
                     + ("reproduced: the unstratified score is explained by gender."
                        if abs(gg[0] - 0.5) < 2 * gg[1] + 0.02 and gu[0] > 0.6 else "NOT reproduced here."))
    g_res = rows.get("DIMNet-G", {})
    if g_res.get("acc_gender_voice") is not None and g_res.get("acc_gender_face") is not None:
        av, af = g_res["acc_gender_voice"], g_res["acc_gender_face"]
        q = av * af + (1 - av) * (1 - af)
        lines.append(f"- Gender classifiers of DIMNet-G on unseen identities: voice {100 * av:.1f}%, face "
                     f"{100 * af:.1f}% (thesis 97.5% / 99.2%). Matching by these hard gender decisions alone "
                     f"(gender-balanced imposters) would score 1/2 + (q - 1/2)/2 = {100 * (0.5 + (q - 0.5) / 2):.1f}%, "
                     f"q = a_v a_f + (1 - a_v)(1 - a_f): the unstratified score is capped by the weaker modality.")
    real = {k.rsplit("_", 1)[-1]: v for k, v in g_res.items()
            if k.startswith("real_acc_gender_voice_") and v is not None}
    if real:
        lines.append("- Transfer to real speech: DIMNet-G's voice gender classifier, trained on the simulated world "
                     "only, on real recordings: " + ", ".join(
                         f"{name} {100 * v:.1f}% of {int(g_res.get(f'real_n_voices_{name}', 0))} utterances"
                         for name, v in sorted(real.items())) + ".")
    if iu and ig:
        lines.append(f"- DIMNet-I (identity): U {fmt(iu)}, G {fmt(ig)} (thesis 83.5% / 70.9%): "
                     + ("above chance under gender stratification." if ig[0] - 0.5 > 2 * ig[1]
                        else "NOT clearly above chance under gender stratification.")
                     + (f" Seen-heard (training identities' held-out items): U "
                        f"{100 * rows['DIMNet-I']['seen_match_v2f_U']:.1f}%."
                        if rows["DIMNet-I"].get("seen_match_v2f_U") is not None else ""))
    if igu and igg and iu and ig:
        du, dg = igu[0] - iu[0], igg[0] - ig[0]
        lines.append(f"- DIMNet-IG (identity + gender): U {fmt(igu)}, G {fmt(igg)} (thesis 84.1% / 71.3%); "
                     f"minus DIMNet-I: {100 * du:+.1f} (U) / {100 * dg:+.1f} (G) points "
                     + ("(better, as in the thesis's +0.6 / +0.4)." if du > 0 and dg > 0 else
                        "(not better on both; the thesis's gain is under one point, below our seed noise)."))
    return "\n".join(lines)


METHOD = Method("dimnet", "voice-face matching embeddings supervised by covariates (Ch. 2)", train, evaluate, demo)

__all__ = ["METHOD", "PRESETS", "DIMNetConfig", "demo", "evaluate", "load_trained", "load_voice_net", "train"]
