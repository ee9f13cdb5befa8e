"""Benchmark: vectorised cross-modal matching and mAP (voiceface.metrics.matching) vs a per-trial Python loop.

Part 1: 20,000 voices x 60,000 faces (random 64-d embeddings with identity structure, 189 identities as in the
thesis's test set): trials/s for 1:2 matching (enumerating every positive pair and drawing imposters included) and
queries/s for mAP over the whole gallery, against a per-trial / per-query Python loop timed on a subsample in the
same run and extrapolated. Part 2: the thesis-scale test set (21,799 voices x 58,420 faces, ~6.8 M trials): the
full U 1:2..1:10 matching + EER/AUC and the mAP (ID, gender, nationality), end to end.

Times are CPU seconds of this process (``time.process_time``, one thread), so a shared, busy machine does not
distort the ratios.

Run: .venv/bin/python bench/bm_matching.py [--threads 1] [--skip-thesis]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from voiceface.metrics import matching as M


def make_side(rng, n_items, n_id, centres, genders, nats, noise=3.0):
    ids = rng.integers(0, n_id, n_items)
    emb = (centres[ids] + noise * rng.standard_normal((n_items, centres.shape[1]))).astype(np.float32)
    return M.Side(emb, ids, genders[ids], nats[ids])


def world(n_voice, n_face, n_id=189, d=64, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_id, d))
    genders = rng.choice(np.array(["m", "f"]), n_id)
    nats = rng.choice(np.array(["us", "uk", "in", "ca", "au"]), n_id, p=[0.6, 0.15, 0.1, 0.1, 0.05])
    return (make_side(rng, n_voice, n_id, centres, genders, nats),
            make_side(rng, n_face, n_id, centres, genders, nats))


def loop_matching(v, f, n_trials, seed=0):
    """Baseline: one Python iteration per trial (pick a positive pair, a random imposter, two cosines)."""
    rng = np.random.default_rng(seed)
    by_id = {}
    for j, i in enumerate(f.identity):
        by_id.setdefault(int(i), []).append(j)
    t0 = time.process_time()
    correct = 0
    for _ in range(n_trials):
        p = int(rng.integers(len(v.identity)))
        pid = int(v.identity[p])
        t = by_id[pid][int(rng.integers(len(by_id[pid])))]
        while True:
            k = int(rng.integers(len(f.identity)))
            if f.identity[k] != pid:
                break
        a = v.emb[p]
        st = float(a @ f.emb[t] / (np.linalg.norm(a) * np.linalg.norm(f.emb[t])))
        si = float(a @ f.emb[k] / (np.linalg.norm(a) * np.linalg.norm(f.emb[k])))
        correct += st > si
    return time.process_time() - t0


def loop_map(v, f, n_queries):
    """Baseline: one Python iteration per query (score the gallery, sort, AP for three label kinds)."""
    fn = f.emb / np.linalg.norm(f.emb, axis=1, keepdims=True)
    t0 = time.process_time()
    for q in range(n_queries):
        s = fn @ (v.emb[q] / np.linalg.norm(v.emb[q]))
        order = np.argsort(-s, kind="stable")
        for lab_q, lab_g in ((v.identity, f.identity), (v.gender, f.gender), (v.nationality, f.nationality)):
            rel = lab_g[order] == lab_q[q]
            hits = np.cumsum(rel)
            _ = np.sum(hits[rel] / (np.nonzero(rel)[0] + 1)) / max(rel.sum(), 1)
    return time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-thesis", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), CPU; times are CPU seconds (process_time)")

    v, f = world(20000, 60000)
    pid, gid = M.encode_labels(v.identity, f.identity)
    t0 = time.process_time()
    trials = M.make_trials(pid, gid, n_imposters=1, seed=0)
    pos, imp = M.trial_scores(v.emb, f.emb, trials)
    acc = float(np.mean(pos > imp[:, 0]))
    t_vec = time.process_time() - t0
    n_loop = 20000
    t_loop = loop_matching(v, f, n_loop)
    rate_vec, rate_loop = len(trials) / t_vec, n_loop / t_loop
    print(f"[20k x 60k] 1:2 matching: {len(trials):,} trials in {t_vec:.1f} s = {rate_vec:,.0f} trials/s "
          f"(acc {acc:.3f}); loop {rate_loop:,.0f} trials/s on {n_loop:,} trials "
          f"(extrapolated {len(trials) / rate_loop / 60:.1f} min); speed-up x{rate_vec / rate_loop:.0f}")

    n_q = 2048
    t0 = time.process_time()
    M.retrieval_metrics(M.Side(v.emb[:n_q], v.identity[:n_q], v.gender[:n_q], v.nationality[:n_q]), f, "v2f")
    t_vec = time.process_time() - t0
    n_ql = 200
    t_loop = loop_map(v, f, n_ql)
    rv, rl = n_q / t_vec, n_ql / t_loop
    print(f"[20k x 60k] mAP (ID+gender+nationality): {rv:,.0f} queries/s vectorised vs {rl:,.0f} queries/s loop "
          f"(speed-up x{rv / rl:.1f}); all 20,000 queries: {20000 / rv:.0f} s vs {20000 / rl:.0f} s (extrapolated)")

    if args.skip_thesis:
        return
    v, f = world(21799, 58420, seed=1)
    t0 = time.process_time()
    r = M.matching_metrics(v, f, "v2f", strata=("U",), n_max=10, seed=0)
    t_match = time.process_time() - t0
    print(f"[thesis scale 21,799 x 58,420] v2f U: {r['n_trials_v2f_U']:,} trials, 1:2..1:10 + EER/AUC in "
          f"{t_match:.0f} s ({t_match / 60:.1f} min); acc 1:2 {r['match_v2f_U']:.3f}, EER {r['eer_U']:.3f}")
    t0 = time.process_time()
    r = M.retrieval_metrics(v, f, "v2f")
    t_map = time.process_time() - t0
    print(f"[thesis scale] mAP v2f over 21,799 queries x 58,420 gallery in {t_map:.0f} s ({t_map / 60:.1f} min); "
          f"id {r['map_v2f_id']:.3f} gender {r['map_v2f_gender']:.3f}")
    print(f"[thesis scale] one direction, one stratum + mAP: {(t_match + t_map) / 60:.1f} min on CPU "
          f"({args.threads} thread(s))")


if __name__ == "__main__":
    main()
