"""Data handling, the Eq. 5.7 fit, a tiny end-to-end train / evaluate, and resuming."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from voiceface.engine import load_checkpoint
from voiceface.methods.sfv.data import crop_batch, from_csv, make_splits, pad_rows, segments, synthetic
from voiceface.methods.sfv.evaluate import evaluate, fit_shapes
from voiceface.methods.sfv.train import eigenfaces, train


def test_splits_are_disjoint_7111():
    s = make_splits(np.arange(100), repeats=5, seed=0)
    assert len(s.test) == 10 and s.train.shape == (5, 70) and s.val1.shape == (5, 10) and s.val2.shape == (5, 10)
    for r in range(5):
        parts = [set(s.test), set(s.train[r]), set(s.val1[r]), set(s.val2[r])]
        assert sum(map(len, parts)) == 100 and len(set().union(*parts)) == 100
    assert not np.array_equal(s.train[0], s.train[1])


def test_crops_and_segments_read_the_right_frames():
    d = synthetic(n_people=20, rec_s=1.0, recs=2, n_mels=8, seed=0)
    table, lens = pad_rows([np.arange(10), np.arange(10, 20)])
    x, people = crop_batch(d, table, lens, 5, 30, np.random.default_rng(0))
    assert x.shape == (5, 2, 8, 30) and (people[:, 0] < 10).all() and (people[:, 1] >= 10).all()
    # every crop is a contiguous run of its person's frames
    rec = np.nonzero(d.rec_person == people[0, 1])[0]
    frames = np.concatenate([d.voices.features(r) for r in rec])
    first = x[0, 1, :, 0]
    assert (np.abs(frames - first).sum(1) < 1e-6).any()
    xs, owner = segments(d, 40)
    assert xs.shape == (len(owner), 8, 40) and np.array_equal(np.bincount(owner), np.full(20, 4))


def test_eq_5_7_fit_recovers_measured_shape():
    d = synthetic(n_people=200, n_ams=6, n_linked=2, seed=1)
    mean, basis, scale = eigenfaces(d.vertices[:150], 8)
    target = d.ams[150:160]
    sd = d.ams[:150].std(0)
    with torch.no_grad():
        fitted = fit_shapes(mean, basis, scale, d.measure, target, sd, np.ones(6), 1e-3, 300, 0.05)
        got = d.measure(torch.from_numpy(fitted)).numpy()
    mean_ams = d.measure(torch.from_numpy(mean.reshape(1, -1, 3))).numpy()
    assert np.abs(got - target).mean() < 0.2 * np.abs(mean_ams - target).mean()
    # no selected AM: Eq. 5.7's minimiser is beta = 0, the mean shape
    zero = fit_shapes(mean, basis, scale, d.measure, target, sd, np.zeros(6), 0.1, 10, 0.05)
    assert np.allclose(zero, mean.reshape(1, -1, 3))


def test_csv_adapter_on_fake_landmark_set(tmp_path):
    rng = np.random.default_rng(0)
    from voiceface.face3d.anthropometry import NUM_AMS
    rows = ["voice,mesh,identity,gender"]
    for i in range(4):
        wav = tmp_path / f"v{i}.wav"
        sf.write(wav, (rng.normal(0, 0.1, 16000)).astype(np.float32), 16000)
        lmk = rng.normal(0, 30, (65, 3))
        np.save(tmp_path / f"s{i}.npy", lmk)
        rows.append(f"v{i}.wav,s{i}.npy,p{i},{'m' if i % 2 else 'f'}")
    rows.append("missing.wav,s0.npy,p0,f")      # a bad row is logged and skipped
    (tmp_path / "pairs.csv").write_text("\n".join(rows) + "\n")
    d = from_csv(tmp_path / "pairs.csv")
    assert d.ams.shape == (4, NUM_AMS) and d.vertices.shape == (4, 65, 3) and len(d.rec_len) == 4
    assert d.voices.packed.shape[1] == 64 and list(d.gender) == ["f", "m", "f", "m"]


def test_tiny_end_to_end_and_resume(tmp_path, tiny_overrides, synth_source):
    full = train(synth_source, tmp_path / "full", overrides=tiny_overrides, seed=3, progress=False)
    part = tmp_path / "part"
    train(synth_source, part, overrides=tiny_overrides, seed=3, progress=False, stop_after=8)
    assert load_checkpoint(part / "checkpoint.pt")["step"] == 8
    train(synth_source, part, overrides=tiny_overrides, seed=3, progress=False)
    a, b = load_checkpoint(full / "checkpoint.pt"), load_checkpoint(part / "checkpoint.pt")
    assert a["step"] == b["step"] == 16
    for name in ("model", "best", "v2v"):
        for k, v in a["models"][name].items():
            assert torch.allclose(v.float(), b["models"][name][k].float(), atol=1e-5), (name, k)
    res = evaluate(full)
    saved = json.loads((full / "results.json").read_text())
    for key in ("sfv_selected_male", "sfv_selected_female", "sfv_recall", "sfv_false_positive_rate",
                "sfv_vertex_error", "sfv_vertex_error_mean_shape", "sfv_vertex_error_nose",
                "sfv_vertex_error_nose_mean_shape", "v2v_gain_mixed", "v2v_gain_within_gender"):
        assert key in saved
    assert res["sfv_vertex_error"] > 0 and res["sfv_vertex_error_mean_shape"] > 0
    assert 0 <= res["sfv_selected_male"] <= 12
    assert (full / "report.md").read_text().startswith("# SfV")
    assert (full / "figures" / "am_errors.png").is_file() and (full / "figures" / "error_maps.png").is_file()


@pytest.mark.parametrize("options", [["model.per_am=true"], ["model.uncertainty=false"],
                                     ["data.feature_norm=utterance"]])
def test_options_train_and_evaluate(tmp_path, tiny_overrides, synth_source, options):
    over = [*tiny_overrides, "train.steps=8", *options]
    run = train(synth_source, tmp_path / "run", overrides=over, seed=0, progress=False)
    res = evaluate(run, figures=False)
    assert np.isfinite(res["sfv_vertex_error"]) and 0 <= res["sfv_selected_female"] <= 12


def test_csv_adapter_reads_obj_meshes_in_model_topology(tmp_path):
    from voiceface.face3d import builtin_model
    from voiceface.face3d.anthropometry import am_from_shape

    model = builtin_model()
    rng = np.random.default_rng(1)
    shapes = model.shape(torch.as_tensor(rng.normal(0, 1, (2, model.num_identity)), dtype=torch.float32))
    rows = ["voice,mesh,identity,gender"]
    for i in range(2):
        sf.write(tmp_path / f"v{i}.wav", rng.normal(0, 0.1, 8000).astype(np.float32), 16000)
        lines = [f"v {x} {y} {z}" for x, y, z in shapes[i].tolist()]
        lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in model.triangles[:10].tolist()]
        (tmp_path / f"m{i}.obj").write_text("\n".join(lines) + "\n")
        rows.append(f"v{i}.wav,m{i}.obj,p{i},m")
    (tmp_path / "pairs.csv").write_text("\n".join(rows) + "\n")
    d = from_csv(tmp_path / "pairs.csv")
    want = am_from_shape(model, shapes.double()).numpy()
    assert np.allclose(d.ams, want, rtol=1e-4, atol=1e-3) and d.vertex_regions["nose"].sum() > 0


def test_predict_fuses_exactly_each_persons_segments():
    """Eq. 5.3 over whole recordings: people with different numbers of segments are fused over their own segments
    only (no padding counted), for every stacked network."""
    from voiceface.methods.sfv.loss import fuse_segments
    from voiceface.methods.sfv.model import AMNet
    from voiceface.methods.sfv.select import predict

    d = synthetic(n_people=6, n_ams=3, rec_s=1.0, recs=2, n_mels=8, seed=0)
    d.voices.lengths = d.voices.lengths.copy()
    d.voices.lengths[0] = 30                                   # person 0: a short first recording -> fewer segments
    torch.manual_seed(0)
    net = AMNet(2, 3, n_mels=8, channels=(4, 4, 4, 4)).eval()
    table = np.array([[0, 1, 2], [3, 4, 5]])
    m_hat, w_hat = predict(net, d, table, seg_frames=40, max_frames=None, per_am=False)
    xs, owner = segments(d, 40)
    for m in range(2):
        for j, p in enumerate(table[m]):
            x = torch.from_numpy(xs[owner == p])[:, None].expand(-1, 2, -1, -1)
            with torch.no_grad():
                mu, var = net(x.contiguous())
            want_m, want_w = fuse_segments(mu[:, m], var[:, m])
            assert np.allclose(m_hat[m, j], want_m.numpy(), atol=1e-5)
            assert np.allclose(w_hat[m, j], want_w.numpy(), atol=1e-5)


def test_out_of_bag_predictions_and_linked_correlation(tmp_path, tiny_overrides, synth_source):
    """Out-of-bag AMs come only from networks that did not train on the person, of the person's gender; the
    linked-AM correlation is 1 for perfect predictions and ~0 for shuffled ones."""
    from voiceface.methods.sfv.evaluate import linked_am_correlation, load_run, out_of_bag_ams

    run = train(synth_source, tmp_path / "run", overrides=[*tiny_overrides, "train.steps=8"], seed=0,
                progress=False)
    lo = load_run(run)
    pred, covered = out_of_bag_ams(lo)
    d, lay = lo.data, lo.layout
    assert pred.shape == d.ams.shape and np.isfinite(pred[covered]).all() and np.isnan(pred[~covered]).all()
    for g in lay.genders:
        trained_on = set(np.concatenate([lay.splits[g].train[r] for r in range(len(lay.nets_of(g)))]).tolist())
        every = set.intersection(*[set(lay.splits[g].train[r].tolist()) for r in range(len(lay.nets_of(g)))])
        mine = set(np.nonzero(d.gender == g)[0].tolist())
        assert {p for p in mine if not covered[p]} == every and set(lay.splits[g].test) <= {
            p for p in mine if covered[p]} and trained_on <= mine
    assert all(v == pytest.approx(1.0) for v in linked_am_correlation(d, d.ams, np.ones(len(d.ams), bool)).values())
    shuffled = d.ams[np.random.default_rng(0).permutation(len(d.ams))]
    assert all(abs(v) < 0.5 for v in linked_am_correlation(d, shuffled, np.ones(len(d.ams), bool)).values())


def test_seed_is_a_config_field_and_the_device_is_recorded(tmp_path, tiny_overrides, synth_source):
    """`seed=5` as an override equals seed=5 as an argument; the run log names the device (auto rule)."""
    from voiceface.engine import Run, dist

    short = [*tiny_overrides, "train.steps=4"]
    a = train(synth_source, tmp_path / "a", overrides=[*short, "seed=5"], progress=False)
    b = train(synth_source, tmp_path / "b", overrides=short, seed=5, progress=False)
    assert Run.open(a).config["seed"] == Run.open(b).config["seed"] == 5
    ca, cb = load_checkpoint(a / "checkpoint.pt"), load_checkpoint(b / "checkpoint.pt")
    for k, v in ca["models"]["model"].items():
        assert torch.equal(v, cb["models"]["model"][k]), k
    start = next(r for r in Run.open(a).read_log() if r.get("event") == "start")
    assert start["device"].split(":")[0] == dist.default_device("auto").type and start["world_size"] == 1
