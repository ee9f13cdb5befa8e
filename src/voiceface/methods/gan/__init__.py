"""Voice-to-face GAN (Chapter 3): F_e (frozen voice embedding) -> F_g (generator), trained against a
discriminator F_d and an identity classifier F_c by Algorithm 1.

``voiceface train gan --data WORLD --out RUN [--config configs/gan/cpu.yaml]`` and ``voiceface evaluate gan --run RUN``.
"""
from __future__ import annotations

import os
from pathlib import Path

from ... import config as cfglib
from .. import DemoSection, Method
from .config import PRESETS, GANConfig
from .evaluate import RESULT_KEYS, evaluate
from .metrics import DLIB_KEYS
from .train import train


def demo(world: str | os.PathLike, out: str | os.PathLike, seed: int = 0, progress: bool = False) -> DemoSection:
    """Train (own F_e pretraining + GAN, CPU preset) on the world, evaluate, and run the 10 real VoxCeleb1 voices."""
    from ...data.samples import shared_data_dir
    from ...engine import announce
    from .generate import generate, save_faces
    from .train import load_run

    out = Path(out)
    # DIMNet-I / -G runs of the same demo (``out/../dimnet``), when the DIMNet demo ran first: Table 3.3 rows and the
    # face embedding for matching through the generated face
    changes = {f"dimnet_{v.lower()}_run": str(out.parent / "dimnet" / f"dimnet_{v}") for v in ("I", "G")
               if (out.parent / "dimnet" / f"dimnet_{v}" / "checkpoint.pt").is_file()}
    run = train(world, out / "gan_run", seed=seed, progress=progress, config=cfglib.replace(PRESETS["cpu"], changes))
    announce("gan: evaluating (discriminator on speech / noise, gender, matching through generated faces, "
             "landmarks)", progress)
    results = evaluate(run, seed=seed)
    figures = [str(Path(run) / f) for f in results["figures"]]
    md = (Path(run) / "report.md").read_text(encoding="utf-8")
    if md.startswith("#"):  # the run report's own title: the demo section has its title already
        md = md.split("\n", 1)[-1].lstrip("\n")
    shared = shared_data_dir()
    vox = shared / "voxceleb1_samples" if shared is not None else None
    metrics = {k: results[k] for k in RESULT_KEYS} | {k: results[k] for k in DLIB_KEYS if k in results}
    if vox is not None and vox.is_dir():
        model = load_run(run)
        gen = generate(model, [vox])
        save_faces(gen, out / "gan_voxceleb1")
        if len(gen.sources):
            figures.append(str(out / "gan_voxceleb1" / "sheet.png"))
            md += ("\n### Real VoxCeleb1 voices through the simulated-world model\n\n"
                   f"{len(gen.sources)} recordings -> faces (sheet below; encoder `{model.config.encoder.kind}`)"
                   ". The model was trained on simulated people, so these faces are not expected to resemble the "
                   "speakers; the point is that real audio flows through the whole pipeline.\n")
            vox_md, vox_fig, vox_metrics = _voxceleb1_gender(gen, vox / "vox1_meta.csv", Path(run),
                                                             out / "gan_voxceleb1")
            md += vox_md
            figures += vox_fig
            metrics.update(vox_metrics)
    return DemoSection("Voice-to-face GAN (Chapter 3)", md, metrics, tuple(figures))


def _voxceleb1_gender(gen, meta: Path, run: Path, out: Path) -> tuple[str, list[str], dict]:
    """Gender of the faces generated from the VoxCeleb1 voices (dlib logistic regression saved by ``evaluate``) vs
    vox1_meta.csv: Markdown, a labelled contact sheet (name, true -> predicted gender) and the agreement."""
    from ...errors import VoicefaceError
    from .generate import contact_sheet
    from .metrics import GENDER_CLASSIFIER_FILE, CachedDescriber, real_voice_gender

    if not meta.is_file() or not (run / GENDER_CLASSIFIER_FILE).is_file():
        return "", [], {}
    try:
        from ...face.descriptors import FaceDescriber
        res = real_voice_gender(CachedDescriber(FaceDescriber()), gen.faces, gen.sources, meta,
                                run / GENDER_CLASSIFIER_FILE)
    except (ImportError, VoicefaceError, OSError, RuntimeError) as e:
        return f"\n(gender of these faces not judged: dlib unavailable: {e})\n", [], {}
    labels = [f"{n[:12]} {t or '?'}>{p}" for n, t, p in res["per_file"]]
    contact_sheet(gen.faces, labels, columns=5).save(out / "sheet_gender.png")
    rows = "\n".join(f"| {n} | {t or '?'} | {p} |" for n, t, p in res["per_file"])
    md = (f"\nGender of these faces by the dlib logistic regression of the evaluation (trained on the world's real "
          f"training faces) agrees with vox1_meta.csv for {res['vox_gender_dlib_acc']:.2f} of the "
          f"{res['vox_gender_n']} speakers (labels below: name, true > predicted).\n\n"
          "| speaker | gender (vox1_meta) | generated face's gender |\n|---|---|---|\n" + rows + "\n")
    return md, [str(out / "sheet_gender.png")], {"vox_gender_dlib_acc": res["vox_gender_dlib_acc"]}


METHOD = Method("gan", "generate 64x64 faces from voice with a GAN (Chapter 3, Algorithm 1)", train, evaluate, demo)

__all__ = ["METHOD", "PRESETS", "GANConfig", "demo", "evaluate", "train"]
