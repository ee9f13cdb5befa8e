"""CEST training (engine.fit, resume), evaluation (results.json names) and reconstruction of a real photo."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from voiceface import config as cfglib
from voiceface.methods.cest.config import PRESETS
from voiceface.methods.cest.data import load_sim_clips, sample_batch
from voiceface.methods.cest.evaluate import RESULT_NAMES, evaluate
from voiceface.methods.cest.loss import CESTLoss
from voiceface.methods.cest.model import build_model
from voiceface.methods.cest.train import load_trained, train


def tiny_cfg(**changes):
    base = {"net": {"image_size": 64, "width_mult": 0.125}, "data": {"clips_per_batch": 2, "frames_per_clip": 2,
            "max_test_frames": 4}, "optim": {"steps": 4}, "log_every": 1, "checkpoint_every": 2,
            "eval": {"fit_steps": 2, "fit_frames": 2, "icp_iterations": 3}}
    return cfglib.replace(cfglib.replace(PRESETS["cpu"], base), changes)


def test_loss_decreases_on_fixed_batch(clip_world):
    torch.manual_seed(0)
    cfg = tiny_cfg()
    model = build_model(cfg.net)
    bank = load_sim_clips(clip_world, ("train",))
    idx, partners = sample_batch(bank, np.random.default_rng(0), 2, 2)
    batch = bank.tensors(idx)
    batch["partners"] = torch.from_numpy(partners)
    loss = CESTLoss(cfg.loss)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    values = [loss.step(model, opt, batch)["loss/total"] for _ in range(8)]
    assert values[-1] < 0.8 * values[0], values


def test_kp_consistency_swaps_identity_between_partner_frames(clip_world):
    """The cross-frame landmark term (``loss.kp_consistency``) projects each frame with its partner's identity
    coefficients: with itself as the partner it is the frame's own shape; otherwise it differs, adds its weighted
    value to the total and sends gradient to the partner's identity coefficients. Off (0): no term."""
    from voiceface.face3d import geometry
    from voiceface.methods.cest.loss import cross_frame_landmarks

    torch.manual_seed(0)
    cfg = tiny_cfg(loss={"kp_consistency": 0.5})
    model = build_model(cfg.net)
    bank = load_sim_clips(clip_world, ("train",))
    idx, partners = sample_batch(bank, np.random.default_rng(0), 2, 2)
    batch = bank.tensors(idx)
    batch["partners"] = torch.from_numpy(partners)
    out = model(batch["images"])
    out["coeffs"] = out["coeffs"] + 0.5 * torch.randn_like(out["coeffs"])     # frames with distinct identities
    out["coeffs"].retain_grad()
    own = cross_frame_landmarks(model, out, torch.arange(4)[:, None])
    assert torch.allclose(own, geometry.project(model.shape_from_coeffs(out["coeffs"]), out["viewpoint"]), atol=1e-4)
    other = cross_frame_landmarks(model, out, batch["partners"])
    assert not torch.allclose(other, own, atol=1e-3)
    other[1].sum().backward()                              # frame 1 uses frame partners[1]'s identity
    g = out["coeffs"].grad
    j = int(partners[1, 0])
    assert j != 1 and g[j, :model.n_id].abs().sum() > 0 and g[1, :model.n_id].abs().sum() == 0
    assert g[1, model.n_id:].abs().sum() > 0                # its own expression coefficients
    on = CESTLoss(cfg.loss)(model, batch)
    assert on["landmark_consistency"] > 0
    assert torch.allclose(on["total"], on["photometric"] + on["landmark"] + 0.1 * on["regulariser"]
                          + 0.5 * on["landmark_consistency"])
    assert CESTLoss(PRESETS["cpu"].loss)(model, batch)["landmark_consistency"] == 0


@pytest.fixture(scope="module")
def trained_run(clip_world, tmp_path_factory):
    run = tmp_path_factory.mktemp("cest_run") / "run"
    train(clip_world, run, config=tiny_cfg(), progress=False)
    return run


@pytest.fixture(scope="module")
def iest_run(clip_world, tmp_path_factory):
    """A tiny IEST run (``net.conditional=false``, ablation (b)) on the same clips, as the IEST baseline."""
    run = tmp_path_factory.mktemp("iest_run") / "run"
    train(clip_world, run, config=tiny_cfg(net={"conditional": False}), progress=False)
    return run


def test_resume_equals_uninterrupted(clip_world, trained_run, tmp_path):
    run = tmp_path / "killed"
    train(clip_world, run, config=tiny_cfg(), progress=False, stop_after=3)     # checkpoint at step 2, killed at 3
    train(clip_world, run, config=tiny_cfg(), progress=False)                   # resumes from step 2
    a, _ = load_trained(trained_run)
    b, _ = load_trained(run)
    for (k, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.allclose(p, q, atol=1e-5), k


def test_cosine_schedule_decays_and_resumes(clip_world, tmp_path):
    """optim.schedule=cosine: the lr falls to 0 at optim.steps, and a killed run resumes the schedule where it was
    (same weights as an uninterrupted run; the two differ from a constant-lr run)."""
    from voiceface.errors import ConfigError
    from voiceface.methods.cest.train import build_parts

    cfg = tiny_cfg(optim={"schedule": "cosine"})
    parts = build_parts(cfg, "cpu")
    lrs = []
    for _ in range(cfg.optim.steps):
        parts.optimizers["adam"].step()
        parts.schedulers["lr"].step()
        lrs.append(parts.optimizers["adam"].param_groups[0]["lr"])
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12) and np.all(np.diff(lrs) < 0)
    with pytest.raises(ConfigError, match="optim.schedule"):
        build_parts(tiny_cfg(optim={"schedule": "step"}), "cpu")
    whole, killed, const = tmp_path / "whole", tmp_path / "killed", tmp_path / "const"
    train(clip_world, whole, config=cfg, progress=False)
    train(clip_world, killed, config=cfg, progress=False, stop_after=3)
    train(clip_world, killed, config=cfg, progress=False)
    train(clip_world, const, config=tiny_cfg(), progress=False)
    a, b, c = (load_trained(r)[0].state_dict() for r in (whole, killed, const))
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    assert not all(torch.allclose(a[k], c[k], atol=1e-7) for k in a if a[k].is_floating_point())


def test_results_json_names(clip_world, trained_run, iest_run):
    res = evaluate(trained_run, clip_world, iest_run=str(iest_run))
    saved = json.loads((trained_run / "results.json").read_text())
    for name in RESULT_NAMES:
        assert name in saved and saved[name] is not None and np.isfinite(saved[name]), name
    alone = evaluate(iest_run, clip_world, fit_baseline=False)       # the baseline columns are the IEST run's own
    assert saved["nme_iest"] == pytest.approx(alone["nme"]) and saved["nme_iest"] != pytest.approx(res["nme"])
    assert saved["photometric_error_iest"] == pytest.approx(alone["photometric_error"])
    assert 0 <= saved["photometric_error"] <= 255 and saved["pose_error_deg"] >= 0
    assert (trained_run / "report.md").is_file() and (trained_run / "ced.csv").is_file()


def test_reconstruct_orl_image(trained_run, orl_faces, tmp_path):
    pytest.importorskip("dlib")
    from voiceface.methods.cest.reconstruct import reconstruct_images

    img = sorted(orl_faces.rglob("*.pgm"))[0]
    res = reconstruct_images(trained_run, [img, tmp_path / "missing.png"], tmp_path / "out")
    assert "error" in res[1]                                       # a bad file is reported and skipped
    r = res[0]
    assert "error" not in r, r
    assert r["greyscale"] and 0 < r["photometric_error"] < 255 and r["mask_pixels"] > 50
    stem = img.stem
    for suffix in (".obj", "_overlay.png", "_uv.png", "_shading.png", "_relit.png", ".json"):
        assert (tmp_path / "out" / f"{stem}{suffix}").is_file(), suffix
    import trimesh
    mesh = trimesh.load(tmp_path / "out" / f"{stem}.obj", process=False)
    assert mesh.visual.vertex_colors.shape[0] == len(mesh.vertices)


def test_bf16_steps_on_cpu_give_finite_losses(clip_world, tmp_path):
    """precision=bf16 (autocast on CPU): a few steps train, losses are finite, the run log records bf16."""
    run = train(clip_world, tmp_path / "bf16", config=tiny_cfg(precision="bf16"), progress=False)
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["precision"] for r in rows if r.get("event") == "start"] == ["bf16"]
    losses = [r["loss/total"] for r in rows if "loss/total" in r]
    assert len(losses) == 4 and all(v is not None and np.isfinite(v) for v in losses)


def test_demo_landmark_rows(clip_world, tmp_path, monkeypatch):
    """The demo's landmark-weighted rows: the preset and its IEST twin trained, CEST evaluated against IEST and the
    mean shape in one table, the ratio to the mean shape's error in the metrics."""
    from voiceface import config as cfglib
    from voiceface.methods import cest
    from voiceface.methods.cest import config as cest_config

    small = {name: cfglib.replace(cest_config.PRESETS[f"cpu_kp_long{suffix}"], {"optim": {"steps": 3}})
             for name, suffix in (("tiny_kp", ""), ("tiny_kp_b_iest", "_b_iest"))}
    monkeypatch.setattr(cest_config, "PRESETS", {**cest_config.PRESETS, **small})
    monkeypatch.setattr(cest, "PRESETS", cest_config.PRESETS)
    md, metrics = cest._landmark_rows(clip_world, tmp_path, 0, "tiny_kp", False)
    assert "CEST `tiny_kp`" in md and "IEST `tiny_kp_b_iest`" in md and "mean shape" in md
    assert (tmp_path / "cest_tiny_kp").is_dir() and (tmp_path / "cest_tiny_kp_b_iest").is_dir()
    assert metrics["cest_kp/shape_ratio_mean_shape"] > 0
    assert metrics["cest_kp/shape_error_iest"] != metrics["cest_kp/shape_error"]


def test_cli_max_test_frames(clip_world, trained_run, tmp_path, capsys):
    """``evaluate cest --max-test-frames N`` scores N evenly spread test frames without touching the run's config;
    the option is refused for other methods and below 1."""
    from voiceface.cli import main

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    config = (run / "config.json").read_text()
    assert main(["evaluate", "cest", "--run", str(run), "--data", str(clip_world), "--max-test-frames", "2"]) == 0
    assert json.loads((run / "results.json").read_text())["n_test_frames"] == 2
    assert (run / "config.json").read_text() == config
    assert main(["evaluate", "dimnet", "--run", str(run), "--max-test-frames", "2"]) == 2
    assert "--max-test-frames applies to cest only" in capsys.readouterr().err
    assert main(["evaluate", "cest", "--run", str(run), "--data", str(clip_world), "--max-test-frames", "0"]) == 2
