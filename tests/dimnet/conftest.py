"""A small fake world for DIMNet tests: synthetic speech (voiceface.sim.voices) and simple face images whose
appearance depends on gender and identity, in the manifest format of the simulated world."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from voiceface.data.manifest import Item, write_manifest


def make_fake_world(root, n_id: int = 10, voices: int = 3, faces: int = 5, seconds: float = 2.0, seed: int = 0,
                    n_test: int = 4):
    from voiceface.sim.voices import VoiceParams, synthesize, write_wav

    rng = np.random.default_rng(seed)
    items = []
    test_ids = set(range(n_id - n_test, n_id))
    for i in range(n_id):
        ident = f"p{i:02d}"
        g = "m" if i % 2 == 0 else "f"
        nat = "aa" if i % 3 else "bb"
        split = "test" if i in test_ids else "train"
        male = g == "m"
        vp = VoiceParams(f0_hz=(115.0 if male else 205.0) * np.exp(0.08 * rng.standard_normal()),
                         f0_range_st=2.0, vtl_cm=(17.0 if male else 14.5) + 0.4 * rng.standard_normal(),
                         formant_offsets=tuple(1 + 0.04 * rng.standard_normal(4)), nasal_pole_hz=270.0,
                         nasal_zero_hz=1100.0, nasal_pole2_hz=2100.0, nasal_bw_hz=120.0, nasality=0.1,
                         lip_rounding=0.15, tilt_db_oct=-1.0, rate_syl_s=4.5, jitter=0.01, shimmer=0.03,
                         breathiness=0.05, open_quotient=0.6)
        for k in range(voices):
            p = root / "voices" / ident / f"{k}.wav"
            p.parent.mkdir(parents=True, exist_ok=True)
            write_wav(p, synthesize(vp, seconds, rng))
            items.append(Item(str(p), "voice", ident, g, nat, split, session=str(k), duration=seconds))
        base = rng.uniform(40, 215, 3) + (40 if male else -40)
        for k in range(faces):
            img = np.clip(base + rng.normal(0, 25, (128, 128, 3)), 0, 255).astype(np.uint8)
            img[:, :64] = np.clip(img[:, :64].astype(int) + (60 if male else -60), 0, 255)
            p = root / "faces" / ident / f"{k}.png"
            p64 = root / "faces64" / ident / f"{k}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            p64.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(p)
            Image.fromarray(img).resize((64, 64)).save(p64)
            items.append(Item(str(p), "face", ident, g, nat, split, session=str(k), width=128, height=128,
                              extra={"path64": f"faces64/{ident}/{k}.png"}))
    write_manifest(items, root / "manifest.csv")
    return root


@pytest.fixture(scope="session")
def fake_world(tmp_path_factory):
    return make_fake_world(tmp_path_factory.mktemp("dimnet_world"))
