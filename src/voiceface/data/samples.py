"""The small real samples that may sit beside a checkout (``../shared/data``, or ``$VOICEFACE_SHARED_DATA``), read
as manifests: real speech with speakers' sex, for checks of models trained on the simulated world.

* ``shared_data_dir()``: the folder, or None when it is absent (a user's fresh clone has none).
* ``librispeech_sample(root)``: the LibriSpeech test-other sample (``SPEAKER/*.flac`` + ``SPEAKERS.TXT``).
* ``voxceleb1_sample(root)``: the 10 VoxCeleb1 utterances named after their speaker (``NAME.wav`` +
  ``vox1_meta.csv``).

Each returns a ``Manifest`` of voice items with identity and gender (nationality too for VoxCeleb1), all in split
``test``; ``real_voice_sets()`` gives those that are present, by name.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError
from .adapters import librispeech, read_meta
from .manifest import Item, Manifest

ENV = "VOICEFACE_SHARED_DATA"
"""Environment variable that points at the sample folder (default: ``shared/data`` beside the checkout)."""


def shared_data_dir() -> Path | None:
    """The real-sample folder (``$VOICEFACE_SHARED_DATA``, else ``shared/data`` next to the repository holding this
    package), or None when it does not exist."""
    env = os.environ.get(ENV)
    p = Path(env) if env else Path(__file__).resolve().parents[4] / "shared" / "data"
    return p if p.is_dir() else None


def librispeech_sample(root: str | os.PathLike) -> Manifest:
    """The LibriSpeech sample as a test-split manifest (identity = reader id, gender from SPEAKERS.TXT)."""
    return Manifest([it.with_(split="test") for it in librispeech(root)], root=Path(root))


def voxceleb1_sample(root: str | os.PathLike) -> Manifest:
    """The VoxCeleb1 sample (``NAME.wav`` files, ``vox1_meta.csv``) as a test-split manifest."""
    root = Path(root)
    meta = {p.identity: p for p in read_meta(root / "vox1_meta.csv")}
    items = []
    for f in sorted(root.glob("*.wav")):
        p = meta.get(f.stem)
        if p is None:
            raise InputError(f, "speaker not in vox1_meta.csv")
        items.append(Item(path=str(f.resolve()), modality="voice", identity=p.identity, gender=p.gender,
                          nationality=p.nationality, split="test", extra={"vox_id": p.vox_id}))
    if not items:
        raise InputError(root, "no NAME.wav files")
    return Manifest(items, root=root)


def real_voice_sets(root: str | os.PathLike | None = None) -> dict[str, Manifest]:
    """{name: manifest} of the real voice samples found under ``root`` (default ``shared_data_dir()``):
    ``librispeech`` and ``voxceleb1``; {} when there are none."""
    root = Path(root) if root is not None else shared_data_dir()
    if root is None:
        return {}
    out = {}
    if (root / "librispeech_test_other").is_dir():
        out["librispeech"] = librispeech_sample(root / "librispeech_test_other")
    if (root / "voxceleb1_samples" / "vox1_meta.csv").is_file():
        out["voxceleb1"] = voxceleb1_sample(root / "voxceleb1_samples")
    return out


__all__ = ["ENV", "librispeech_sample", "real_voice_sets", "shared_data_dir", "voxceleb1_sample"]
