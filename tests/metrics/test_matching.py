"""voiceface.metrics.matching against naive per-trial loop implementations on small random data."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from voiceface.metrics import matching as M


def _world(seed=0, n_id=12, per=(2, 5), d=8):
    rng = np.random.default_rng(seed)
    genders = rng.choice(["m", "f"], n_id)
    nats = rng.choice(["us", "uk", "in"], n_id)
    centres = rng.normal(size=(n_id, d))

    def side(k):
        counts = rng.integers(per[0], per[1] + 1, n_id)
        ids = np.repeat(np.arange(n_id), counts)
        perm = rng.permutation(len(ids))
        ids = ids[perm]
        emb = centres[ids] + rng.normal(scale=1.5, size=(len(ids), d))
        return M.Side(emb, np.array([f"id{i}" for i in ids]), genders[ids], nats[ids])
    return side(0), side(1)


def _cos(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_positive_pairs_match_loop():
    v, f = _world()
    pid, gid = M.encode_labels(v.identity, f.identity)
    p, t = M.positive_pairs(pid, gid)
    naive = [(i, j) for i in range(len(pid)) for j in range(len(gid)) if pid[i] == gid[j]]
    assert list(zip(p.tolist(), t.tolist())) == naive


@pytest.mark.parametrize("stratum", ["U", "G", "N", "GN"])
def test_imposters_match_loop_and_respect_strata(stratum):
    v, f = _world(1)
    pid, gid = M.encode_labels(v.identity, f.identity)
    names = M.STRATA[stratum]
    if names:
        pk, gk = M.stratum_codes([v.covariate(n) for n in names], [f.covariate(n) for n in names])
    else:
        pk, gk = np.zeros(len(pid), np.int64), np.zeros(len(gid), np.int64)
    K = 4
    trials = M.make_trials(pid, gid, pk, gk, n_imposters=K, seed=7)
    u = np.random.default_rng(7).random((len(trials), K))
    for n, (p, imps) in enumerate(zip(trials.probe, trials.imposters)):
        cands = sorted((j for j in range(len(gid)) if gk[j] == pk[p] and gid[j] != pid[p]),
                       key=lambda j: (gid[j], j))
        avail = list(range(len(cands)))
        expect = []
        for c in range(K):
            if not avail:
                expect.append(-1)
                continue
            r = avail.pop(int(np.floor(u[n, c] * len(avail))))
            expect.append(cands[r])
        assert imps.tolist() == expect
        real = imps[imps >= 0]
        assert len(set(real.tolist())) == len(real)
        assert np.all(gid[real] != pid[p]) and np.all(gk[real] == pk[p])


def test_imposters_uniform():
    pid = np.zeros(20000, np.int64)
    gid = np.array([0, 1, 2, 3, 4])
    trials = M.make_trials(pid, gid, n_imposters=2, seed=0, pairs=(np.arange(20000), np.zeros(20000, np.int64)))
    counts = np.bincount(trials.imposters[:, 0], minlength=5)
    assert counts[0] == 0
    assert np.allclose(counts[1:] / 20000, 0.25, atol=0.015)


def test_scores_curve_eer_auc_match_loop():
    v, f = _world(2)
    pid, gid = M.encode_labels(v.identity, f.identity)
    trials = M.make_trials(pid, gid, n_imposters=5, seed=3)
    pos, imp = M.trial_scores(v.emb, f.emb, trials, chunk=7)
    curve = M.matching_curve(pos, imp)
    correct = {n: [] for n in range(2, 7)}
    P, N = [], []
    for n, (p, t, imps) in enumerate(zip(trials.probe, trials.true, trials.imposters)):
        st = _cos(v.emb[p], f.emb[t])
        assert abs(st - pos[n]) < 1e-12
        si = [_cos(v.emb[p], f.emb[j]) for j in imps]
        assert np.allclose(si, imp[n], atol=1e-12)
        for k in range(2, 7):
            correct[k].append(st > max(si[:k - 1]))
        P.append(st)
        N.append(si[0])
    for k in range(2, 7):
        assert curve[k] == np.mean(correct[k])
    # EER: loop over thresholds (accept score >= t)
    best = None
    for thr in sorted(set(P) | set(N)):
        far = np.mean([s >= thr for s in N])
        frr = np.mean([s < thr for s in P])
        if best is None or abs(far - frr) < best[0]:
            best = (abs(far - frr), (far + frr) / 2)
    assert M.eer(np.array(P), np.array(N)) == pytest.approx(best[1], abs=1e-15)
    naive_auc = np.mean([(a > b) + 0.5 * (a == b) for a in P for b in N])
    assert M.auc(np.array(P), np.array(N)) == pytest.approx(naive_auc, abs=1e-12)


def test_chunk_size_invariance():
    v, f = _world(4)
    a = M.matching_metrics(v, f, "v2f", n_max=5, seed=1, chunk=3)
    b = M.matching_metrics(v, f, "v2f", n_max=5, seed=1, chunk=1000)
    assert a == b


def test_map_matches_loop():
    v, f = _world(5)
    labels = {"id": (v.identity, f.identity), "gender": (v.gender, f.gender)}
    res = M.mean_average_precision(v.emb, f.emb, {k: a for k, (a, _) in labels.items()},
                                   {k: b for k, (_, b) in labels.items()}, chunk=5)
    for k, (ql, gl) in labels.items():
        aps = []
        for i in range(len(ql)):
            s = [_cos(v.emb[i], f.emb[j]) for j in range(len(gl))]
            order = sorted(range(len(gl)), key=lambda j: -s[j])
            hits, prec = 0, []
            for r, j in enumerate(order, 1):
                if gl[j] == ql[i]:
                    hits += 1
                    prec.append(hits / r)
            if prec:
                aps.append(np.mean(prec))
        assert res[k] == pytest.approx(np.mean(aps), abs=1e-12)


def test_perfect_and_gender_only_embeddings():
    """Identity-perfect embeddings match everything; gender-only ones give ~75% U and chance under G."""
    rng = np.random.default_rng(0)
    n = 200
    ids = np.arange(n)
    g = np.where(ids % 2, "m", "f")
    nat = np.full(n, "x")
    one_hot = np.eye(n)
    v = M.Side(one_hot + 0.01 * rng.normal(size=(n, n)), ids, g, nat)
    f = M.Side(one_hot + 0.01 * rng.normal(size=(n, n)), ids, g, nat)
    r = M.matching_metrics(v, f, "v2f", strata=("U", "G"), n_max=3, seed=0)
    assert r["match_v2f_U"] == 1.0 and r["match_v2f_G"] == 1.0 and r["eer_U"] == 0.0
    gv = np.stack([(g == "m"), (g == "f")], 1).astype(float) + 1e-3 * rng.normal(size=(n, 2))
    gf = np.stack([(g == "m"), (g == "f")], 1).astype(float) + 1e-3 * rng.normal(size=(n, 2))
    v2 = M.Side(np.repeat(gv, 30, 0), np.repeat(ids, 30), np.repeat(g, 30), np.repeat(nat, 30))
    f2 = M.Side(np.repeat(gf, 30, 0), np.repeat(ids, 30), np.repeat(g, 30), np.repeat(nat, 30))
    r = M.matching_metrics(v2, f2, "v2f", strata=("U", "G"), n_max=2, seed=0)
    assert abs(r["match_v2f_U"] - 0.75) < 0.02
    assert abs(r["match_v2f_G"] - 0.5) < 0.02


def test_list_metrics_and_accuracy():
    v, f = _world(6)
    pid, gid = M.encode_labels(v.identity, f.identity)
    trials = M.make_trials(pid, gid, n_imposters=1, seed=0)
    pos, imp = M.trial_scores(v.emb, f.emb, trials)
    acc = M.list_matching_accuracy(v.emb, f.emb, trials.probe, trials.true, trials.imposters[:, 0])
    assert acc == pytest.approx(np.mean(pos > imp[:, 0]))
    vi = np.concatenate([trials.probe, trials.probe])
    fi = np.concatenate([trials.true, trials.imposters[:, 0]])
    lab = np.r_[np.ones(len(trials)), np.zeros(len(trials))]
    r = M.list_verification(v.emb, f.emb, vi, fi, lab)
    assert r["eer"] == pytest.approx(M.eer(pos, imp[:, 0])) and r["auc"] == pytest.approx(M.auc(pos, imp[:, 0]))
    assert M.classification_accuracy(np.array([[0, 1], [1, 0]]), [1, 1]) == 0.5


def test_float32_torch_input():
    v, f = _world(7)
    v32 = M.Side(torch.as_tensor(v.emb, dtype=torch.float32), v.identity, v.gender, v.nationality)
    f32 = M.Side(torch.as_tensor(f.emb, dtype=torch.float32), f.identity, f.gender, f.nationality)
    r32 = M.cross_modal_suite(v32, f32, n_max=4)
    r64 = M.cross_modal_suite(v, f, n_max=4)
    assert set(r32) == set(r64)
    for k in r64:
        assert r32[k] == pytest.approx(r64[k], abs=0.02), k


def test_ap_torch_path_equals_numpy_path():
    rng = np.random.default_rng(0)
    rel = rng.random((6, 50)) < 0.3
    rel[0] = False
    a_np, n_np = M._ap_ranked_numpy(rel)
    a_t, n_t = M._ap_ranked_torch(torch.as_tensor(rel))
    assert np.allclose(a_np, a_t.numpy()) and np.array_equal(n_np, n_t.numpy())
