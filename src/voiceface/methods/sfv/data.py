"""SfV data (Sec. 5.3): triplets (voice recording, neutral 3D face, AMs), splits, training crops, test segments.

Sources:

* ``from_world(WORLD)``: the simulated world (default): mesh items ``meshes/<id>.npz`` (vertices, ams) and the
  identity's voice items.
* ``from_csv(CSV)``: a real adapter for paired recordings and scans. Columns ``voice, mesh, identity, gender``
  (paths relative to the CSV); meshes in the morphable model's topology as OBJ / PLY / NPY (V, 3), or landmark files
  (``.lmk.npy`` / ``.lmk.txt``, (L, 3)); AMs measured with ``measure`` (default: ``voiceface.face3d.anthropometry``).
* ``synthetic(...)``: a small generated set with a known voice-AM link, for tests and development.

Voices are held in the project's one voice bank, ``data.loaders.VoiceBank`` (in memory, packed into one
(F_total, n_mels) array with per-recording offsets), so crops and segments are gathered with one fancy index (no
loops over samples). A recording that cannot be read is skipped and recorded in the bank's failures (``engine.fit``
logs and counts it as a ``bad_input`` of the run); the person keeps their other recordings.
"""
from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ...data.loaders import VoiceBank
from ...errors import InputError

log = logging.getLogger(__name__)
MeasureFn = Callable[[torch.Tensor], torch.Tensor]   # (..., V, 3) -> (..., A), differentiable


@dataclass
class Triplets:
    """P people with R_tot recordings. Arrays are numpy; ``measure`` maps shapes (..., V, 3) to AMs (..., A).

    identity: (P,) str; gender: (P,) 'm'/'f'; ams: (P, A) raw AMs; vertices: (P, V, 3) neutral shapes;
    voices: the R_tot recordings' (T_r, n_mels) float32 features (an in-memory ``VoiceBank``); rec_person: (R_tot,)
    int64 person of each recording.
    truth: optional ground truth per gender {'m': (A,), 'f': (A,)}: 1 the voice carries the AM, 0 it does not,
    -1 undecided (left out of recall / false-positive rate); truth_r2: the generator's population R^2 per AM.
    """

    identity: np.ndarray
    gender: np.ndarray
    ams: np.ndarray
    vertices: np.ndarray
    voices: VoiceBank
    rec_person: np.ndarray
    am_names: tuple[str, ...]
    am_regions: tuple[str, ...]
    measure: MeasureFn
    truth: dict[str, np.ndarray] = field(default_factory=dict)
    truth_r2: dict[str, np.ndarray] = field(default_factory=dict)
    vertex_regions: dict[str, np.ndarray] = field(default_factory=dict)   # region -> (V,) bool vertex mask
    am_landmarks: np.ndarray | None = None   # (65,) vertex indices of Fig. 5.2's landmarks for Table 5.1 AMs
    feat_stats: np.ndarray | None = None     # (2, F) global per-bin mean / std (feature_norm 'global')

    @property
    def n_ams(self) -> int:
        return self.ams.shape[1]

    @property
    def rec_len(self) -> np.ndarray:
        """(R_tot,) frames of each recording."""
        return self.voices.lengths

    def subset(self, people: np.ndarray) -> "Triplets":
        """Triplets of the given people (indices into this set), their recordings a view of the same bank."""
        people = np.asarray(people)
        remap = np.full(len(self.identity), -1)
        remap[people] = np.arange(len(people))
        keep = remap[self.rec_person] >= 0
        return Triplets(self.identity[people], self.gender[people], self.ams[people], self.vertices[people],
                        self.voices.subset(np.flatnonzero(keep)), remap[self.rec_person[keep]],
                        self.am_names, self.am_regions, self.measure, self.truth, self.truth_r2,
                        self.vertex_regions, self.am_landmarks, self.feat_stats)


# ---------------------------------------------------------------------------------------------------- features
def voice_features(path: str | os.PathLike, max_s: float | None = None, norm: str = "utterance") -> np.ndarray:
    """(T, 64) log-mel of a recording (``voiceface.audio``), per-bin normalised over the utterance when
    ``norm == 'utterance'`` (Sec. 5.3), raw log-mel when ``norm == 'none'``."""
    from ...audio.features import cmvn, logmel
    from ...audio.io import load_audio

    x = load_audio(path)
    if max_s is not None:
        x = x[: int(max_s * 16000)]
    feat = logmel(x)
    return cmvn(feat) if norm == "utterance" else feat


def _bank(feats: Sequence[np.ndarray], norm: str = "utterance", stats: np.ndarray | None = None
          ) -> tuple[VoiceBank, np.ndarray | None]:
    """An in-memory ``VoiceBank`` of (T_i, F) features; ``norm == 'global'`` normalises each bin over the whole
    bank (the features were read un-normalised; ``stats``: a run's (2, F) mean / std instead) and also returns the
    (2, F) mean / std used, else None."""
    bank = VoiceBank.from_arrays(feats)
    if norm == "global":
        if stats is None:
            stats = np.stack([bank.packed.mean(0), bank.packed.std(0) + 1e-5])       # (2, F)
        bank.packed = ((bank.packed - stats[0]) / stats[1]).astype(np.float32)
        return bank, stats
    return bank, None


def _read_voices(paths: Sequence[str | os.PathLike], max_s: float | None, norm: str
                 ) -> tuple[list[np.ndarray], list[int], list[tuple[str, str]]]:
    """Features of each readable recording, the positions of those read, and (path, message) of the others."""
    mode = _read_norm(norm)
    feats, ok, failed = [], [], []
    for k, path in enumerate(paths):
        try:
            feats.append(voice_features(path, max_s, mode))
            ok.append(k)
        except InputError as e:
            log.warning("skipping %s", e)
            failed.append((str(path), str(e)))
    return feats, ok, failed


def _read_norm(norm: str) -> str:
    if norm not in ("utterance", "global"):
        raise InputError(None, f"feature_norm must be 'utterance' or 'global', got {norm!r}")
    return "utterance" if norm == "utterance" else "none"


def _default_measure(n_vertices: int | None = None) -> tuple[MeasureFn, tuple[str, ...], tuple[str, ...]]:
    """Table 5.1 AMs (``face3d.anthropometry``) of landmark sets (..., 65, 3), or of full meshes (..., V, 3) in the
    built-in model's topology (its AM landmark vertices are gathered first)."""
    from ...face3d import anthropometry as am
    from ...face3d.landmarks import NUM_AM_LANDMARKS

    names, regions = tuple(am.AM_NAMES), tuple(am.AM_REGIONS)
    if n_vertices is None or n_vertices == NUM_AM_LANDMARKS:
        return am.measure, names, regions
    idx = torch.as_tensor(np.asarray(_model_for(n_vertices).am_landmarks), dtype=torch.long)

    def measure(v: torch.Tensor) -> torch.Tensor:
        return am.measure(v[..., idx, :])
    return measure, names, regions


def _landmark_measure(landmarks: np.ndarray) -> tuple[MeasureFn, tuple[str, ...], tuple[str, ...]]:
    """Table 5.1 AMs of meshes (..., V, 3) whose Fig. 5.2 landmarks are the vertices ``landmarks`` (65,)."""
    from ...face3d import anthropometry as am

    idx = torch.as_tensor(landmarks, dtype=torch.long)

    def measure(v: torch.Tensor) -> torch.Tensor:
        return am.measure(v[..., idx, :])
    return measure, tuple(am.AM_NAMES), tuple(am.AM_REGIONS)


def _model_for(n_vertices: int):
    from ...face3d import builtin_model

    model = builtin_model()
    if model.num_vertices != n_vertices:
        raise InputError(None, f"meshes have {n_vertices} vertices but the built-in model has "
                               f"{model.num_vertices}: give meshes in the model's topology or 65-landmark files")
    return model


def _landmark_index(n_vertices: int) -> np.ndarray:
    """(65,) vertex indices of the AM landmarks: the built-in model's, or 0..64 for landmark sets."""
    if n_vertices == 65:
        return np.arange(65)
    return np.asarray(_model_for(n_vertices).am_landmarks, np.int64)


def nose_mask(template: np.ndarray, am_landmarks: np.ndarray | None = None) -> np.ndarray:
    """(V,) vertices of the nose region of a template (V, 3): those whose nearest AM landmark is a nose landmark
    (27-38 of Fig. 5.2) and that lie within the nose landmarks' extent around their centroid."""
    from ...face3d.landmarks import AM_LANDMARK_GROUPS

    lo, hi = AM_LANDMARK_GROUPS["nose"]
    lm = template[am_landmarks] if am_landmarks is not None else template
    nose = np.zeros(len(lm), bool)
    nose[lo - 1:hi] = True
    nearest = np.argmin(((template[:, None, :] - lm[None]) ** 2).sum(-1), axis=1)     # (V,)
    centre = lm[nose].mean(0)
    reach = np.linalg.norm(lm[nose] - centre, axis=1).max() * 1.1
    return nose[nearest] & (np.linalg.norm(template - centre, axis=1) <= reach)


# ---------------------------------------------------------------------------------------------------- sources
def from_world(world: str | os.PathLike, norm: str = "utterance", max_s: float = 60.0) -> Triplets:
    """Triplets from a simulated world folder (manifest mesh + voice items; meshes/<id>.npz: vertices, ams), with
    the world's ground truth of which AMs the voice carries (world.json). The AM landmark vertices come from
    world.json ``model.am_landmarks`` when recorded there, else from the built-in model (same vertex count)."""
    from ...data.manifest import read_manifest
    from .. import resolve_data

    manifest_path = resolve_data(world)
    man = read_manifest(manifest_path)
    meshes = {it.identity: it for it in man if it.modality == "mesh"}
    if not meshes:
        raise InputError(world, "no mesh items in the manifest: SfV needs voices paired with 3D faces")
    voices: dict[str, list] = {}
    for it in man:
        if it.modality == "voice" and it.identity in meshes:
            voices.setdefault(it.identity, []).append(it.path)
    paths = [(ident, path) for ident in sorted(voices) for path in voices[ident]]
    feats, ok, failed = _read_voices([path for _, path in paths], max_s, norm)
    ids = sorted({paths[k][0] for k in ok})                   # people with at least one readable recording
    index = {ident: p for p, ident in enumerate(ids)}
    person = [index[paths[k][0]] for k in ok]
    verts, ams = [], []
    for ident in ids:
        with np.load(meshes[ident].path) as z:
            verts.append(np.asarray(z["vertices"], np.float32))
            ams.append(np.asarray(z["ams"], np.float64))
    vertices = np.stack(verts)
    wj = Path(manifest_path).parent / "world.json"
    info = json.loads(wj.read_text()) if wj.is_file() else {}
    recorded = (info.get("model") or {}).get("am_landmarks")
    landmarks = np.asarray(recorded, np.int64) if recorded else _landmark_index(vertices.shape[1])
    measure, names, regions = _landmark_measure(landmarks)
    bank, fstats = _bank(feats, norm)
    bank.record_failures(failed)
    out = Triplets(np.array(ids), np.array([meshes[i].gender for i in ids]), np.stack(ams), vertices,
                   bank, np.array(person), names, regions, measure,
                   vertex_regions={"nose": nose_mask(vertices.mean(0), landmarks)}, am_landmarks=landmarks,
                   feat_stats=fstats)
    if info:
        out.truth, out.truth_r2 = world_truth(info, names)
    return out


def world_truth(info: dict, am_names: Sequence[str]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per gender, the simulation's ground truth (world.json ``ground_truth``): truth[g] (A,) is 1 for the AMs the
    voice carries (population R^2 given the voice-linked face features >= the world's ``linked_r2``), 0 for those
    it does not (R^2 < ``unlinked_r2``), -1 in between (left out of recall and false-positive rate)."""
    gt = info.get("ground_truth") or {}
    truth, r2 = {}, {}
    for g in ("m", "f"):
        if g not in gt:
            continue
        linked, unlinked = set(gt[g].get("linked_ams", [])), set(gt[g].get("unlinked_ams", []))
        truth[g] = np.array([1 if n in linked else 0 if n in unlinked else -1 for n in am_names])
        if "r2_voice" in gt[g]:
            r2[g] = np.array([gt[g]["r2_voice"].get(n, np.nan) for n in am_names], np.float64)
    return truth, r2


def _read_shape(path: Path) -> np.ndarray:
    name = path.name.lower()
    if name.endswith(".npy"):
        pts = np.load(path)
    elif name.endswith(".txt") or name.endswith(".csv"):
        pts = np.loadtxt(path, delimiter="," if name.endswith(".csv") else None)
    elif name.endswith(".obj"):   # every 'v' line, in order (loaders may drop vertices no face uses)
        with open(path, encoding="utf-8", errors="replace") as f:
            rows = [line.split()[1:4] for line in f if line.startswith("v ")]
        try:
            pts = np.array(rows, dtype=np.float64)
        except ValueError:
            raise InputError(path, "malformed vertex line in OBJ") from None
    elif name.endswith(".ply"):
        import trimesh

        pts = np.asarray(trimesh.load(path, process=False, force="mesh").vertices)
    else:
        raise InputError(path, "unknown shape format (use OBJ, PLY, NPY, or a landmark .txt/.csv/.npy)")
    pts = np.asarray(pts, np.float32)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise InputError(path, f"expected (V, 3) points, got shape {pts.shape}")
    return pts


def from_csv(path: str | os.PathLike, measure: MeasureFn | None = None, am_names: Sequence[str] | None = None,
             am_regions: Sequence[str] | None = None, norm: str = "utterance", max_s: float = 60.0) -> Triplets:
    """Real adapter: CSV with columns voice, mesh, identity, gender (one row per recording; rows of one identity
    share its mesh). Unreadable rows are logged and skipped; AMs are measured from the shapes with ``measure``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "manifest not found")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    need = {"voice", "mesh", "identity", "gender"}
    if not rows or not need <= set(rows[0]):
        raise InputError(path, f"needs columns {sorted(need)}")
    measure_given = measure
    if measure is None:
        first = _read_shape(path.parent / rows[0]["mesh"])
        measure, am_names, am_regions = _default_measure(len(first))
    shapes: dict[str, np.ndarray] = {}
    genders: dict[str, str] = {}
    feats, person_ids, failed = [], [], []
    for row in rows:
        ident = row["identity"]
        try:
            if ident not in shapes:
                shapes[ident] = _read_shape(path.parent / row["mesh"])
                genders[ident] = row["gender"].strip().lower()[:1]
            feats.append(voice_features(path.parent / row["voice"], max_s, _read_norm(norm)))
            person_ids.append(ident)
        except InputError as e:   # one bad file is reported and skipped
            log.warning("skipping %s", e)
            failed.append((str(path.parent / row["voice"]), str(e)))
    ids = sorted(set(person_ids))
    if not ids:
        raise InputError(path, "no usable voice/shape pairs")
    index = {i: n for n, i in enumerate(ids)}
    verts = np.stack([shapes[i] for i in ids])
    with torch.no_grad():
        ams = measure(torch.from_numpy(verts).double()).numpy()
    bank, fstats = _bank(feats, norm)
    bank.record_failures(failed)
    names = tuple(am_names or (f"am{k}" for k in range(ams.shape[1])))
    regions = tuple(am_regions or ("face",) * ams.shape[1])
    default = measure_given is None
    return Triplets(np.array(ids), np.array([genders[i] for i in ids]), ams, verts, bank,
                    np.array([index[i] for i in person_ids]), names, regions, measure,
                    vertex_regions={"nose": nose_mask(verts.mean(0), _landmark_index(verts.shape[1]))} if default
                    else {}, am_landmarks=_landmark_index(verts.shape[1]) if default else None, feat_stats=fstats)


# ---------------------------------------------------------------------------------------------------- synthetic
def pair_measure(pairs: np.ndarray) -> MeasureFn:
    """AMs as distances between point pairs (A, 2): (..., V, 3) -> (..., A). Used by the synthetic set."""
    a, b = torch.as_tensor(pairs[:, 0]), torch.as_tensor(pairs[:, 1])

    def measure(v: torch.Tensor) -> torch.Tensor:
        return (v[..., a, :] - v[..., b, :]).norm(dim=-1)
    return measure


def synthetic(n_people: int = 160, n_ams: int = 12, n_linked: int = 4, coupling: float = 1.0, rec_s: float = 4.0,
              recs: int = 2, n_mels: int = 64, seed: int = 0, noise: float = 1.0) -> Triplets:
    """A generated triplet set with a known link: shapes = template + basis @ controls (6 points, 8 controls); the
    first ``n_linked`` controls shape AMs 0..n_linked-1 and (times ``coupling``) the voice's spectral envelope;
    gender shifts control 7 and the voice's tilt. truth[g] marks the AMs with within-gender population R^2 > 0.05
    given the linked controls (estimated on 20000 generated people), 0 those with R^2 < 0.01, -1 in between."""
    from ...metrics.stats import population_r2

    rng = np.random.default_rng(seed)
    n_ctrl, n_pts = 8, 2 * n_ams
    template = rng.normal(0, 1, (n_pts, 3)) * 3.0
    basis = np.zeros((n_pts, 3, n_ctrl))
    for k in range(n_ams):   # AM k = distance of points 2k, 2k+1; moved along x by control k (or a null control)
        basis[2 * k + 1, 0, k if k < n_linked else 4 + k % 3] = 1.0
        basis[2 * k + 1, 1, 7] = 0.5
    template[1::2] = template[0::2] + np.array([4.0, 0.0, 0.0])
    pairs = np.stack([np.arange(0, n_pts, 2), np.arange(1, n_pts, 2)], 1)
    measure = pair_measure(pairs)

    def people(n, r):
        g = np.where(r.random(n) < 0.5, "m", "f")
        c = r.normal(0, 1, (n, n_ctrl))
        c[:, 7] += np.where(g == "m", 1.5, -1.5)
        v = template + np.einsum("pdc,nc->npd", basis, c)
        return g, c, v.astype(np.float32)

    gender, ctrl, verts = people(n_people, rng)
    ams = measure(torch.from_numpy(verts).double()).numpy()
    patterns = rng.normal(0, 1, (n_linked, n_mels))
    tilt = np.linspace(-1, 1, n_mels)
    frames = int(rec_s * 100)
    person = np.repeat(np.arange(n_people), recs)
    env = coupling * ctrl[person, :n_linked] @ patterns + np.where(gender[person] == "m", 1.0, -1.0)[:, None] * tilt
    bank = (env[:, None, :] + rng.normal(0, noise, (len(person), frames, n_mels))).reshape(-1, n_mels)
    # ground truth by the generator: within-gender R^2 of each AM given the voice-linked controls
    pg, pc, pv = people(20000, np.random.default_rng(seed + 1))
    pa = measure(torch.from_numpy(pv).double()).numpy()
    truth, r2 = {}, {}
    for g in ("m", "f"):
        sel = pg == g
        r2[g] = population_r2(pa[sel], pc[sel, :n_linked]) if coupling > 0 else np.zeros(n_ams)
        truth[g] = np.where(r2[g] > 0.05, 1, np.where(r2[g] < 0.01, 0, -1))
    voices = VoiceBank.from_arrays(list(bank.astype(np.float32).reshape(len(person), frames, n_mels)))
    return Triplets(np.array([f"s{p:04d}" for p in range(n_people)]), gender, ams, verts, voices, person,
                    tuple(f"d{2*k}-{2*k+1}" for k in range(n_ams)),
                    tuple("nose" if k % 3 == 0 else "mouth" if k % 3 == 1 else "eyes" for k in range(n_ams)),
                    measure, truth, r2, {"nose": np.repeat(np.arange(n_ams) % 3 == 0, 2)})


# ---------------------------------------------------------------------------------------------------- splits
@dataclass(frozen=True)
class Splits:
    """Algorithm 2 splits of one gender's people (indices into the Triplets): a fixed D_e (n_e,) and, per repeat,
    D_t (N, n_t), D_v1 (N, n_v1), D_v2 (N, n_v2) drawn at random from the remaining pool."""

    test: np.ndarray
    train: np.ndarray
    val1: np.ndarray
    val2: np.ndarray


def make_splits(people: np.ndarray, repeats: int, ratio: Sequence[int] = (7, 1, 1, 1), seed: int = 0) -> Splits:
    """Algorithm 2 line 1 (fixed D_e) and line 4 (N random splits of the rest), proportions ``ratio``."""
    people = np.asarray(people)
    rng = np.random.default_rng(seed)
    n = len(people)
    r = np.asarray(ratio, float) / sum(ratio)
    n_e = max(int(round(n * r[3])), 1)
    n_v1 = max(int(round(n * r[1])), 2)
    n_v2 = max(int(round(n * r[2])), 2)
    perm = rng.permutation(people)
    test, pool = np.sort(perm[:n_e]), perm[n_e:]
    if len(pool) - n_v1 - n_v2 < 2:
        raise InputError(None, f"too few people ({n}) for a 7/1/1/1 split")
    keys = rng.random((repeats, len(pool)))
    order = pool[np.argsort(keys, axis=1)]                     # (N, n_pool) one permutation per repeat
    n_t = len(pool) - n_v1 - n_v2
    return Splits(test, order[:, :n_t], order[:, n_t:n_t + n_v1], order[:, n_t + n_v1:])


# ---------------------------------------------------------------------------------------------------- batches
def crop_batch(data: Triplets, train: np.ndarray, n_train: np.ndarray, batch: int, crop_frames: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random training crops for M networks at once. train: (M, n_max) person indices per network (row m valid up
    to n_train[m]); n_train: (M,).

    Returns x (B, M, n_mels, crop_frames) features and people (B, M) whose AMs are the targets. A recording shorter
    than the crop is read cyclically.
    """
    m = train.shape[0]
    col = (rng.random((batch, m)) * n_train[None, :]).astype(np.int64)              # (B, M)
    people = train[np.arange(m)[None, :], col]                                      # (B, M)
    table, counts = group_table(data.rec_person, len(data.identity))                # (P, R_max), (P,)
    pick = (rng.random((batch, m)) * counts[people]).astype(int)                    # (B, M)
    rec = table[people, pick]                                                       # (B, M) recording ids
    length = data.rec_len[rec]
    # Sec. 5.3 crops: start uniform in [0, T - L) (0 when shorter; read cyclically), gathered by the voice bank
    start = (rng.random((batch, m)) * np.maximum(length - crop_frames, 1)).astype(np.int64)
    x = data.voices.frames(rec, start, crop_frames)                                 # (B, M, T, n_mels)
    return np.ascontiguousarray(x.transpose(0, 1, 3, 2)), people


def group_table(owner: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Members of each group, vectorised: owner (S,) group ids -> (G, S_max) table of member indices (-1 padding)
    and (G,) counts."""
    order = np.argsort(owner, kind="stable")
    counts = np.bincount(owner, minlength=n_groups)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(owner)) - first[owner[order]]
    table = np.full((n_groups, max(int(counts.max(initial=0)), 1)), -1, np.int64)
    table[owner[order], rank] = order
    return table, counts


def pad_rows(rows: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Ragged index rows -> (M, n_max) table padded with each row's first entry, and (M,) lengths."""
    lens = np.array([len(r) for r in rows], np.int64)
    out = np.zeros((len(rows), lens.max()), np.int64)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
        out[i, len(r):] = r[0]
    return out, lens


def person_segments(owner: np.ndarray, n_people: int) -> tuple[np.ndarray, np.ndarray]:
    """Segment ids of each person: (P, S_p) table (-1 padding) and (P,) counts, from owner (S,) of ``segments``."""
    return group_table(owner, n_people)


def segments(data: Triplets, seg_frames: int, max_frames: int | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Whole recordings cut into consecutive segments of ``seg_frames`` (the last one read cyclically; a recording
    shorter than a segment gives one cyclic segment). Returns x (S, n_mels, seg_frames) and owner (S,) person ids.
    """
    length = data.rec_len if max_frames is None else np.minimum(data.rec_len, max_frames)
    n_seg = np.maximum(length // seg_frames, 1)
    rec = np.repeat(np.arange(len(length)), n_seg)                                # (S,)
    k = np.arange(len(rec)) - np.repeat(np.cumsum(n_seg) - n_seg, n_seg)          # segment number in recording
    x = data.voices.frames(rec, k * seg_frames, seg_frames, period=length[rec])     # (S, seg_frames, n_mels)
    return np.ascontiguousarray(x.transpose(0, 2, 1)), data.rec_person[rec]
