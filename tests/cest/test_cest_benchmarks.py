"""CEST on AFLW2000-3D and MICC through the readers, on small trees laid out like those datasets (frames of the
tiny clip world as photos; the people's true neutral meshes as scans)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from voiceface.face3d import builtin_model
from voiceface.face3d.meshio import save_mesh
from voiceface.methods.cest.benchmarks import (crop_records, evaluate_micc, landmark_nme, scan_nme, to_image)
from voiceface.methods.cest.data import load_sim_clips, read_300wlp
from voiceface.methods.cest.evaluate import evaluate
from voiceface.methods.cest.train import train

from test_cest_frames import LookupDetector
from test_cest_train import tiny_cfg

OFFSET = np.array([23.0, 11.0])                        # where the 64 px frame sits in the written photo


def _photo(frame: np.ndarray) -> np.ndarray:
    canvas = np.full((90, 110, 3), 30, np.uint8)
    canvas[11:75, 23:87] = frame
    return canvas


@pytest.fixture(scope="module")
def aflw_tree(clip_world, tmp_path_factory):
    """AFLW2000/image000NN.jpg + .mat (pt3d_68 (3, 68), Pose_Para (1, 7)) for every frame of the world, yaw
    spread over the three bins; plus an image without .mat and a broken .mat (skipped by the reader)."""
    root = tmp_path_factory.mktemp("AFLW2000")
    bank = load_sim_clips(clip_world, ("train", "test"))
    yaws = np.radians([10.0, -40.0, 75.0])
    for i in range(len(bank)):
        name = f"image{i:05d}"
        Image.fromarray(_photo(bank.frames[i])).save(root / f"{name}.jpg", quality=95)
        lm = bank.landmarks[i].astype(np.float64) - 0.5 + OFFSET
        pt3d = np.concatenate([lm.T, np.linspace(-5, 5, 68)[None]])
        pose = np.array([[0.05, yaws[i % 3], 0.0, 0.0, 0.0, 0.0, 1.0]])
        scipy.io.savemat(root / f"{name}.mat", {"pt3d_68": pt3d, "Pose_Para": pose,
                                                "Shape_Para": np.zeros((199, 1))})
    Image.fromarray(_photo(bank.frames[0])).save(root / "image99998.jpg")
    Image.fromarray(_photo(bank.frames[0])).save(root / "image99999.jpg")
    (root / "image99999.mat").write_bytes(b"not a mat file")
    return root, len(bank)


@pytest.fixture(scope="module")
def micc_tree(clip_world, tmp_path_factory):
    """MICC-like: subject_NN/Model/frontal1/obj/<scan>.obj (+ a texture .bmp beside it) = the test person's true
    neutral mesh, rigidly moved; subject_NN/Video/frames/*.jpg = that person's frames."""
    root = tmp_path_factory.mktemp("MICC")
    bank = load_sim_clips(clip_world, ("test",))
    model = builtin_model()
    table = {}
    th = 0.1
    rot = np.array([[np.cos(th), 0, np.sin(th)], [0, 1, 0], [-np.sin(th), 0, np.cos(th)]])
    for p, person in enumerate(bank.person_names):
        frames = np.flatnonzero(bank.person == p)
        subject = root / f"subject_{p + 1:02d}"
        obj = subject / "Model" / "frontal1" / "obj"
        obj.mkdir(parents=True)
        with torch.no_grad():
            neutral = model.shape(torch.as_tensor(bank.truth["coeffs"][frames[:1]]))[0].numpy()
        save_mesh(obj / "110920150452.obj", neutral @ rot.T + np.array([3.0, -40.0, 500.0]),
                  model.triangles.numpy())
        Image.fromarray(bank.frames[frames[0]]).save(obj / "110920150452.bmp")   # a texture, not a photo
        video = subject / "Video" / "frames"
        video.mkdir(parents=True)
        for k, i in enumerate(frames):
            Image.fromarray(_photo(bank.frames[i])).save(video / f"{person}_{k:03d}.jpg", quality=95)
            table[f"{person}_{k:03d}.jpg"] = bank.landmarks[i].astype(np.float64) - 0.5 + OFFSET
    return root, LookupDetector(table), bank


@pytest.fixture(scope="module")
def tiny_run(clip_world, tmp_path_factory):
    run = tmp_path_factory.mktemp("cest_bench") / "run"
    train(clip_world, run, config=tiny_cfg(), progress=False)
    return run


def test_crops_map_back_to_the_photo(aflw_tree):
    root, n = aflw_tree
    recs = read_300wlp(root)
    assert len(recs) == n                                              # no .mat / broken .mat skipped
    bank, mats = crop_records(recs, 64, 0.27)
    true = np.stack([r["landmarks"] for r in recs])
    back = to_image(bank.landmarks, mats)                              # crop landmarks -> photo pixels
    assert np.abs(back - true).max() < 1e-3
    assert landmark_nme(back, true).max() < 1e-3
    shifted = true + np.array([3.0, 4.0])                              # 5 px off everywhere
    wh = true.max(1) - true.min(1)
    assert np.allclose(landmark_nme(shifted, true), 500.0 / np.sqrt(wh[:, 0] * wh[:, 1]))


def test_cli_evaluates_on_aflw2000(aflw_tree, tiny_run):
    root, n = aflw_tree
    out = subprocess.run([sys.executable, "-m", "voiceface.cli", "evaluate", "cest", "--run", str(tiny_run),
                          "--aflw2000", str(root)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads((tiny_run / "results.json").read_text())
    assert res["aflw2000/n_images"] == n
    assert sum(res[f"aflw2000/n_yaw_{a}_{b}"] for a, b in ((0, 30), (30, 60), (60, 90))) == n
    for k in ("nme", "nme_balanced", "mean_face_nme", "nme_yaw_60_90"):
        assert np.isfinite(res[f"aflw2000/{k}"]) and res[f"aflw2000/{k}"] > 0, k
    assert (tiny_run / "aflw2000_ced.csv").is_file() and (tiny_run / "report_benchmarks.md").is_file()
    assert "aflw2000/nme" in out.stdout
    from argparse import Namespace

    from voiceface.commands import evaluate as command
    from voiceface.errors import ConfigError

    with pytest.raises(ConfigError, match="cest only"):
        command.run(Namespace(method="dimnet", run=str(tiny_run), data=None, lists=None, aflw2000=str(root),
                              micc=None))


def test_scan_nme_scores_the_true_mesh_near_zero(micc_tree):
    root, _, bank = micc_tree
    from voiceface.methods.cest.data import read_micc

    scans = read_micc(root)
    assert [s["identity"] for s in scans] == ["subject_01", "subject_02"]
    model = builtin_model()
    lm = model.landmarks68.numpy()
    for p, s in enumerate(scans):
        with torch.no_grad():
            true = model.shape(torch.as_tensor(bank.truth["coeffs"][bank.person == p][:1]))[0].numpy()
        own = scan_nme(true, s["vertices"], lm, int(lm[30]), 95.0)
        mean = scan_nme(model.mean.numpy(), s["vertices"], lm, int(lm[30]), 95.0)
        assert own < 0.5 and mean > 4 * own + 1.0, (own, mean)


def test_evaluate_on_micc(micc_tree, tiny_run):
    root, det, bank = micc_tree
    calls = det.calls
    res = evaluate(tiny_run, micc=root, detector=det)
    assert det.calls - calls == len(bank)                         # every video frame, never the texture
    assert res["micc/n_images"] == len(bank) and res["micc/n_subjects"] == 2
    assert np.isfinite(res["micc/nme"]) and np.isfinite(res["micc/nme_mean_shape"])
    saved = json.loads((tiny_run / "results.json").read_text())
    assert saved["micc/nme"] == pytest.approx(res["micc/nme"])
    per = json.loads((tiny_run / "micc.json").read_text())["per_image"]
    assert len(per) == len(bank) and {r["subject"] for r in per} == {"subject_01", "subject_02"}
