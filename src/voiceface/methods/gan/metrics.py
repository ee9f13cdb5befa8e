"""Generated-face metrics by a model the GAN never trained against: dlib's 128-d face descriptor (beside Table 3.3).

All metrics compare descriptors of 64x64 generated faces (one per recording of an unseen identity) with descriptors
of real faces; keys written to ``RUN/results.json`` by ``evaluate``:

* identity (the protocol of SF2F, Bai et al. 2022): the gallery is the mean descriptor of each unseen identity's real
  faces; ``dlib_cos_true`` / ``dlib_cos_other``: mean cosine similarity of a generated face's descriptor to its
  speaker's gallery entry / to the other identities' entries (averaged over them); ``dlib_recall_at_{1,5,10}``: the
  fraction of generated faces whose speaker's entry is among the k most similar (cosine) of the
  ``dlib_recall_identities`` entries, ``dlib_recall_chance_{k}`` = k / identities.
* gender: ``GenderLogReg``, an L2-regularised logistic regression on standardised descriptors of the training
  identities' real faces; ``gender_dlib_real_acc``: its accuracy on the unseen identities' real faces;
  ``gen_gender_dlib_acc`` / ``gen_gender_dlib_auc``: agreement of the generated faces with the speaker's gender;
  ``gen_gender_dlib_acc_f`` / ``_m``: the same over female / male speakers' faces (blur reads as male to dlib).
* quality / diversity: ``dlib_frechet`` = Frechet distance between Gaussians fitted to generated and real descriptors
  (``dlib_frechet_real_split``: the same between two halves of the real faces, a floor for the sample size);
  ``gen_diversity``: mean descriptor distance between faces generated for different speakers, ``real_diversity``:
  between real faces of different people, ``gen_diversity_ratio`` = gen / real (1 = as varied as real people,
  near 0 = one face for everybody).
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from scipy import linalg, optimize

from ...face.descriptors import pairwise_distances
from ...metrics.matching import auc, cosine_matrix

RECALL_KS = (1, 5, 10)
DLIB_KEYS = ("dlib_recall_at_1", "dlib_recall_at_5", "dlib_recall_at_10", "dlib_cos_true", "dlib_cos_other",
             "gender_dlib_real_acc", "gen_gender_dlib_acc", "dlib_frechet", "gen_diversity_ratio")
"""The headline keys of ``dlib_face_metrics`` (the demo's metrics)."""
GENDER_CLASSIFIER_FILE = "gender_dlib.json"
Describe = Callable[[torch.Tensor], np.ndarray]
"""(B, 3, 64, 64) faces in [-1, 1] -> (B, 128) dlib descriptors."""


class CachedDescriber:
    """dlib descriptors of aligned face crops, memoised by image content (evaluate describes the same real faces for
    several metrics). ``describer``: a ``voiceface.face.descriptors.FaceDescriber``; ``workers``: processes for
    large batches (``FaceDescriber.describe_aligned_batch``)."""

    def __init__(self, describer, workers: int = 1):
        self.describer = describer
        self.workers = workers
        self._memo: dict[bytes, np.ndarray] = {}

    def __call__(self, faces: torch.Tensor) -> np.ndarray:
        """(B, 3, 64, 64) in [-1, 1] -> (B, 128) float64 (uint8 conversion, upsampled by ``describe_aligned``)."""
        u8 = ((faces.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        keys = [hashlib.blake2b(img.tobytes(), digest_size=16).digest() for img in u8]
        todo = {k: i for i, k in enumerate(keys) if k not in self._memo}
        if todo:
            new = self.describer.describe_aligned_batch(u8[list(todo.values())], workers=self.workers)
            self._memo.update(zip(todo, new))
        return np.stack([self._memo[k] for k in keys]) if keys else np.zeros((0, 128))

    def load(self, path: str | os.PathLike) -> "CachedDescriber":
        """Add the descriptors memoised in an npz written by ``save`` (missing file: nothing); returns self."""
        if Path(path).is_file():
            with np.load(path) as z:                       # keys (N, 16) uint8 content hashes, vals (N, 128)
                self._memo.update(zip((bytes(k) for k in z["keys"]), z["vals"]))
        return self

    def save(self, path: str | os.PathLike) -> None:
        """Write every memoised descriptor to an npz, atomically (benchmarks running side by side share one file to
        reuse real faces' descriptors)."""
        if self._memo:
            keys = np.frombuffer(b"".join(self._memo), np.uint8).reshape(-1, 16)
            tmp = Path(f"{os.fspath(path)}.{os.getpid()}.tmp.npz")
            np.savez(tmp, keys=keys, vals=np.stack(list(self._memo.values())))
            os.replace(tmp, path)


# ------------------------------------------------------------------------------------------------ gender
@dataclass
class GenderLogReg:
    """p(y = 1 | x) = sigmoid(((x - mean) / scale) . w + b); y = 1: female. Shapes: w, mean, scale (D,)."""

    w: np.ndarray
    b: float
    mean: np.ndarray
    scale: np.ndarray

    def decision(self, x: np.ndarray) -> np.ndarray:
        """(N, D) -> (N,) logits."""
        return ((np.asarray(x, np.float64) - self.mean) / self.scale) @ self.w + self.b

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(N, D) -> (N,) int 0/1."""
        return (self.decision(x) > 0).astype(np.int64)

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps({"w": self.w.tolist(), "b": self.b, "mean": self.mean.tolist(),
                                          "scale": self.scale.tolist()}), encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "GenderLogReg":
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(np.array(d["w"]), float(d["b"]), np.array(d["mean"]), np.array(d["scale"]))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, max_iter: int = 1000) -> GenderLogReg:
    """L2-regularised logistic regression by L-BFGS on standardised features.

    Minimises mean_i [log(1 + e^{z_i}) - y_i z_i] + l2 / 2 ||w||^2 with z = x_std w + b (bias not penalised).
    x: (N, D); y: (N,) in {0, 1}."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    mean, scale = x.mean(0), x.std(0) + 1e-8
    xs = (x - mean) / scale
    n, d = xs.shape

    def loss_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:d], theta[d]
        z = xs @ w + b
        loss = np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * w @ w
        r = (1.0 / (1.0 + np.exp(-z)) - y) / n                       # (N,) dloss/dz
        return float(loss), np.concatenate([xs.T @ r + l2 * w, [r.sum()]])

    res = optimize.minimize(loss_grad, np.zeros(d + 1), jac=True, method="L-BFGS-B",
                            options={"maxiter": max_iter})
    return GenderLogReg(res.x[:d], float(res.x[d]), mean, scale)


def gender_codes(genders: Sequence[str]) -> np.ndarray:
    """'f' -> 1, 'm' -> 0, anything else -> -1 (unknown): (N,) int."""
    return np.array([{"f": 1, "m": 0}.get(g, -1) for g in genders], dtype=np.int64)


# ------------------------------------------------------------------------------------------------ identity
def identity_retrieval(probe: np.ndarray, probe_ids: Sequence[str], gallery: np.ndarray,
                       gallery_ids: Sequence[str], ks: Sequence[int] = RECALL_KS) -> dict[str, float]:
    """Recall@k of each probe's identity among the gallery identities' mean descriptors (cosine similarity).

    probe: (N, D) one row per generated face; gallery: (M, D) real faces, several per identity. Probes whose
    identity has no gallery face are dropped. A probe is counted at k when fewer than k other identities score
    strictly higher than its own."""
    ids = sorted(set(gallery_ids))
    col = {k: i for i, k in enumerate(ids)}
    gid = np.array([col[g] for g in gallery_ids])
    centroid = np.stack([gallery[gid == i].mean(0) for i in range(len(ids))])           # (I, D)
    keep = np.array([p in col for p in probe_ids], dtype=bool)
    true = np.array([col[p] for p, k in zip(probe_ids, keep) if k], dtype=np.int64)
    sim = cosine_matrix(probe[keep], centroid)                                           # (N', I)
    own = sim[np.arange(len(true)), true]
    rank = (sim > own[:, None]).sum(1)                                                   # 0 = best
    n_id = len(ids)
    out = {"dlib_recall_identities": n_id, "dlib_recall_probes": int(len(true)),
           "dlib_cos_true": float(own.mean()) if len(true) else float("nan"),
           "dlib_cos_other": float(((sim.sum(1) - own) / max(n_id - 1, 1)).mean()) if len(true) else float("nan")}
    for k in ks:
        out[f"dlib_recall_at_{k}"] = float(np.mean(rank < k)) if len(true) else float("nan")
        out[f"dlib_recall_chance_{k}"] = min(k, n_id) / n_id
    return out


# ------------------------------------------------------------------------------------------------ quality, diversity
def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(C1 + C2 - 2 (C1 C2)^{1/2}) between two Gaussians (means (D,), covariances (D, D))."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", linalg.LinAlgWarning)
        try:
            covmean = linalg.sqrtm(cov1 @ cov2)
        except linalg.LinAlgWarning:                      # singular product (fewer samples than dimensions)
            covmean = np.full_like(cov1, np.nan)
    if not np.isfinite(covmean).all():                    # regularise both, as FID implementations do
        eps = 1e-6 * np.eye(len(mu1)) * max(np.trace(cov1), np.trace(cov2)) / len(mu1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            covmean = linalg.sqrtm((cov1 + eps) @ (cov2 + eps))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(covmean.real))


def frechet_from_samples(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to samples a (N, D) and b (M, D)."""
    return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def mean_pairwise_distance(x: np.ndarray, groups: Sequence[str]) -> float:
    """Mean Euclidean distance over pairs of rows of x (N, D) with different ``groups`` labels (N,)."""
    g = np.asarray(groups)
    diff = g[:, None] != g[None, :]
    return float(pairwise_distances(x)[diff].mean()) if diff.any() else float("nan")


def diversity(gen: np.ndarray, gen_groups: Sequence[str], real: np.ndarray, real_groups: Sequence[str]
              ) -> dict[str, float]:
    """Descriptor spread of generated faces across speakers vs of real faces across people (ratio gen / real)."""
    g, r = mean_pairwise_distance(gen, gen_groups), mean_pairwise_distance(real, real_groups)
    return {"gen_diversity": g, "real_diversity": r, "gen_diversity_ratio": g / r}


# ------------------------------------------------------------------------------------------------ evaluate's hook
def dlib_face_metrics(describe: Describe, gen_faces: torch.Tensor, gen_ids: Sequence[str], gen_genders: Sequence[str],
                      real: tuple[torch.Tensor, Sequence[str], Sequence[str]],
                      train: tuple[torch.Tensor, Sequence[str]], seed: int, out_dir: Path | None = None
                      ) -> dict[str, Any]:
    """Every key of the module docstring.

    gen_faces: (N, 3, 64, 64) faces generated from unseen identities' recordings (speaker ids, genders (N,));
    real: (M, 3, 64, 64) real faces of the unseen identities, their ids and genders; train: real faces of the
    training identities and their genders (the gender classifier's training set); seed: the real-face half split.
    ``out_dir``: where the gender classifier is saved (``GENDER_CLASSIFIER_FILE``) for ``real_voice_gender``."""
    real_faces, real_ids, real_genders = real
    gen, ref, tr = describe(gen_faces), describe(real_faces), describe(train[0])
    out: dict[str, Any] = identity_retrieval(gen, gen_ids, ref, real_ids)
    y_tr, y_ref, y_gen = gender_codes(train[1]), gender_codes(real_genders), gender_codes(gen_genders)
    clf = fit_logistic(tr[y_tr >= 0], y_tr[y_tr >= 0])
    if out_dir is not None:
        clf.save(Path(out_dir) / GENDER_CLASSIFIER_FILE)
    known = y_ref >= 0
    out["gender_dlib_real_acc"] = float((clf.predict(ref[known]) == y_ref[known]).mean()) if known.any() else np.nan
    known = y_gen >= 0
    pred = clf.predict(gen)
    for key, mask in (("", known), ("_f", y_gen == 1), ("_m", y_gen == 0)):
        out["gen_gender_dlib_acc" + key] = float((pred[mask] == y_gen[mask]).mean()) if mask.any() else np.nan
    score, female = clf.decision(gen[known]), y_gen[known] == 1
    out["gen_gender_dlib_auc"] = auc(score[female], score[~female])
    out["dlib_frechet"] = frechet_from_samples(gen, ref)
    half = np.random.default_rng([seed, 29]).permutation(len(ref))
    out["dlib_frechet_real_split"] = frechet_from_samples(ref[half[::2]], ref[half[1::2]])
    out.update(diversity(gen, gen_ids, ref, real_ids))
    return out


def dlib_table(r: dict[str, Any]) -> str:
    """Markdown table of ``dlib_face_metrics``'s keys (empty string when they are absent)."""
    if "dlib_recall_at_1" not in r:
        return ""

    def f(x):
        return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.3f}"

    rec = " / ".join(f(r[f"dlib_recall_at_{k}"]) for k in RECALL_KS)
    chance = " / ".join(f(r[f"dlib_recall_chance_{k}"]) for k in RECALL_KS)
    rows = [
        ("identity: recall@1 / 5 / 10 among the unseen identities' mean real descriptors",
         f"{rec} (chance {chance}; {r['dlib_recall_identities']} identities, {r['dlib_recall_probes']} faces)"),
        ("identity: cosine to own identity vs mean over others",
         f"{f(r['dlib_cos_true'])} vs {f(r['dlib_cos_other'])}"),
        ("gender (logistic regression on dlib descriptors of real training faces): real unseen faces",
         f(r["gender_dlib_real_acc"])),
        ("gender of generated faces = speaker's gender: accuracy / AUC (female / male speakers)",
         f"{f(r['gen_gender_dlib_acc'])} / {f(r['gen_gender_dlib_auc'])} ({f(r.get('gen_gender_dlib_acc_f'))} / "
         f"{f(r.get('gen_gender_dlib_acc_m'))})"),
        ("Frechet distance generated vs real (real half vs half)",
         f"{f(r['dlib_frechet'])} ({f(r['dlib_frechet_real_split'])})"),
        ("diversity: mean distance across speakers, generated / real (ratio)",
         f"{f(r['gen_diversity'])} / {f(r['real_diversity'])} ({f(r['gen_diversity_ratio'])})"),
    ]
    lines = ["### Generated faces judged by dlib's face descriptor (never a training target of the GAN)", "",
             "| metric | value |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------ real voices
def real_voice_gender(describe: Describe, faces: torch.Tensor, sources: Sequence[str],
                      meta: str | os.PathLike, classifier: str | os.PathLike) -> dict[str, Any]:
    """Gender of faces generated from real recordings named after people of a VoxCeleb metadata file.

    faces: (B, 3, 64, 64); sources: their file paths (stem = the VGGFace1 name, e.g. ``Alan_Tudyk``); meta:
    ``vox1_meta.csv``; classifier: a saved ``GenderLogReg``. Returns ``vox_gender_dlib_acc`` over the files whose
    speaker's gender is known, ``vox_gender_n`` and ``per_file`` [(name, true 'm'/'f'/'', predicted 'm'/'f')]."""
    from ...data.adapters import read_meta

    gender = {p.identity: p.gender for p in read_meta(meta)}
    names = [Path(s).stem for s in sources]
    truth = gender_codes([gender.get(n, "") for n in names])
    pred = GenderLogReg.load(classifier).predict(describe(faces)) if len(faces) else np.zeros(0, np.int64)
    known = truth >= 0
    return {"vox_gender_dlib_acc": float((pred[known] == truth[known]).mean()) if known.any() else float("nan"),
            "vox_gender_n": int(known.sum()),
            "per_file": [(n, gender.get(n, ""), "mf"[p]) for n, p in zip(names, pred)]}
