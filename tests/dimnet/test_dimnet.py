"""DIMNet: shapes, the modality switch, config presets, resume after a kill, train + evaluate end to end."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from voiceface import config as cfglib
from voiceface.errors import ConfigError
from voiceface.methods.dimnet import PRESETS, evaluate, load_voice_net, train
from voiceface.methods.dimnet.config import DIMNetConfig
from voiceface.methods.dimnet.loss import DIMNetLoss
from voiceface.methods.dimnet.model import CovariateHeads, FaceNet, VoiceNet
from voiceface.methods.dimnet.report import classical_mds

TINY = {"net": {"voice_widths": [8, 8, 8, 8], "face_widths": [4, 4, 4, 4], "face_size": 64},
        "optim": {"steps": 6, "milestones": [4]}, "data": {"voices_per_batch": 4, "faces_per_batch": 4,
                                                             "min_frames": 64, "max_frames": 96},
        "checkpoint_every": 2, "log_every": 2, "eval": {"n_max": 4}}


def tiny_config(**changes) -> DIMNetConfig:
    return cfglib.replace(cfglib.replace(PRESETS["cpu"], TINY), changes)


def test_shapes_thesis_widths():
    v, f = VoiceNet(), FaceNet()
    assert v(torch.randn(2, 64, 300)).shape == (2, 64)
    assert f(torch.randn(2, 3, 128, 128)).shape == (2, 64)
    heads = CovariateHeads({"identity": 924, "gender": 2, "nationality": 32})
    out = heads(torch.randn(5, 64))
    assert {k: tuple(t.shape) for k, t in out.items()} == {"identity": (5, 924), "gender": (5, 2),
                                                         "nationality": (5, 32)}
    assert VoiceNet(widths=(8, 8, 8, 8))(torch.randn(1, 64, 37)).shape == (1, 64)


def test_modality_switch_isolates_gradients():
    torch.manual_seed(0)
    v, f = VoiceNet((8, 8, 8, 8)), FaceNet((4, 4, 4, 4))
    heads = CovariateHeads({"identity": 5, "gender": 2}, 64)
    loss = DIMNetLoss(v, f, heads, {"identity": 1.0, "gender": 0.5})
    labels = {"identity": torch.tensor([0, 3]), "gender": torch.tensor([1, 0])}
    total, logs = loss("voice", torch.randn(2, 64, 80), labels)
    total.backward()
    assert all(p.grad is None for p in f.parameters())
    assert all(p.grad is not None for p in v.parameters()) and all(p.grad is not None for p in heads.parameters())
    assert set(logs) >= {"voice/loss", "voice/loss_identity", "voice/acc_gender"}
    v.zero_grad(set_to_none=True)
    heads.zero_grad(set_to_none=True)
    loss("face", torch.randn(2, 3, 64, 64), labels)[0].backward()
    assert all(p.grad is None for p in v.parameters()) and all(p.grad is not None for p in f.parameters())
    # the mixed minibatch equals the sum of the two phases; each net's gradient comes from its own rows only
    for m in (v, f, heads):
        m.eval()  # BN in eval mode, so both computations see the same normalisation
    xv, xf = torch.randn(3, 64, 70), torch.randn(2, 3, 64, 64)
    lv = {"identity": torch.tensor([0, 1, 2]), "gender": torch.tensor([0, 1, 1])}
    lf = {"identity": torch.tensor([4, 1]), "gender": torch.tensor([1, 0])}
    mixed, _ = loss.mixed(xv, xf, lv, lf)
    assert torch.allclose(mixed, loss("voice", xv, lv)[0] + loss("face", xf, lf)[0], atol=1e-6)
    for m in (v, f, heads):
        m.zero_grad(set_to_none=True)
    loss.mixed(xv, xf, lv, lf)[0].backward()
    g_mixed = [p.grad.clone() for p in v.parameters()]
    v.zero_grad(set_to_none=True)
    loss("voice", xv, lv)[0].backward()
    assert all(torch.allclose(a, p.grad, atol=1e-6) for a, p in zip(g_mixed, v.parameters()))


def test_config_validation():
    # the YAML presets are checked against PRESETS in tests/methods_common/test_presets.py
    cfg = cfglib.load_config(DIMNetConfig, None, ["covariates=IGN", "weights=[1, 0.5, 0.25]"])
    assert cfg.covariate_weights() == {"identity": 1.0, "gender": 0.5, "nationality": 0.25}
    with pytest.raises(ConfigError):
        DIMNetConfig(covariates="IX").covariate_weights()
    with pytest.raises(ConfigError):
        DIMNetConfig(covariates="IG", weights=(1.0,)).covariate_weights()


def test_classical_mds_recovers_planar_distances():
    rng = np.random.default_rng(0)
    x = np.c_[rng.normal(size=(20, 2)), np.zeros((20, 3))]
    y = classical_mds(x)
    d = lambda a: np.linalg.norm(a[:, None] - a[None], axis=-1)  # noqa: E731
    assert np.allclose(d(x), d(y), atol=1e-8)


def test_resume_after_kill_matches_uninterrupted(fake_world, tmp_path):
    cfg = tiny_config(covariates="IG")
    train(fake_world, tmp_path / "full", config=cfg, progress=False)
    train(fake_world, tmp_path / "killed", config=cfg, progress=False, stop_after=3)  # checkpoint at step 2
    ck = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)
    assert ck["step"] == 2
    train(fake_world, tmp_path / "killed", config=cfg, progress=False)
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == 6
    for part in ("voice", "face", "heads"):
        for k, t in a["models"][part].items():
            assert torch.equal(t, b["models"][part][k]), (part, k)


def test_train_evaluate_end_to_end(fake_world, tmp_path):
    run = train(fake_world, tmp_path / "run", config=tiny_config(covariates="IG"), progress=False)
    results = evaluate(run)
    saved = json.loads((run / "results.json").read_text())
    names = [f"match_{d}_{s}" for d in ("v2f", "f2v") for s in ("U", "G", "N", "GN")]
    names += [f"match1N_v2f_U_N{n}" for n in range(2, 5)] + ["eer_U", "eer_G", "auc_U"]
    names += [f"map_{d}_{k}" for d in ("v2f", "f2v") for k in ("id", "gender", "nationality")]
    names += ["acc_gender_voice", "acc_gender_face"]
    for k in names:
        assert k in saved, k
        if saved[k] is not None:  # null: no trial in that stratum (tiny test set)
            assert 0.0 <= saved[k] <= 1.0, k
    for k in ("match_v2f_U", "match_v2f_G", "eer_U", "auc_U", "map_v2f_id", "acc_gender_face"):
        assert saved[k] is not None and saved[k] == pytest.approx(results[k])
    assert saved["acc_nationality_voice"] is None  # N not trained
    assert saved["n_test_identities"] == 4
    report = (run / "report.md").read_text()
    assert "Table 2.4" in report and (run / "curve.png").stat().st_size > 0 and (run / "mds.png").exists()
    assert (run / "table2_4_matching.csv").read_text().startswith("method,")
    net = load_voice_net(run)
    assert net(torch.randn(2, 64, 100)).shape == (2, net.embed_dim)


def test_mean_std_over_runs(fake_world, tmp_path):
    cfg = tiny_config(covariates="G", optim={"steps": 2})
    for s in (0, 1):
        train(fake_world, tmp_path / "group" / f"seed{s}", config=cfglib.replace(cfg, {"seed": s}), progress=False)
    res = evaluate(tmp_path / "group")
    assert res["n_models"] == 2 and "match_v2f_U_std" in res
    assert (tmp_path / "group" / "seed1" / "results.json").exists()
    assert "±" in (tmp_path / "group" / "report.md").read_text()


def test_published_lists_on_items_named_like_their_media(eval_lists, tmp_path):
    """Items whose paths end like listed media are scored on the published lists; others are not."""
    from voiceface.data.lists import read_matching_list
    from voiceface.data.manifest import Item
    from voiceface.methods.dimnet.evaluate import published_list_metrics
    from voiceface.metrics import matching as M

    ml = read_matching_list(eval_lists / "matching" / "matching_v2f_U.csv")
    rows = range(5)
    vpaths = [str(tmp_path / "wav" / ml.probes[r]) for r in rows]
    fpaths = list(dict.fromkeys(str(tmp_path / "img" / p) for r in rows for p in (ml.trues[r], ml.imposters[r])))
    vitems = [Item(p, "voice", "x") for p in vpaths]
    fitems = [Item(p, "face", "x") for p in fpaths]
    rng = np.random.default_rng(0)
    ve, fe = rng.normal(size=(len(vitems), 8)), rng.normal(size=(len(fitems), 8))
    side = lambda e, n: M.Side(e, np.zeros(n), np.zeros(n), np.zeros(n))  # noqa: E731
    out = published_list_metrics(side(ve, len(vitems)), side(fe, len(fitems)), vitems, fitems,
                                 names=("matching_v2f_U", "matching_f2v_U"), lists_dir=eval_lists)
    fi = {p: i for i, p in enumerate(fpaths)}
    cos = lambda a, b: a @ b / np.linalg.norm(a) / np.linalg.norm(b)  # noqa: E731
    expect = np.mean([cos(ve[r], fe[fi[str(tmp_path / "img" / ml.trues[r])]])
                      > cos(ve[r], fe[fi[str(tmp_path / "img" / ml.imposters[r])]]) for r in rows])
    assert out["list_match_v2f_U"] == pytest.approx(expect)
    assert out["list_match_v2f_U_coverage"] == pytest.approx(5 / len(ml))
    assert "list_match_f2v_U" not in out


@pytest.mark.slow
def test_train_evaluate_on_tiny_simulated_world(tmp_path_factory):
    """The real simulated world (tiny preset, ~1 min to build): train DIMNet-IG briefly and evaluate."""
    sim = pytest.importorskip("voiceface.sim")
    world = tmp_path_factory.mktemp("tiny_world")
    sim.build_world(world, "tiny", seed=0, workers=1, progress=False)
    run = train(world, tmp_path_factory.mktemp("run") / "ig", config=tiny_config(covariates="IG"), progress=False)
    res = evaluate(run)
    assert res["n_test_identities"] == 4 and 0.0 <= res["match_v2f_U"] <= 1.0


def test_bad_inputs_raise_one_line_errors(fake_world, tmp_path):
    from voiceface.data.manifest import read_manifest, write_manifest
    from voiceface.errors import InputError

    with pytest.raises(InputError, match="no manifest"):
        train(tmp_path / "nowhere", tmp_path / "r", config=tiny_config())
    with pytest.raises(InputError, match="no DIMNet checkpoint"):
        evaluate(tmp_path)
    m = read_manifest(fake_world / "manifest.csv")
    write_manifest([it for it in m if it.split == "test"], tmp_path / "only_test.csv")
    with pytest.raises(InputError, match="no voice or face items in split"):
        train(tmp_path / "only_test.csv", tmp_path / "r2", config=tiny_config())


def test_public_embed_voices(fake_world, tmp_path, voxceleb1_samples):
    """``voiceface.embed_voices`` on real recordings: unit-norm 64-d rows; a bad file is named in the error."""
    import voiceface
    from voiceface.errors import InputError

    run = train(fake_world, tmp_path / "run", config=tiny_config(covariates="G"), progress=False)
    wavs = sorted(voxceleb1_samples.glob("*.wav"))[:2]
    emb = voiceface.embed_voices(run, wavs)
    assert emb.shape == (2, 64)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(2))
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    with pytest.raises(InputError, match="bad.wav"):
        voiceface.embed_voices(run, [bad])


def test_cli_seed_override_and_resume_with_changed_config(fake_world, tmp_path, capsys):
    """`seed=` is honoured without --seed; a resume with another config is refused in one line naming the keys;
    --force-config continues and logs it; an architecture change under --force-config is one line too."""
    import yaml

    from voiceface.cli import main
    from voiceface.engine import Run

    cfg_file = tmp_path / "tiny.yaml"
    cfg_file.write_text(yaml.safe_dump(cfglib.to_dict(tiny_config())))
    run = tmp_path / "run"
    base = ["train", "dimnet", "--data", str(fake_world), "--out", str(run), "--config", str(cfg_file)]
    assert main(base + ["seed=3"]) == 0
    assert Run.open(run).config["seed"] == 3
    capsys.readouterr()
    assert main(base + ["seed=3", "optim.steps=8", "log_every=4"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "changed config (log_every, optim.steps)" in err and "--force-config" in err
    assert main(base + ["--seed", "3", "optim.steps=8", "--force-config"]) == 0
    log = Run.open(run).read_log()
    assert [r["changed"] for r in log if r.get("event") == "force_config"] == [{"optim.steps": [6, 8]}]
    assert [r["step"] for r in log if r.get("event") == "start"] == [0, 6]
    assert main(base + ["seed=3", "optim.steps=8", "net.embed_dim=16", "--force-config"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "does not fit the configured architecture" in err


def _side(e):
    from voiceface.metrics import matching as M

    n = len(e)
    return M.Side(e, np.zeros(n), np.zeros(n), np.zeros(n))


def test_published_lists_match_the_corpus_layouts(eval_lists, tmp_path, monkeypatch, caplog):
    """VoxCeleb1 release layout (idXXXXX/VIDEO/NNNNN.wav, names from the items' vox_id) and aligned .png crops of
    the listed .jpg frames are matched, through $VOICEFACE_LISTS; a VoxCeleb-like manifest that matches nothing
    gets a warning naming the lists instead of silence."""
    from voiceface.data.lists import read_matching_list, read_verification_list
    from voiceface.data.manifest import Item
    from voiceface.methods.dimnet.evaluate import published_list_metrics

    ml = read_matching_list(eval_lists / "matching" / "matching_v2f_U.csv")
    vl = read_verification_list(eval_lists / "veriflist" / "veriflist_test_random_unseenunheard.txt")
    rows = [r for r in range(50) if ml.probes[r].startswith("id10002/")][:4]
    voices = [(tmp_path / "vox1" / "wav" / ml.probes[r]) for r in rows]
    faces = [tmp_path / "crops" / p.replace(".jpg", ".png") for r in rows for p in (ml.trues[r], ml.imposters[r])]
    pairs = [r for r in range(len(vl)) if vl.voice_paths[r].startswith("A.R._Rahman/")][:3]
    for r in pairs:                                        # NAME/VIDEO_0000001.wav -> id10002/VIDEO/00001.wav
        video, seg = vl.voice_paths[r].split("/", 1)[1].rsplit("_", 1)
        voices.append(tmp_path / "vox1" / "wav" / "id10002" / video / f"{int(seg[:-4]):05d}.wav")
        faces.append(tmp_path / "crops" / vl.face_paths[r].replace(".jpg", ".png"))
    vitems = [Item(str(p), "voice", "A.R._Rahman", extra={"vox_id": "id10002"}) for p in dict.fromkeys(voices)]
    fitems = [Item(str(p), "face", p.relative_to(tmp_path / "crops").parts[0]) for p in dict.fromkeys(faces)]
    rng = np.random.default_rng(0)
    ve, fe = _side(rng.normal(size=(len(vitems), 8))), _side(rng.normal(size=(len(fitems), 8)))
    monkeypatch.setenv("VOICEFACE_LISTS", str(eval_lists))
    out = published_list_metrics(ve, fe, vitems, fitems, names=("matching_v2f_U", "verif_random_unseenunheard"),
                                 lists_dir=None)
    assert out["list_match_v2f_U_coverage"] == pytest.approx(len(rows) / len(ml))
    assert out["list_random_unseenunheard_coverage"] == pytest.approx(len(pairs) / len(vl))
    # the same corpus in a layout no list names (flat files): a warning line, no metrics
    flat_v = [Item(str(tmp_path / "flat" / f"{k}.wav"), "voice", "A.R._Rahman") for k in range(3)]
    flat_f = [Item(str(tmp_path / "flat" / f"{k}.png"), "face", "A.R._Rahman") for k in range(3)]
    with caplog.at_level("WARNING"):
        assert published_list_metrics(ve, fe, flat_v, flat_f, names=("matching_v2f_U",)) == {}
    assert any("matching_v2f_U" in r.message and "none of their trials" in r.message for r in caplog.records)
    monkeypatch.setenv("VOICEFACE_LISTS", str(tmp_path / "missing"))
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert published_list_metrics(ve, fe, vitems, fitems) == {}
    assert any("not found" in r.message for r in caplog.records)
