"""The real-sample readers (LibriSpeech layout + SPEAKERS.TXT, the VoxCeleb1 sample) and the shared-data lookup."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voiceface.data import samples
from voiceface.data.adapters import ADAPTERS, librispeech, read_librispeech_speakers
from voiceface.errors import InputError

SPEAKERS = """; comment lines first
;ID  |SEX| SUBSET           |MINUTES| NAME
14   | F | train-clean-360  | 25.03 | Kristin LeMoine
17   | M | train-clean-360  | 25.04 | Gord Mackenzie
"""


def _tree(root: Path) -> Path:
    (root / "SPEAKERS.TXT").write_text(SPEAKERS)
    tone = (0.1 * np.sin(np.arange(8000) / 5.0)).astype(np.float32)
    for spk, chapter in (("14", "208"), ("17", "362")):
        d = root / spk / chapter
        d.mkdir(parents=True)
        for n in range(2):
            sf.write(d / f"{spk}-{chapter}-{n:04d}.flac", tone, 16000)
    return root


def test_librispeech_layout(tmp_path):
    m = librispeech(_tree(tmp_path), probe=True)
    assert ADAPTERS["librispeech"] is librispeech
    assert len(m) == 4 and sorted(m.identities()) == ["14", "17"]
    by_id = {it.identity: it for it in m}
    assert by_id["14"].gender == "f" and by_id["17"].gender == "m"
    assert by_id["17"].session == "362" and abs(by_id["17"].duration - 0.5) < 1e-6


def test_librispeech_bad_input(tmp_path):
    with pytest.raises(InputError, match="no SPEAKER"):
        librispeech(tmp_path)
    bad = tmp_path / "SPEAKERS.TXT"
    bad.write_text("; only comments\n")
    with pytest.raises(InputError, match="no speaker rows"):
        read_librispeech_speakers(bad)


def test_shared_data_dir_env(tmp_path, monkeypatch):
    monkeypatch.setenv(samples.ENV, str(tmp_path))
    assert samples.shared_data_dir() == tmp_path
    assert samples.real_voice_sets() == {}
    monkeypatch.setenv(samples.ENV, str(tmp_path / "absent"))
    assert samples.shared_data_dir() is None


def test_real_voice_sets(librispeech, voxceleb1_samples):
    sets = samples.real_voice_sets(librispeech.parent)
    ls, vox = sets["librispeech"], sets["voxceleb1"]
    assert len(ls) == 100 and len(ls.identities()) == 10
    assert sorted(it.gender for it in ls).count("f") == 50
    assert len(vox) == 10 and {it.gender for it in vox} == {"m", "f"}
    assert all(it.split == "test" for it in list(ls) + list(vox))
