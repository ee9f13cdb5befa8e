"""``voiceface face3d show`` end to end (small renders)."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image

from voiceface.cli import main


def test_face3d_show_builtin(tmp_path):
    out = tmp_path / "show"
    assert main(["face3d", "show", "--model", "builtin", "--out", str(out), "--components", "1", "--size", "64"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["vertices"] > 3000 and s["identity_components"] >= 40 and s["am_count"] == 94
    assert len(s["landmarks68"]) == 68 and s["expression_components"] >= 3 and s["triangles"] > 0
    for name in ("mean_front", "mean_profile", "pc1_minus3sd_front", "pc1_plus3sd_profile"):
        img = np.asarray(Image.open(out / f"{name}.png"))
        assert img.shape == (64, 64, 3)
        assert (img < 250).any(axis=-1).mean() > 0.2                 # a face covers a good part of the image
    assert not np.array_equal(np.asarray(Image.open(out / "pc1_minus3sd_front.png")),
                              np.asarray(Image.open(out / "pc1_plus3sd_front.png")))
    assert (out / "mean.obj").stat().st_size > 100_000


def test_face3d_show_missing_model(tmp_path, capsys):
    assert main(["face3d", "show", "--model", str(tmp_path / "none.h5"), "--out", str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err
