"""Cross-modal matching, verification and retrieval metrics on embedding matrices (Sec. 2.3, Tables 2.4-2.7).

Everything works on whole embedding matrices: cosine scores come from chunked matrix products
(``probe_chunk @ gallery.T``, Sec. 2.2.4), trials are enumerated and imposters drawn with array operations, and no
Python loop runs per trial (loops run over chunks of probes, or over the at most ``N - 1`` imposter columns).

Protocols (Sec. 2.3, "Testing"):

* **1:2 matching** (Table 2.4): every positive (probe, gallery) pair of the same identity is one trial; one imposter
  from another identity is drawn for it. A trial is correct when ``S(probe, true) > S(probe, imposter)``.
* **1:N matching** (Fig. 2.3): the same trials augmented to ``N - 1`` distinct imposters (the first imposter is the
  1:2 imposter); correct when the true item scores above every imposter.
* **Verification** (Table 2.5, 2.7): each 1:2 trial gives one matched and one mismatched pair; EER and ROC AUC.
* **Retrieval** (Table 2.6): every probe ranks the whole gallery; mean average precision for identity, gender,
  nationality labels.
* **Stratification** U / G / N / GN: imposters are drawn only among gallery items whose covariate values (gender,
  nationality, both) equal the probe's, so the covariate cannot explain a correct answer.

All random choices come from a ``numpy.random.Generator`` seeded by the caller, consumed in probe order in fixed-size
draws, so results do not depend on the chunk size or device.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from scipy import stats

STRATA = {"U": (), "G": ("gender",), "N": ("nationality",), "GN": ("gender", "nationality")}


# --------------------------------------------------------------------------------------------------------------
# label coding


def encode_labels(*arrays: Sequence) -> list[np.ndarray]:
    """Code several label arrays jointly as int64 (equal values get equal codes across the arrays)."""
    joined = np.concatenate([np.asarray(a, dtype=object).astype(str) for a in arrays])
    _, codes = np.unique(joined, return_inverse=True)
    out, start = [], 0
    for a in arrays:
        out.append(codes[start:start + len(a)].astype(np.int64))
        start += len(a)
    return out


def stratum_codes(probe_covariates: Sequence[Sequence], gallery_covariates: Sequence[Sequence]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Joint int64 stratum keys from lists of covariate arrays (e.g. ``[gender, nationality]``).

    ``probe_covariates``: list of (P,) arrays; ``gallery_covariates``: the same covariates as (G,) arrays. With an
    empty list every item is in stratum 0 (unstratified, "U").
    """
    if len(probe_covariates) == 0:
        raise ValueError("stratum_codes needs at least one covariate (use None keys for unstratified)")
    pk = np.array(["\x1f".join(map(str, row)) for row in zip(*probe_covariates)], dtype=object)
    gk = np.array(["\x1f".join(map(str, row)) for row in zip(*gallery_covariates)], dtype=object)
    return tuple(encode_labels(pk, gk))  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------------------------
# trials


@dataclass(frozen=True)
class Trials:
    """Matching trials over a probe set and a gallery.

    probe: (T,) probe row index; true: (T,) gallery index of the same identity; imposters: (T, K) gallery indices
    of distinct imposters (-1 where the stratum holds fewer than ``K`` other-identity items). Trials are sorted by
    probe index.
    """

    probe: np.ndarray
    true: np.ndarray
    imposters: np.ndarray

    def __len__(self) -> int:
        return len(self.probe)


def positive_pairs(probe_ids: np.ndarray, gallery_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (probe, gallery) index pair with equal identity codes, sorted by probe then gallery index.

    probe_ids: (P,) int64 codes; gallery_ids: (G,) int64 codes (coded jointly, see ``encode_labels``).
    Returns (T,) probe indices and (T,) gallery indices.
    """
    order = np.argsort(gallery_ids, kind="stable")
    sorted_ids = gallery_ids[order]
    lo = np.searchsorted(sorted_ids, probe_ids, "left")
    hi = np.searchsorted(sorted_ids, probe_ids, "right")
    counts = hi - lo
    p = np.repeat(np.arange(len(probe_ids)), counts)
    offsets = np.cumsum(counts) - counts
    t = order[lo[p] + np.arange(len(p)) - offsets[p]]
    return p.astype(np.int64), t.astype(np.int64)


class ImposterSampler:
    """Draws distinct imposters per trial among gallery items in the probe's stratum with another identity.

    gallery_ids: (G,) identity codes; gallery_keys: (G,) stratum codes (all zero for "U"). Candidates of a trial
    are the gallery items with the probe's stratum key and a different identity, in the order (key, identity,
    index); imposter ``c`` is candidate ``floor(u_c * (m - c))`` among those not yet chosen (sequential sampling
    without replacement), ``u`` being uniform draws in [0, 1) and ``m`` the number of candidates.
    """

    def __init__(self, gallery_ids: np.ndarray, gallery_keys: np.ndarray):
        self.order = np.lexsort((np.arange(len(gallery_ids)), gallery_ids, gallery_keys))
        self.keys = gallery_keys[self.order]
        self.ids = gallery_ids[self.order]

    def candidates(self, probe_ids: np.ndarray, probe_keys: np.ndarray) -> tuple[np.ndarray, ...]:
        """(T,) stratum start, identity-block start and length (within the sorted gallery), candidate count m."""
        s0 = np.searchsorted(self.keys, probe_keys, "left")
        s1 = np.searchsorted(self.keys, probe_keys, "right")
        n_ids = int(max(self.ids.max(initial=0), probe_ids.max(initial=0))) + 1
        kid = self.keys * n_ids + self.ids  # (key, id) code, ascending along the sorted gallery
        code = probe_keys * n_ids + probe_ids
        a = np.searchsorted(kid, code, "left")
        b = np.searchsorted(kid, code, "right")
        return s0, a, b - a, (s1 - s0) - (b - a)

    def draw(self, probe_ids: np.ndarray, probe_keys: np.ndarray, u: np.ndarray) -> np.ndarray:
        """(T, K) gallery indices of distinct imposters (-1 where fewer than c+1 candidates) from (T, K) uniforms."""
        s0, a, blk, m = self.candidates(probe_ids, probe_keys)
        T, K = u.shape
        chosen = np.zeros((T, K), np.int64)
        for c in range(K):  # loop over imposter columns (K <= N - 1), vectorised over trials
            r = np.floor(u[:, c] * np.maximum(m - c, 0)).astype(np.int64)
            if c:
                prev = np.sort(chosen[:, :c], axis=1)
                for j in range(c):  # skip the candidates already chosen (ascending)
                    r += r >= prev[:, j]
            chosen[:, c] = r
        valid = np.arange(K)[None, :] < m[:, None]
        # candidate rank -> position in the sorted gallery, skipping the probe identity's block
        rel = chosen + np.where(chosen >= (a - s0)[:, None], blk[:, None], 0)
        pos = np.clip(s0[:, None] + rel, 0, max(len(self.order) - 1, 0))
        out = self.order[pos] if len(self.order) else np.zeros_like(pos)
        return np.where(valid, out, -1)


def make_trials(probe_ids: np.ndarray, gallery_ids: np.ndarray, probe_keys: np.ndarray | None = None,
                gallery_keys: np.ndarray | None = None, n_imposters: int = 9, seed: int | np.random.Generator = 0,
                pairs: tuple[np.ndarray, np.ndarray] | None = None, block: int = 1 << 19) -> Trials:
    """All positive pairs with ``n_imposters`` distinct imposters each, drawn within strata (see ``ImposterSampler``).

    probe_ids (P,), gallery_ids (G,): jointly coded identities; probe_keys (P,), gallery_keys (G,): stratum codes
    (None: unstratified). ``seed``: int or Generator; uniforms are drawn in trial order, (T, n_imposters) in all.
    """
    rng = np.random.default_rng(seed)
    p, t = positive_pairs(probe_ids, gallery_ids) if pairs is None else pairs
    if probe_keys is None:
        probe_keys = np.zeros(len(probe_ids), np.int64)
        gallery_keys = np.zeros(len(gallery_ids), np.int64)
    sampler = ImposterSampler(gallery_ids, gallery_keys)
    imp = np.empty((len(p), n_imposters), np.int64)
    for lo in range(0, len(p), block):  # bounded memory; the uniform stream does not depend on ``block``
        hi = min(lo + block, len(p))
        imp[lo:hi] = sampler.draw(probe_ids[p[lo:hi]], probe_keys[p[lo:hi]], rng.random((hi - lo, n_imposters)))
    return Trials(p, t, imp)


# --------------------------------------------------------------------------------------------------------------
# scores


def _as_tensor(x, device) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x
    return t.to(device)


def normalize(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Row-wise L2 normalisation of a (n, d) embedding matrix (cosine similarity, Sec. 2.2.4)."""
    t = torch.as_tensor(x)
    return t / t.norm(dim=1, keepdim=True).clamp_min(1e-12)


def cosine_matrix(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Cosine similarities between rows: (N, D), (M, D) -> (N, M) float64 (``b`` defaults to ``a``)."""
    a = np.asarray(a, dtype=np.float64)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    if b is None:
        return a @ a.T
    b = np.asarray(b, dtype=np.float64)
    return a @ (b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)).T


def trial_scores(probe_emb, gallery_emb, trials: Trials, chunk: int = 512,
                 device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Cosine scores of each trial's true item (T,) and imposters (T, K) (NaN where no imposter).

    probe_emb: (P, d), gallery_emb: (G, d). Computes ``S = probe_chunk @ gallery.T`` for chunks of ``chunk``
    probes (a (chunk, G) block) and gathers the trial entries from it.
    """
    device = torch.device(device)
    P = normalize(_as_tensor(probe_emb, device))
    G = normalize(_as_tensor(gallery_emb, device))
    n_probe = P.shape[0]
    bounds = np.searchsorted(trials.probe, np.arange(0, n_probe + chunk, chunk))
    pos = np.empty(len(trials), dtype=np.float64 if P.dtype == torch.float64 else np.float32)
    imp = np.full(trials.imposters.shape, np.nan, dtype=pos.dtype)
    for i, start in enumerate(range(0, n_probe, chunk)):
        lo, hi = bounds[i], bounds[i + 1]
        if lo == hi:
            continue
        S = P[start:start + chunk] @ G.T  # (chunk, G)
        rows = torch.as_tensor(trials.probe[lo:hi] - start, device=device)
        pos[lo:hi] = S[rows, torch.as_tensor(trials.true[lo:hi], device=device)].cpu().numpy()
        ii = trials.imposters[lo:hi]
        vals = S[rows[:, None], torch.as_tensor(np.maximum(ii, 0), device=device)].cpu().numpy()
        imp[lo:hi] = np.where(ii >= 0, vals, np.nan)
    return pos, imp


def matching_curve(pos: np.ndarray, imp: np.ndarray, n_max: int | None = None) -> dict[int, float]:
    """1:N matching accuracy for N = 2..n_max (Fig. 2.3): fraction of trials with ``pos > max(imp[:, :N-1])``.

    pos: (T,), imp: (T, K) with NaN for missing imposters; trials lacking N-1 imposters are left out for that N.
    """
    K = imp.shape[1]
    n_max = K + 1 if n_max is None else min(n_max, K + 1)
    filled = np.where(np.isnan(imp), -np.inf, imp)
    best = np.maximum.accumulate(filled, axis=1)  # (T, K) max of the first c+1 imposters
    have = np.cumsum(~np.isnan(imp), axis=1)
    out = {}
    for n in range(2, n_max + 1):
        ok = have[:, n - 2] == n - 1
        out[n] = float(np.mean(pos[ok] > best[ok, n - 2])) if ok.any() else float("nan")
    return out


def eer(pos: np.ndarray, neg: np.ndarray) -> float:
    """Equal error rate (Table 2.5) from matched (n1,) and mismatched (n0,) scores; accept when ``score >= t``.

    Thresholds are the observed scores; at each, FAR = frac(neg >= t), FRR = frac(pos < t). Returns
    (FAR + FRR) / 2 at the threshold minimising |FAR - FRR| (the lowest such threshold).
    """
    pos = np.asarray(pos, np.float64)
    neg = np.asarray(neg, np.float64)
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    thr = np.unique(np.concatenate([pos, neg]))
    sp, sn = np.sort(pos), np.sort(neg)
    frr = np.searchsorted(sp, thr, "left") / len(sp)
    far = 1.0 - np.searchsorted(sn, thr, "left") / len(sn)
    i = int(np.argmin(np.abs(far - frr)))
    return float((far[i] + frr[i]) / 2)


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """ROC area (Table 2.7): P(pos > neg) + P(pos == neg) / 2, from midranks (Mann-Whitney U)."""
    pos = np.asarray(pos, np.float64)
    neg = np.asarray(neg, np.float64)
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    ranks = stats.rankdata(np.concatenate([pos, neg]))
    u = ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


def _ap_ranked_numpy(rel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row AP sums and relevant counts from a (Q, G) bool relevance matrix in ranked order.

    AP sum of row i = sum over relevant positions r of hits_i(r) / (r + 1), hits_i(r) = relevant items in [0, r].
    """
    hits = np.cumsum(rel, axis=1, dtype=np.int32)
    hits *= rel
    inv_rank = 1.0 / np.arange(1, rel.shape[1] + 1, dtype=np.float64)
    return hits.astype(np.float64) @ inv_rank, np.count_nonzero(rel, axis=1)


def _ap_ranked_torch(rel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Same as ``_ap_ranked_numpy`` with dense torch ops (for GPU)."""
    r = rel.to(torch.float64)
    rank = torch.arange(1, rel.shape[1] + 1, device=rel.device, dtype=torch.float64)
    return (r * torch.cumsum(r, 1) / rank).sum(1), r.sum(1)


def mean_average_precision(probe_emb, gallery_emb, probe_labels: Mapping[str, np.ndarray],
                           gallery_labels: Mapping[str, np.ndarray], chunk: int = 256,
                           device: str | torch.device = "cpu") -> dict[str, float]:
    """Retrieval mAP (Table 2.6) for several label kinds at once (one sort per probe chunk, shared).

    probe_emb: (P, d); gallery_emb: (G, d); probe_labels[name]: (P,), gallery_labels[name]: (G,) label values
    (coded jointly here). For each probe the gallery is ranked by descending cosine score (``S = P_chunk @ G.T``,
    a (chunk, G) block); AP = mean over relevant items of (relevant items ranked at or above it) / (its rank).
    Probes with no relevant gallery item for a label are left out of that label's mean. On CPU the ranking uses
    numpy's (SIMD) argsort; exact ties between scores are ordered arbitrarily but deterministically.
    """
    device = torch.device(device)
    Pm = normalize(_as_tensor(probe_emb, device))
    Gm = normalize(_as_tensor(gallery_emb, device))
    coded = {k: [c.astype(np.int32) for c in encode_labels(probe_labels[k], gallery_labels[k])]
             for k in probe_labels}
    sums = {k: 0.0 for k in coded}
    counts = {k: 0 for k in coded}
    on_cpu = device.type == "cpu"
    gal = {k: (gl if on_cpu else torch.as_tensor(gl, device=device)) for k, (_, gl) in coded.items()}
    for start in range(0, Pm.shape[0], chunk):
        S = Pm[start:start + chunk] @ Gm.T  # (chunk, G)
        if on_cpu:
            order = np.argsort(-S.numpy(), axis=1)  # (chunk, G) gallery indices, best first
        else:
            order = torch.sort(S, dim=1, descending=True).indices
        for k, (ql, _) in coded.items():
            q = ql[start:start + chunk]
            if on_cpu:
                ap, n_rel = _ap_ranked_numpy(gal[k][order] == q[:, None])
            else:
                ap, n_rel = (t.cpu().numpy() for t in _ap_ranked_torch(
                    gal[k][order] == torch.as_tensor(q, device=device)[:, None]))
            ok = n_rel > 0
            sums[k] += float((ap[ok] / n_rel[ok]).sum())
            counts[k] += int(ok.sum())
    return {k: (sums[k] / counts[k] if counts[k] else float("nan")) for k in coded}


def prevalence(probe_labels: np.ndarray, gallery_labels: np.ndarray) -> float:
    """Mean over probes of the fraction of relevant gallery items: the mAP of a random ranking (approx.)."""
    q, g = encode_labels(probe_labels, gallery_labels)
    counts = np.bincount(g, minlength=int(max(q.max(initial=0), g.max(initial=0))) + 1)
    frac = counts[q] / max(len(g), 1)
    return float(frac[frac > 0].mean()) if (frac > 0).any() else float("nan")


def classification_accuracy(logits_or_pred, labels) -> float:
    """Covariate classification accuracy (Table 2.3). logits (n, C) or predictions (n,); labels (n,) ints."""
    x = np.asarray(logits_or_pred)
    pred = x.argmax(1) if x.ndim == 2 else x
    y = np.asarray(labels)
    return float(np.mean(pred == y)) if len(y) else float("nan")


# --------------------------------------------------------------------------------------------------------------
# published trial lists


def list_matching_accuracy(probe_emb, gallery_emb, probe_idx: np.ndarray, true_idx: np.ndarray,
                           imposter_idx: np.ndarray, device: str | torch.device = "cpu") -> float:
    """1:2 accuracy over given index triplets (T,) each, e.g. the published matching lists."""
    P = normalize(_as_tensor(probe_emb, device))
    G = normalize(_as_tensor(gallery_emb, device))
    p = torch.as_tensor(np.asarray(probe_idx), device=P.device)
    s_true = (P[p] * G[torch.as_tensor(np.asarray(true_idx), device=P.device)]).sum(1)
    s_imp = (P[p] * G[torch.as_tensor(np.asarray(imposter_idx), device=P.device)]).sum(1)
    return float((s_true > s_imp).double().mean())


def list_verification(voice_emb, face_emb, voice_idx: np.ndarray, face_idx: np.ndarray, label: np.ndarray,
                      device: str | torch.device = "cpu") -> dict[str, float]:
    """EER and AUC over given (voice, face, same?) pairs (T,) each, e.g. the published verification lists."""
    V = normalize(_as_tensor(voice_emb, device))
    F = normalize(_as_tensor(face_emb, device))
    vi = torch.as_tensor(np.asarray(voice_idx), device=V.device)
    fi = torch.as_tensor(np.asarray(face_idx), device=V.device)
    s = (V[vi] * F[fi]).sum(1).cpu().numpy()
    lab = np.asarray(label).astype(bool)
    return {"eer": eer(s[lab], s[~lab]), "auc": auc(s[lab], s[~lab])}


# --------------------------------------------------------------------------------------------------------------
# the whole suite


@dataclass(frozen=True)
class Side:
    """One modality's test items: embeddings (n, d) and per-item labels (identity, gender, nationality) (n,)."""

    emb: np.ndarray | torch.Tensor
    identity: np.ndarray
    gender: np.ndarray
    nationality: np.ndarray

    def covariate(self, name: str) -> np.ndarray:
        return np.asarray(getattr(self, name))


def matching_metrics(probe: Side, gallery: Side, direction: str, strata: Sequence[str] = ("U", "G", "N", "GN"),
                     n_max: int = 10, seed: int = 0, curve_strata: Sequence[str] = ("U", "G"),
                     verification_strata: Sequence[str] = ("U", "G", "N", "GN"), chunk: int = 512,
                     device: str | torch.device = "cpu") -> dict[str, float]:
    """1:2, 1:N and verification for one direction (``v2f`` or ``f2v``), every stratum (Tables 2.4, 2.5, Fig. 2.3).

    Keys: ``match_{dir}_{S}``, ``match1N_{dir}_{S}_N{n}`` (S in ``curve_strata``), ``eer_{S}``/``auc_{S}`` (and
    ``n_trials_{dir}_{S}``). Each stratum uses its own generator seeded by (seed, direction, stratum).
    """
    pid, gid = encode_labels(probe.identity, gallery.identity)
    pairs = positive_pairs(pid, gid)
    out: dict[str, float] = {}
    for si, s in enumerate(strata):
        names = STRATA[s]
        if names:
            pk, gk = stratum_codes([probe.covariate(n) for n in names], [gallery.covariate(n) for n in names])
        else:
            pk = gk = None
        rng = np.random.default_rng([seed, 0 if direction == "v2f" else 1, si])
        trials = make_trials(pid, gid, pk, gk, n_imposters=n_max - 1, seed=rng, pairs=pairs)
        pos, imp = trial_scores(probe.emb, gallery.emb, trials, chunk=chunk, device=device)
        curve = matching_curve(pos, imp, n_max)
        out[f"match_{direction}_{s}"] = curve[2]
        out[f"n_trials_{direction}_{s}"] = int((~np.isnan(imp[:, 0])).sum())
        if s in curve_strata:
            out.update({f"match1N_{direction}_{s}_N{n}": v for n, v in curve.items()})
        if s in verification_strata:
            ok = ~np.isnan(imp[:, 0])
            tag = "" if direction == "v2f" else "_f2v"
            out[f"eer_{s}{tag}"] = eer(pos[ok], imp[ok, 0])
            out[f"auc_{s}{tag}"] = auc(pos[ok], imp[ok, 0])
    return out


def retrieval_metrics(probe: Side, gallery: Side, direction: str, chunk: int = 256,
                      device: str | torch.device = "cpu") -> dict[str, float]:
    """mAP for ID, gender, nationality (Table 2.6): ``map_{dir}_{id,gender,nationality}`` (+ ``chance_map_*``)."""
    names = {"id": "identity", "gender": "gender", "nationality": "nationality"}
    res = mean_average_precision(probe.emb, gallery.emb, {k: probe.covariate(v) for k, v in names.items()},
                                 {k: gallery.covariate(v) for k, v in names.items()}, chunk=chunk, device=device)
    out = {f"map_{direction}_{k}": v for k, v in res.items()}
    out.update({f"chance_map_{direction}_{k}": prevalence(probe.covariate(v), gallery.covariate(v))
                for k, v in names.items()})
    return out


def cross_modal_suite(voice: Side, face: Side, seed: int = 0, n_max: int = 10,
                      strata: Sequence[str] = ("U", "G", "N", "GN"), device: str | torch.device = "cpu",
                      retrieval: bool = True) -> dict[str, float]:
    """Every cross-modal metric of Sec. 2.3 for both directions as one flat dict (fractions in [0, 1])."""
    out: dict[str, float] = {}
    out.update(matching_metrics(voice, face, "v2f", strata, n_max, seed, device=device))
    out.update(matching_metrics(face, voice, "f2v", strata, n_max, seed, device=device))
    if retrieval:
        out.update(retrieval_metrics(voice, face, "v2f", device=device))
        out.update(retrieval_metrics(face, voice, "f2v", device=device))
    return out


METRICS: dict[str, Callable[..., dict[str, float]]] = {
    "matching": matching_metrics,
    "retrieval": retrieval_metrics,
    "cross_modal": cross_modal_suite,
}
"""Registry: name -> function returning a flat ``{metric_name: value}`` dict."""
