"""Does the face prior's autoencoder keep what makes a face look female or male to an independent judge? The real
faces of the unseen identities are passed through a GAN run's face prior (``RUN/prior``: ``FaceEncoder`` -> unit
code -> the prior's decoder) and judged by the run's dlib gender classifier (``RUN/gender_dlib.json``, written by
``voiceface evaluate gan`` or ``bench/ablate_gan.py``), per gender, beside the real faces themselves and the real
faces blurred (average-pooled by k, bilinearly upsampled). Also the reconstructions' mean absolute pixel error.

Finding (issue 13; the demo's world, ``bench/ablate_gan.py`` seed 4 rows; the judge: 98.7% on real unseen faces):
the generated faces' gender errors were nearly all female voices' faces judged male (seed 4, the preset with an
800-step prior: female 0.565, male 1.000). The 800-step prior's reconstructions of real female faces already fall
to 0.281 female (male 0.991), and blurring real female faces by 2 to 0.830: the blur of an under-trained decoder
erases what dlib reads as female. Run:

    OMP_NUM_THREADS=1 .venv/bin/python bench/gan_prior_gender.py --run GAN_RUN --cache DIR/dlib_cache.npz
"""
from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from voiceface.data.manifest import read_manifest
from voiceface.engine import load_checkpoint
from voiceface.methods import resolve_data
from voiceface.methods.gan.metrics import GenderLogReg, gender_codes
from voiceface.methods.gan.model import FaceAutoencoder, FaceEncoder
from voiceface.methods.gan.train import TrainedGAN, build_gan, load_faces64, load_run, split_data, to_unit

ev = importlib.import_module("voiceface.methods.gan.evaluate")    # the package re-exports a function of that name


def blur(x: torch.Tensor, k: int) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 3, H, W): average-pooled by k, bilinearly upsampled back."""
    return F.interpolate(F.avg_pool2d(x, k), scale_factor=k, mode="bilinear", align_corners=False)


@torch.no_grad()
def reconstruct(run: Path, model: TrainedGAN, x: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """(B, 3, 64, 64) real faces -> their reconstructions by the face prior of ``run`` (loaded as ``model``):
    the prior's encoder and decoder, ``RUN/prior/checkpoint.pt``."""
    ckpt = load_checkpoint(run / "prior" / "checkpoint.pt")
    enc = FaceEncoder(model.config.model.prior_channels, model.config.model.embed_dim)
    enc.load_state_dict(ckpt["models"]["face_encoder"])
    dec = build_gan(model.config, len(model.identities), model.encoder.dim, model.seed)[0].net
    dec.load_state_dict(ckpt["models"]["decoder"])
    ae = FaceAutoencoder(enc, dec).eval()
    return torch.cat([ae(x[i:i + chunk]).clamp(-1, 1) for i in range(0, len(x), chunk)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="a GAN run folder trained with the face prior (stable.prior_steps)")
    ap.add_argument("--cache", required=True, help="dlib descriptors of real faces (bench/ablate_gan.py's npz)")
    args = ap.parse_args()
    run = Path(args.run)
    model = load_run(run)
    manifest = read_manifest(resolve_data(model.data))
    faces, items = load_faces64(split_data(manifest, model.config).test_face, manifest.root)
    x, y = to_unit(faces), gender_codes([i.gender for i in items])
    emb = ev._Embedders(model)
    emb.dlib_cached.load(args.cache)
    clf = GenderLogReg.load(run / "gender_dlib.json")
    rec = reconstruct(run, model, x)
    out = {"reconstruction_l1": float((rec - x).abs().mean())}
    for name, imgs in (("real", x), ("blur2", blur(x, 2)), ("blur4", blur(x, 4)), ("prior", rec)):
        p = clf.predict(emb.dlib_desc(imgs))
        out[name] = {"female": float(np.mean(p[y == 1] == 1)), "male": float(np.mean(p[y == 0] == 0))}
        print(f"{name:6s} judged female {out[name]['female']:.3f} / male {out[name]['male']:.3f}", flush=True)
    emb.dlib_cached.save(args.cache)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
