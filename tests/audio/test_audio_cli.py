"""``voiceface features`` end to end."""
from __future__ import annotations

import shutil

import numpy as np

from voiceface.cli import main


def test_features_cli_matches_reference_and_reports_failures(tmp_path, voxceleb1_samples, capsys):
    folder = tmp_path / "folder" / "id1"
    folder.mkdir(parents=True)
    shutil.copy(voxceleb1_samples / "Witney_Carson.wav", folder / "00002.wav")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"junk" * 100)
    out = tmp_path / "out"
    rc = main(["features", str(voxceleb1_samples / "Suraj_Sharma.wav"), str(tmp_path / "folder"), str(bad),
               str(tmp_path / "missing.m4a"), "--out", str(out), "--workers", "2", "--quiet"])
    captured = capsys.readouterr()
    assert rc == 1
    assert "bad.wav" in captured.err and "missing.m4a: file not found" in captured.err
    ref = np.load(voxceleb1_samples / "reference_features" / "Suraj_Sharma.logmel_cmvn.npy")
    got = np.load(out / "Suraj_Sharma.npy")
    assert got.shape == ref.shape and np.abs(got - ref).max() < 1e-3
    ref2 = np.load(voxceleb1_samples / "reference_features" / "Witney_Carson.logmel_cmvn.npy")
    assert np.abs(np.load(out / "id1" / "00002.npy") - ref2).max() < 1e-3
    assert sorted(p.name for p in out.rglob("*.npy")) == ["00002.npy", "Suraj_Sharma.npy"]


def test_features_cli_all_good_exits_zero(tmp_path, voxceleb1_samples, capsys):
    rc = main(["features", str(voxceleb1_samples / "Alan_Tudyk.wav"), "--out", str(tmp_path), "--workers", "1",
               "--quiet", "--raw"])
    assert rc == 0
    ref = np.load(voxceleb1_samples / "reference_features" / "Alan_Tudyk.logmel.npy")
    assert np.abs(np.load(tmp_path / "Alan_Tudyk.npy") - ref).max() < 1e-3
    assert "wrote 1 feature file(s)" in capsys.readouterr().out


def test_features_cli_standard_option(tmp_path, voxceleb1_samples):
    wav = str(voxceleb1_samples / "Eoin_Macken.wav")
    assert main(["features", wav, "--out", str(tmp_path / "a"), "--workers", "1", "--quiet"]) == 0
    assert main(["features", wav, "--out", str(tmp_path / "b"), "--workers", "1", "--quiet", "--standard"]) == 0
    compat, std = np.load(tmp_path / "a" / "Eoin_Macken.npy"), np.load(tmp_path / "b" / "Eoin_Macken.npy")
    assert compat.shape == std.shape and np.abs(compat - std).max() > 0.01
