"""How much of a speaker's face can the GAN's metrics reward at all on a world? Ceilings of the dlib-based identity
metrics of ``ablate_gan`` (1:2 v->f matching U / G, recall@k over the unseen identities) for "generated faces" that
are not generated but predicted in dlib descriptor space:

* ``real face``: another real image of the speaker (the judge's own ceiling);
* ``gender mean``: the mean descriptor of the training faces of the speaker's gender (gender alone, perfectly);
* ``voice params ridge``: ridge regression from the world's true voice parameters (people.csv ``voice_*``) of the
  training identities to their mean face descriptor: the world's voice-face cues, read without any encoder;
* with ``--run``: the same ridge from the run's frozen F_e embedding of each recording, and the mean descriptor of
  the training identity whose mean embedding is nearest; plus a logistic-regression gender probe on the embedding
  (training recordings -> unseen recordings), the ceiling of the generated faces' gender with that F_e.

dlib descriptors of real faces come from / go to ``--cache`` (``ablate_gan``'s OUT/dlib_cache.npz format). Run:

    OMP_NUM_THREADS=1 .venv/bin/python bench/gan_ceiling.py --data WORLD --cache DIR/dlib_cache.npz [--run GAN_RUN]
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import torch

from voiceface.data.manifest import read_manifest
from voiceface.face.descriptors import FaceDescriber
from voiceface.methods import resolve_data
from voiceface.methods.gan.config import PRESETS
from voiceface.methods.gan.evaluate import match_accuracy
from voiceface.methods.gan.metrics import CachedDescriber, fit_logistic, gender_codes, identity_retrieval
from voiceface.methods.gan.train import load_faces64, load_run, split_data, to_unit, voice_features


def ridge(x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, l2: float) -> np.ndarray:
    """Standardised ridge with intercept: (N, p), (N, d), (M, p) -> (M, d) predictions."""
    mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-9
    a, b = np.c_[(x_tr - mu) / sd, np.ones(len(x_tr))], np.c_[(x_te - mu) / sd, np.ones(len(x_te))]
    return b @ np.linalg.solve(a.T @ a + l2 * np.eye(a.shape[1]), a.T @ y_tr)


def scores(pred: np.ndarray, probe, gallery: tuple[np.ndarray, list, list]) -> str:
    """pred (N, 128) descriptors for the probe items -> 'recall@1/5/10 (chance) 1:2 U G' text."""
    ids, genders = [i.identity for i in probe], [i.gender for i in probe]
    r = identity_retrieval(pred, ids, gallery[0], gallery[1])
    u, g = (match_accuracy(pred, ids, genders, *gallery, strat, 0)[0] for strat in (False, True))
    return (f"recall@1/5/10 {r['dlib_recall_at_1']:.3f}/{r['dlib_recall_at_5']:.3f}/{r['dlib_recall_at_10']:.3f} "
            f"(chance@10 {r['dlib_recall_chance_10']:.3f})  1:2 U {u:.3f} G {g:.3f}")


def embed(model, items, manifest, cache: Path) -> tuple[np.ndarray, list]:
    """Recordings -> (N, q) F_e embeddings of their first test_frames frames (cyclically repeated)."""
    feats, kept = voice_features(model.config.encoder.kind, items, manifest, cache)
    n = model.config.data.test_frames
    x = torch.from_numpy(np.stack([np.resize(f, (n, f.shape[1])) for f in feats])).transpose(1, 2).contiguous()
    with torch.no_grad():
        return torch.cat([model.encoder.embed(x[i:i + 128]) for i in range(0, len(x), 128)]).numpy(), kept


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--run", default="")
    args = ap.parse_args()
    torch.set_num_threads(1)
    manifest = read_manifest(resolve_data(args.data))
    gd = split_data(manifest, PRESETS["cpu"])
    describe, cache = CachedDescriber(FaceDescriber()), Path(args.cache)
    describe.load(cache)
    tr_u8, tr_items = load_faces64(gd.train_face, manifest.root)
    te_u8, te_items = load_faces64(gd.test_face, manifest.root)
    d_tr, d_te = describe(to_unit(tr_u8)), describe(to_unit(te_u8))
    ids = sorted({i.identity for i in tr_items})
    fid = np.array([ids.index(i.identity) for i in tr_items])
    centroid = np.stack([d_tr[fid == j].mean(0) for j in range(len(ids))])          # (I, 128)
    gallery = (d_te, [i.identity for i in te_items], [i.gender for i in te_items])
    probe = gd.test_voice
    rng = np.random.default_rng(0)
    te_ids = np.array(gallery[1])
    print("real face of the speaker:", scores(d_te[[rng.choice(np.flatnonzero(te_ids == p.identity)) for p in probe]],
                                              probe, gallery))
    tr_g = np.array([i.gender for i in tr_items])
    print("gender mean face:", scores(np.stack([d_tr[tr_g == p.gender].mean(0) for p in probe]), probe, gallery))
    people = {r["identity"]: r for r in csv.DictReader(open(Path(manifest.root) / "people.csv"))}
    cols = [c for c in next(iter(people.values())) if c.startswith("voice_")]
    params = lambda names: np.array([[float(people[n][c]) for c in cols] for n in names])   # noqa: E731
    pred = ridge(params(ids), centroid, params([p.identity for p in probe]), 10.0)
    print(f"voice params ridge ({len(cols)} columns):", scores(pred, probe, gallery))
    if args.run:
        model = load_run(args.run)
        e_tr, k_tr = embed(model, gd.train_voice, manifest, Path(args.run) / "cache")
        e_te, k_te = embed(model, probe, manifest, Path(args.run) / "cache")
        y_tr, y_te = gender_codes([i.gender for i in k_tr]), gender_codes([i.gender for i in k_te])
        clf = fit_logistic(e_tr, y_tr)
        print(f"F_e gender probe: training recordings {np.mean(clf.predict(e_tr) == y_tr):.3f}, "
              f"unseen {np.mean(clf.predict(e_te) == y_te):.3f}")
        vid = np.array([ids.index(i.identity) for i in k_tr])
        print("F_e ridge:", scores(ridge(e_tr, centroid[vid], e_te, 1.0), k_te, gallery))
        mean_e = np.stack([e_tr[vid == j].mean(0) for j in range(len(ids))])
        print("F_e nearest training identity:", scores(centroid[(e_te @ mean_e.T).argmax(1)], k_te, gallery))
    describe.save(cache)


if __name__ == "__main__":
    main()
