"""dlib-descriptor metrics of generated faces (voiceface.methods.gan.metrics): their building blocks on planted data."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from voiceface.methods.gan.metrics import (GenderLogReg, diversity, fit_logistic, frechet_distance,
                                           frechet_from_samples, identity_retrieval)


def _two_gaussians(rng, n=400, d=16, shift=1.5):
    y = rng.integers(0, 2, n)
    """Labels (n,) and features (n, d): unit noise on the 3 informative dims (class means +-shift: Bayes accuracy
    Phi(shift sqrt(3)) = 0.9955 for 1.5), arbitrary scales and offsets elsewhere (standardisation must cope)."""
    x = rng.standard_normal((n, d)) * np.r_[np.ones(3), rng.uniform(0.5, 30, d - 3)] + 5.0
    x[:, :3] += shift * (2 * y[:, None] - 1)
    return x, y


def test_logistic_separates_planted_gaussians_and_is_at_chance_on_shuffled_labels(tmp_path):
    rng = np.random.default_rng(0)
    x, y = _two_gaussians(rng)
    xt, yt = _two_gaussians(rng)
    clf = fit_logistic(x, y)
    assert (clf.predict(xt) == yt).mean() > 0.97
    shuffled = fit_logistic(x, rng.permutation(y))
    assert abs((shuffled.predict(xt) == yt).mean() - 0.5) < 0.1
    clf.save(tmp_path / "g.json")
    np.testing.assert_allclose(GenderLogReg.load(tmp_path / "g.json").decision(xt), clf.decision(xt))


def test_logistic_reaches_the_optimum():
    """Gradient of the penalised loss is ~0 at the returned weights (checked by finite differences of the loss)."""
    rng = np.random.default_rng(1)
    x, y = _two_gaussians(rng, n=200, d=5, shift=0.5)
    l2 = 0.1
    clf = fit_logistic(x, y, l2=l2)
    xs = (x - clf.mean) / clf.scale

    def loss(w, b):
        z = xs @ w + b
        return np.mean(np.logaddexp(0, z) - y * z) + 0.5 * l2 * w @ w
    base = loss(clf.w, clf.b)
    for j in range(5):
        e = np.zeros(5)
        e[j] = 1e-3
        assert loss(clf.w + e, clf.b) >= base - 1e-9 and loss(clf.w - e, clf.b) >= base - 1e-9
    assert loss(clf.w, clf.b + 1e-3) >= base - 1e-9


def _naive_recall(probe, probe_ids, gallery, gallery_ids, k):
    ids = sorted(set(gallery_ids))
    cents = [np.mean([g for g, i in zip(gallery, gallery_ids) if i == ident], 0) for ident in ids]
    hits = 0
    for p, pid in zip(probe, probe_ids):
        sims = [p @ c / np.linalg.norm(p) / np.linalg.norm(c) for c in cents]
        top = sorted(range(len(ids)), key=lambda j: -sims[j])[:k]
        hits += ids.index(pid) in top
    return hits / len(probe)


def test_recall_matches_a_naive_loop_and_is_perfect_for_gallery_means():
    rng = np.random.default_rng(2)
    ids = [f"p{i}" for i in range(23)]
    gallery_ids = [i for i in ids for _ in range(3)]
    gallery = rng.standard_normal((len(gallery_ids), 8))
    probe_ids = list(rng.choice(ids, 50))
    probe = rng.standard_normal((50, 8))
    res = identity_retrieval(probe, probe_ids, gallery, gallery_ids)
    for k in (1, 5, 10):
        assert res[f"dlib_recall_at_{k}"] == pytest.approx(_naive_recall(probe, probe_ids, gallery, gallery_ids, k))
        assert res[f"dlib_recall_chance_{k}"] == pytest.approx(k / 23)
    assert res["dlib_recall_at_1"] < 0.3 and res["dlib_recall_identities"] == 23
    means = np.stack([gallery[[g == i for g in gallery_ids]].mean(0) for i in probe_ids])
    exact = identity_retrieval(means, probe_ids, gallery, gallery_ids)
    assert exact["dlib_recall_at_1"] == 1.0 and exact["dlib_cos_true"] == pytest.approx(1.0)
    assert exact["dlib_cos_other"] < 0.5
    unknown = identity_retrieval(probe, ["nobody"] + probe_ids[1:], gallery, gallery_ids)
    assert unknown["dlib_recall_probes"] == 49


def test_frechet_distance_closed_forms():
    rng = np.random.default_rng(3)
    d = 6
    a = rng.standard_normal((d, d))
    cov = a @ a.T + np.eye(d)
    mu = rng.standard_normal(d)
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-6)
    # diagonal covariances: sum (m1 - m2)^2 + sum (s1 - s2)^2 with s the standard deviations
    s1, s2 = rng.uniform(0.5, 2, d), rng.uniform(0.5, 2, d)
    m2 = rng.standard_normal(d)
    want = np.sum((mu - m2) ** 2) + np.sum((s1 - s2) ** 2)
    assert frechet_distance(mu, np.diag(s1 ** 2), m2, np.diag(s2 ** 2)) == pytest.approx(want, rel=1e-8)
    # scaled covariance: C2 = c^2 C1 -> (1 - c)^2 tr(C1)
    assert frechet_distance(mu, cov, mu, 4 * cov) == pytest.approx(np.trace(cov), rel=1e-6)
    # general case against the eigen-decomposition route: tr sqrt(C1 C2) = tr sqrt(C1^1/2 C2 C1^1/2)
    b = rng.standard_normal((d, d))
    cov2 = b @ b.T + 0.1 * np.eye(d)
    r = linalg.sqrtm(cov).real
    want = np.trace(cov) + np.trace(cov2) - 2 * np.sqrt(np.linalg.eigvalsh(r @ cov2 @ r)).sum()
    assert frechet_distance(mu, cov, mu, cov2) == pytest.approx(want, rel=1e-6)
    # from samples: large samples of one Gaussian are close, a shifted one is ~ ||shift||^2 away
    x = rng.standard_normal((20000, d))
    assert frechet_from_samples(x[:10000], x[10000:]) < 0.02
    assert frechet_from_samples(x[:10000], x[10000:] + 2.0) == pytest.approx(4 * d, rel=0.02)


def test_diversity_ratio_is_one_for_one_distribution_and_small_for_collapse():
    rng = np.random.default_rng(4)
    ids = np.repeat(np.arange(40), 5).astype(str)
    res = diversity(rng.standard_normal((200, 16)), ids, rng.standard_normal((200, 16)), ids)
    assert res["gen_diversity_ratio"] == pytest.approx(1.0, abs=0.03)
    collapsed = diversity(0.05 * rng.standard_normal((200, 16)), ids, rng.standard_normal((200, 16)), ids)
    assert collapsed["gen_diversity_ratio"] < 0.1


def test_frechet_distance_with_fewer_samples_than_dimensions_is_finite():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((10, 32)), rng.standard_normal((12, 32)) + 1
    assert np.isfinite(frechet_from_samples(a, b)) and frechet_from_samples(a, b) > 32 * 0.5


class _FakeDescriber:
    """describe_aligned_batch: (N, S, S, 3) uint8 -> (N, 128): channel means tiled (counts the images it sees)."""

    def __init__(self):
        self.seen = 0

    def describe_aligned_batch(self, crops, workers=1):
        self.seen += len(crops)
        return np.repeat(crops.reshape(len(crops), -1, 3).mean(1), 43, axis=1)[:, :128].astype(np.float64)


def test_cached_describer_describes_each_image_once():
    import torch

    from voiceface.methods.gan.metrics import CachedDescriber

    fake = _FakeDescriber()
    cached = CachedDescriber(fake)
    faces = torch.rand(6, 3, 64, 64) * 2 - 1
    first = cached(faces)
    again = cached(torch.cat([faces[3:], faces[:1], torch.zeros(1, 3, 64, 64)]))
    assert fake.seen == 7 and first.shape == (6, 128)
    np.testing.assert_array_equal(again[:3], first[3:])
    np.testing.assert_array_equal(again[3], first[0])


def test_cached_describer_saves_and_reloads_its_memo(tmp_path):
    import torch

    from voiceface.methods.gan.metrics import CachedDescriber

    faces = torch.rand(4, 3, 64, 64) * 2 - 1
    first = CachedDescriber(_FakeDescriber())
    expected = first(faces)
    first.save(tmp_path / "memo.npz")
    fake = _FakeDescriber()
    again = CachedDescriber(fake).load(tmp_path / "memo.npz").load(tmp_path / "absent.npz")
    np.testing.assert_array_equal(again(faces), expected)
    assert fake.seen == 0 and [p.name for p in tmp_path.iterdir()] == ["memo.npz"]   # no temporary file left


def test_real_voice_gender_reads_the_metadata(tmp_path):
    import torch

    from voiceface.methods.gan.metrics import real_voice_gender

    (tmp_path / "meta.csv").write_text("VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n"
                                       "id1\tAnn_A\tf\tUK\tdev\nid2\tBob_B\tm\tUK\ttest\n")
    # classifier: female iff the red channel mean of the (fake) descriptor is high
    GenderLogReg(np.r_[1.0, np.zeros(127)], 0.0, np.full(128, 127.5), np.ones(128)).save(tmp_path / "g.json")
    faces = torch.stack([torch.ones(3, 64, 64), -torch.ones(3, 64, 64), torch.ones(3, 64, 64)])
    res = real_voice_gender(lambda f: _FakeDescriber().describe_aligned_batch(
        ((f + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()), faces,
        ["x/Ann_A.wav", "y/Bob_B.wav", "z/Nobody.wav"], tmp_path / "meta.csv", tmp_path / "g.json")
    assert res["per_file"] == [("Ann_A", "f", "f"), ("Bob_B", "m", "m"), ("Nobody", "", "f")]
    assert res["vox_gender_dlib_acc"] == 1.0 and res["vox_gender_n"] == 2


def test_generated_gender_is_split_by_the_speakers_gender(tmp_path):
    """A planted judge: the descriptor's first 3 dims are the face's brightness (female bright, male dark). Female
    speakers' generated faces drawn dark are all judged male: the female column is 0, the male column 1."""
    import torch

    from voiceface.methods.gan.metrics import GENDER_CLASSIFIER_FILE, dlib_face_metrics

    rng = np.random.default_rng(0)

    def describe(faces):
        d = rng.standard_normal((len(faces), 128)) * 0.1
        d[:, :3] += faces.mean(dim=(1, 2, 3)).numpy()[:, None]
        return d

    def faces(genders, female_level=0.5):
        level = torch.tensor([female_level if g == "f" else -0.5 for g in genders])
        return level[:, None, None, None].expand(len(genders), 3, 8, 8).clone()

    g_train, g_real, g_gen = ["f", "m"] * 200, ["f", "m"] * 10, ["f", "m"] * 6
    ids = [f"p{i % 4}" for i in range(len(g_real))]
    out = dlib_face_metrics(describe, faces(g_gen, female_level=-0.5), [f"p{i % 4}" for i in range(12)], g_gen,
                            (faces(g_real), ids, g_real), (faces(g_train), g_train), seed=0, out_dir=tmp_path)
    assert out["gender_dlib_real_acc"] == 1.0 and (tmp_path / GENDER_CLASSIFIER_FILE).is_file()
    assert (out["gen_gender_dlib_acc_f"], out["gen_gender_dlib_acc_m"], out["gen_gender_dlib_acc"]) == (0.0, 1.0, 0.5)
