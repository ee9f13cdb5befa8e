"""Generation from real recordings (CLI and API) and the evaluation's results.json names."""
from __future__ import annotations

import json
import shutil

import numpy as np
import torch
from PIL import Image

from voiceface.cli import main
from voiceface.methods.gan.evaluate import RESULT_KEYS, noise
from voiceface.methods.gan.generate import generate, load_model


def test_generate_cli_on_real_wav(gan_run, voxceleb1_samples, tmp_path):
    wavs = sorted(voxceleb1_samples.glob("*.wav"))[:2]
    src = tmp_path / "in"
    src.mkdir()
    for w in wavs:
        shutil.copy(w, src / w.name)
    (src / "broken.wav").write_bytes(b"not audio at all")
    out = tmp_path / "faces"
    assert main(["generate", str(src), "-o", str(out), "--run", str(gan_run)]) == 0
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == sorted([w.stem + ".png" for w in wavs] + ["sheet.png"])
    assert Image.open(out / f"{wavs[0].stem}.png").size == (64, 64)


def test_generate_api_any_length(gan_run, voxceleb1_samples):
    model = load_model(gan_run)
    wav = sorted(voxceleb1_samples.glob("*.wav"))[0]
    res = generate(model, [wav, noise("white", 0.5, np.random.default_rng(0))], use_vad=False)
    assert res.faces.shape == (2, 3, 64, 64) and res.faces.dtype == torch.float32
    assert res.faces.abs().max() <= 1 and not res.failed
    again = generate(model, [wav], use_vad=False)
    torch.testing.assert_close(again.faces[0], res.faces[1 if res.sources[0].startswith("<") else 0])


def test_evaluate_writes_named_fractions(gan_run):
    from voiceface.methods import registry
    from voiceface.methods.gan import METHOD

    if "gan" in registry():
        assert main(["evaluate", "gan", "--run", str(gan_run)]) == 0
    else:  # the lead's registry has not listed the GAN yet
        METHOD.evaluate(gan_run)
    results = json.loads((gan_run / "results.json").read_text())
    for key in RESULT_KEYS:
        assert key in results, key
        assert 0.0 <= results[key] <= 1.0, (key, results[key])
    assert results["d_speech_std"] >= 0 and results["gen_id_n"] > 0
    if (gan_run / "gender_dlib.json").is_file():   # dlib available: its metrics of generated faces too
        from voiceface.methods.gan.metrics import DLIB_KEYS
        for key in DLIB_KEYS:
            assert np.isfinite(results[key]), key
        assert "recall@1 / 5 / 10" in (gan_run / "report.md").read_text()
    assert (gan_run / "report.md").read_text().count("|") > 10
    for fig in results["figures"]:
        assert (gan_run / fig).is_file()


def test_procrustes_distance_is_similarity_invariant():
    from voiceface.methods.gan.evaluate import procrustes_distance

    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 68, 2))
    th = 0.7
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    np.testing.assert_allclose(procrustes_distance(a, 2.5 * a @ rot.T + 3.0), 0, atol=1e-6)
    mirrored = a * np.array([-1.0, 1.0])                       # a reflection is not a similarity
    assert (procrustes_distance(a, mirrored) > 0.05).all()
    assert (procrustes_distance(a, rng.standard_normal((4, 68, 2))) > 0.05).all()
