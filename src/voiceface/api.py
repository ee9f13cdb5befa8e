"""The short public API: one call per thing a user does with a trained run (re-exported by ``voiceface``).

Each function loads what it needs and returns tensors or records; the CLI commands are thin wrappers of the same
library functions.
"""
from __future__ import annotations

import os
from typing import Iterable, Sequence

import numpy as np
import torch


def embed_voices(run: str | os.PathLike, voices: Sequence[str | os.PathLike], device: str = "cpu") -> torch.Tensor:
    """(N, d) L2-normalised DIMNet voice embeddings of recordings (any format; VAD + log-mel + CMVN first).

    A recording that cannot be used raises ``InputError`` naming it.
    """
    from .audio import extract_features
    from .methods.dimnet.train import load_voice_net

    net = load_voice_net(run, device).eval()
    out = []
    with torch.no_grad():
        for v in voices:
            feat = torch.from_numpy(extract_features(v)).T[None].to(device)   # (1, 64, T)
            out.append(torch.nn.functional.normalize(net(feat), dim=1).cpu())
    return torch.cat(out) if out else torch.zeros(0, 0)


def generate_faces(run: str | os.PathLike, voices: Sequence[str | os.PathLike | np.ndarray],
                   device: str = "cpu") -> torch.Tensor:
    """(N, 3, 64, 64) faces in [-1, 1] generated from recordings by a trained GAN run (Chapter 3).

    Recordings that cannot be read are skipped (see ``voiceface.methods.gan.generate.generate`` for the list).
    """
    from .methods.gan.generate import generate, load_model

    return generate(load_model(run, device=device), voices).faces


def reconstruct_faces(run: str | os.PathLike, images: Iterable[str | os.PathLike], out: str | os.PathLike
                      ) -> list[dict]:
    """CEST 3D reconstruction of photos (Chapter 4): per image an OBJ, overlay, UV reflectance, shading, relit
    renders and a JSON of parameters in ``out``; returns one record per image (``error`` set for skipped ones)."""
    from .methods.cest.reconstruct import reconstruct_images

    return reconstruct_images(run, images, out)


def shapes_from_voices(run: str | os.PathLike, voices: Sequence[str | os.PathLike], genders: Sequence[str],
                       out: str | os.PathLike) -> list[dict]:
    """SfV 3D face shapes from recordings (Chapter 5), one gender ('m' / 'f') per recording; writes OBJ, JSON of
    AM predictions with uncertainty and selection, and a render per recording in ``out``."""
    from .methods.sfv.evaluate import shape_voices

    return shape_voices(run, voices, genders, out)
