"""The real-data path: a CSV of paired recordings and landmark files -> train -> evaluate -> `voiceface shape`."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from voiceface.cli import main as cli_main
from voiceface.methods.sfv.evaluate import evaluate
from voiceface.methods.sfv.train import train


@pytest.fixture(scope="module")
def fake_pairs(tmp_path_factory):
    root = tmp_path_factory.mktemp("sfv_pairs")
    rng = np.random.default_rng(0)
    template = rng.normal(0, 30, (65, 3))
    rows = ["voice,mesh,identity,gender"]
    for i in range(24):
        g = "m" if i % 2 else "f"
        t = np.arange(16000) / 16000
        f0 = (120 if g == "m" else 210) * (1 + 0.05 * rng.normal())
        wav = 0.3 * np.sin(2 * np.pi * f0 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + rng.normal(0, 0.02, 16000)
        sf.write(root / f"v{i}.wav", wav.astype(np.float32), 16000)
        np.save(root / f"s{i}.npy", template + rng.normal(0, 1.5, (65, 3)))
        rows.append(f"v{i}.wav,s{i}.npy,p{i},{g}")
    (root / "pairs.csv").write_text("\n".join(rows) + "\n")
    return root


def test_csv_train_evaluate_shape(fake_pairs, tmp_path, tiny_overrides, capsys):
    run = train(fake_pairs / "pairs.csv", tmp_path / "run", overrides=tiny_overrides, seed=0, progress=False)
    res = evaluate(run)
    assert np.isnan(res["sfv_recall"])               # real data: no ground truth of the link
    assert res["sfv_vertex_error"] > 0
    voices = [str(fake_pairs / "v1.wav"), str(fake_pairs / "v2.wav"), str(fake_pairs / "missing.wav")]
    code = cli_main(["shape", *voices, "--run", str(run), "-o", str(tmp_path / "out"), "--gender", "m"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "missing.wav: skipped" in printed
    info = json.loads((tmp_path / "out" / "v1.json").read_text())
    assert len(info["ams"]) == 94 and {"prediction", "uncertainty_var", "selected"} <= set(info["ams"][0])
    assert all(np.isfinite(a["prediction"]) and a["uncertainty_var"] > 0 for a in info["ams"])
    obj = (tmp_path / "out" / "v1.obj").read_text().splitlines()
    assert sum(line.startswith("v ") for line in obj) == 65
    assert (tmp_path / "out" / "v2.png").stat().st_size > 1000
