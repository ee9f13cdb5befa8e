"""How real does a simulated world look to pretrained judges? (``voiceface sim check WORLD``)

Two pretrained models the project wraps score the world's voices and faces exactly as they score real recordings
and photos, and the same four figures are computed on real samples (``../shared/data``) for comparison:

* GE2E speaker verification EER (``voiceface.audio.encoders.GE2EEncoder``, cosine scores): genuine pairs are two
  voices of one person from *different* recording sessions, impostor pairs are voices of two people; overall and
  within each gender (genuine pairs of that gender's people, impostor pairs of two people of that gender only).
* GE2E 1-NN speaker identification across sessions: each voice's nearest other voice by cosine, the query's own
  session (itself included) excluded from its gallery.
* dlib descriptor (``voiceface.face.descriptors.FaceDescriber``, Euclidean distance) leave-one-out 1-NN face
  identification, and face verification EER over all same- vs different-person pairs.

Real data: LibriSpeech test-other (10 speakers x 10 files, sex from ``SPEAKERS.TXT``) has no session labels, so
every file is its own session there (all pairs of different files); ORL faces are raw photos, described through
dlib's detector (images where it finds no face are skipped and counted).

``check_world`` returns one flat JSON-able dict (``world.voice_eer``, ``real.face_1nn``, counts, ``*.note`` when an
optional model is missing); ``check_table`` renders it as a Markdown table; ``store_check`` writes it into
``world.json`` under ``"check"``. Fractions are in [0, 1].
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError, MissingDependencyError
from ..metrics.matching import cosine_matrix, eer

REAL_VOICES = "librispeech_test_other"
REAL_FACES = "orl_faces"
GENDERS = ("m", "f")


# ---------------------------------------------------------------------------------------------------------------
# Metrics on a similarity matrix
# ---------------------------------------------------------------------------------------------------------------

def negative_distance(emb: np.ndarray) -> np.ndarray:
    """(n, d) descriptors -> (n, n) float64 minus Euclidean distances (higher = more alike)."""
    from ..face.descriptors import pairwise_distances

    return -pairwise_distances(emb)


def _session_codes(identity: np.ndarray, session: np.ndarray | None) -> np.ndarray:
    """(n,) int codes of (identity, session); without sessions every item is its own session."""
    if session is None:
        return np.arange(len(identity))
    keys = np.char.add(np.char.add(np.asarray(identity, dtype=str), "\x1f"), np.asarray(session, dtype=str))
    return np.unique(keys, return_inverse=True)[1]


def verification_eer(sim: np.ndarray, identity: Sequence, session: Sequence | None = None) -> dict:
    """EER over the unordered pairs i < j of a similarity matrix.

    Args:
        sim: (n, n) similarities (higher = same person more likely).
        identity: (n,) labels. session: (n,) session labels, or None (every item its own session).
    Returns:
        {"eer", "pos": genuine pairs (same identity, different session), "neg": impostor pairs (different identity)};
        eer is NaN when either kind is empty.
    """
    ident = np.asarray(identity)
    sess = _session_codes(ident, None if session is None else np.asarray(session))
    i, j = np.triu_indices(len(ident), 1)
    s = np.asarray(sim)[i, j]
    same = ident[i] == ident[j]
    pos = same & (sess[i] != sess[j])
    return {"eer": eer(s[pos], s[~same]), "pos": int(pos.sum()), "neg": int((~same).sum())}


def nn_identification(sim: np.ndarray, identity: Sequence, session: Sequence | None = None) -> dict:
    """1-NN identification: each item's most similar item outside its own session (itself included) in the set.

    Args:
        sim: (n, n) similarities. identity: (n,) labels. session: (n,) labels or None (leave-one-out).
    Returns:
        {"acc": fraction of queries whose neighbour has their identity, "queries": items with at least one
        same-identity item outside their session (the others are left out), "chance": mean fraction of such items
        in a query's gallery (the accuracy of a random neighbour)}.
    """
    ident = np.asarray(identity)
    sess = _session_codes(ident, None if session is None else np.asarray(session))
    excluded = sess[:, None] == sess[None, :]                        # (n, n), diagonal included
    same = (ident[:, None] == ident[None, :]) & ~excluded
    gallery = (~excluded).sum(1)
    ok = same.any(1) & (gallery > 0)
    if not ok.any():
        return {"acc": float("nan"), "queries": 0, "chance": float("nan")}
    nearest = np.where(excluded, -np.inf, np.asarray(sim, dtype=np.float64)).argmax(1)
    hit = ident[nearest] == ident
    return {"acc": float(hit[ok].mean()), "queries": int(ok.sum()),
            "chance": float((same.sum(1)[ok] / gallery[ok]).mean())}


def voice_metrics(emb: np.ndarray, identity: Sequence, gender: Sequence, session: Sequence | None = None) -> dict:
    """GE2E figures of one voice set: ``voice_eer`` (+ ``_m``, ``_f`` within gender), ``voice_1nn``, counts.

    emb: (n, d) embeddings; identity, gender: (n,) labels; session: (n,) labels or None (every file its own).
    """
    ident, gen = np.asarray(identity), np.asarray(gender)
    sess = None if session is None else np.asarray(session)
    sim = cosine_matrix(emb)
    v = verification_eer(sim, ident, sess)
    nn = nn_identification(sim, ident, sess)
    out = {"voice_eer": v["eer"], "voice_pos_pairs": v["pos"], "voice_neg_pairs": v["neg"],
           "voice_1nn": nn["acc"], "voice_1nn_queries": nn["queries"], "voice_1nn_chance": nn["chance"],
           "n_voices": int(len(ident)), "n_voice_people": int(len(np.unique(ident)))}
    for g in GENDERS:
        k = gen == g
        vg = verification_eer(sim[np.ix_(k, k)], ident[k], None if sess is None else sess[k])
        out[f"voice_eer_{g}"] = vg["eer"]
        out[f"voice_pos_pairs_{g}"] = vg["pos"]
        out[f"voice_neg_pairs_{g}"] = vg["neg"]
    return out


def face_metrics(desc: np.ndarray, identity: Sequence) -> dict:
    """dlib figures of one face set: ``face_1nn`` (leave-one-out), ``face_eer`` (all pairs), counts.

    desc: (n, 128) descriptors; identity: (n,) labels.
    """
    ident = np.asarray(identity)
    sim = negative_distance(desc)
    v = verification_eer(sim, ident)
    nn = nn_identification(sim, ident)
    return {"face_1nn": nn["acc"], "face_1nn_chance": nn["chance"], "face_eer": v["eer"],
            "face_pos_pairs": v["pos"], "face_neg_pairs": v["neg"], "n_faces": int(len(ident)),
            "n_face_people": int(len(np.unique(ident)))}


# ---------------------------------------------------------------------------------------------------------------
# Embedding files
# ---------------------------------------------------------------------------------------------------------------

def ge2e_embeddings(paths: Sequence, encoder=None) -> tuple[np.ndarray, np.ndarray]:
    """GE2E embeddings of audio files: VAD features and one whole-utterance embedding each.

    Returns (m, 256) float32 embeddings of the usable files and an (n,) bool mask of which files they are (a file
    the VAD finds no speech in is skipped). ``MissingDependencyError`` when resemblyzer's weights are absent.
    """
    import torch

    from ..audio.encoders import GE2EEncoder
    from ..audio.io import load_audio

    enc = encoder if encoder is not None else GE2EEncoder()
    embs, ok = [], np.zeros(len(paths), bool)
    for n, p in enumerate(paths):                 # one file at a time: utterances differ in length
        try:
            feats = enc.features(load_audio(p), path=p)          # (T, 40)
        except InputError:
            continue
        embs.append(enc.embed(torch.from_numpy(np.ascontiguousarray(feats.T))[None])[0].cpu().numpy())
        ok[n] = True
    return (np.stack(embs) if embs else np.zeros((0, 256), np.float32)), ok


def dlib_descriptors(paths: Sequence, aligned: bool, describer=None) -> tuple[np.ndarray, np.ndarray]:
    """dlib descriptors of image files: aligned crops (no detection) or raw photos (largest detected face).

    Returns (m, 128) float64 descriptors and an (n,) bool mask of the images described (raw photos where dlib
    finds no face are skipped). ``MissingDependencyError`` when dlib or its models are absent.
    """
    from ..face.descriptors import DESCRIPTOR_DIM, FaceDescriber
    from ..face.detect import load_image

    d = describer if describer is not None else FaceDescriber()
    descs, ok = [], np.zeros(len(paths), bool)
    for n, p in enumerate(paths):
        img = load_image(p)
        try:
            descs.append(d.describe_aligned(img, path=p) if aligned else d.describe(img, path=p))
        except InputError:
            if aligned:
                raise
            continue
        ok[n] = True
    return (np.stack(descs) if descs else np.zeros((0, DESCRIPTOR_DIM))), ok


# ---------------------------------------------------------------------------------------------------------------
# One data set (world split or real samples)
# ---------------------------------------------------------------------------------------------------------------

def _voices_part(paths, identity, gender, session, encoder) -> dict:
    try:
        emb, ok = ge2e_embeddings(paths, encoder)
    except MissingDependencyError as e:
        return {"voice_note": str(e)}
    sess = None if session is None else np.asarray(session)[ok]
    out = voice_metrics(emb, np.asarray(identity)[ok], np.asarray(gender)[ok], sess)
    out["n_voices_skipped"] = int((~ok).sum())
    return out


def _faces_part(paths, identity, aligned: bool, describer) -> dict:
    try:
        desc, ok = dlib_descriptors(paths, aligned, describer)
    except MissingDependencyError as e:
        return {"face_note": str(e)}
    out = face_metrics(desc, np.asarray(identity)[ok])
    out["n_faces_skipped"] = int((~ok).sum())
    return out


def _world_part(world, split: str, encoder, describer) -> dict:
    m = world.manifest
    v = m.select(modality="voice", split=split)
    f = m.select(modality="face", split=split)
    if not len(v) and not len(f):
        raise InputError(world.root, f"the world has no voices or faces in split {split!r}")
    out = _voices_part([it.path for it in v], [it.identity for it in v], [it.gender for it in v],
                       [it.session for it in v], encoder)
    out.update(_faces_part([it.path for it in f], [it.identity for it in f], True, describer))
    return out


def _real_part(root: Path, encoder, describer) -> dict:
    out: dict = {}
    vroot, froot = root / REAL_VOICES, root / REAL_FACES
    if vroot.is_dir():
        from ..data.samples import librispeech_sample

        items = list(librispeech_sample(vroot))
        out.update(_voices_part([it.path for it in items], [it.identity for it in items],
                                [it.gender for it in items], None, encoder))
    else:
        out["voice_note"] = f"{vroot} not found"
    if froot.is_dir():
        files = sorted(froot.glob("s*/*.pgm"))
        out.update(_faces_part(files, [p.parent.name for p in files], False, describer))
    else:
        out["face_note"] = f"{froot} not found"
    return out


def check_world(world, real_data: str | os.PathLike | None = None, split: str = "test", encoder=None,
                describer=None) -> dict:
    """The realism figures of a world's ``split`` (and of real samples in ``real_data``) as one flat dict.

    Args:
        world: a ``World`` (``voiceface.sim.load_world``) or its folder.
        real_data: folder holding ``librispeech_test_other/`` and ``orl_faces/`` (None: world only).
        split: the world's split to judge.
        encoder, describer: a ``GE2EEncoder`` / ``FaceDescriber`` to reuse (made here when None).
    Returns:
        ``{"split", "real_data", "seconds", "world.<figure>", "real.<figure>"}`` (``*.seconds``: time per part);
        figures are ``voice_eer``, ``voice_eer_m``, ``voice_eer_f``, ``voice_1nn``, ``face_1nn``, ``face_eer`` with
        their counts, or ``voice_note`` / ``face_note`` naming a missing optional model. ``InputError`` if ``world``
        is not a world.
    """
    from .world import World, load_world

    t0 = time.perf_counter()
    w = world if isinstance(world, World) else load_world(world)
    if describer is None:
        from ..face.descriptors import FaceDescriber
        describer = FaceDescriber()                     # lazy: loads dlib on first use, shared by both parts
    if encoder is None:
        from ..audio.encoders import GE2EEncoder
        try:
            encoder = GE2EEncoder()
        except MissingDependencyError:
            encoder = None                              # each part reports it
    out: dict = {"split": split, "real_data": None if real_data is None else str(real_data)}
    if real_data is not None and not Path(real_data).is_dir():
        out.update(real_data=None, real_note=f"real data folder {real_data} not found")
    out.update({f"world.{k}": v for k, v in _world_part(w, split, encoder, describer).items()})
    out["world.seconds"] = round(time.perf_counter() - t0, 2)
    if out["real_data"] is not None:
        t1 = time.perf_counter()
        out.update({f"real.{k}": v for k, v in _real_part(Path(real_data), encoder, describer).items()})
        out["real.seconds"] = round(time.perf_counter() - t1, 2)
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in out.items()}


# ---------------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------------

def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _cells(res: dict, side: str) -> list[str]:
    """The four cells of one column (``side`` = 'world' or 'real')."""
    g = lambda k: res.get(f"{side}.{k}")  # noqa: E731
    if g("voice_note"):
        voice = [f"n/a ({g('voice_note')})"] * 2
    else:
        voice = [f"{_pct(g('voice_eer'))} (m {_pct(g('voice_eer_m'))}, f {_pct(g('voice_eer_f'))}; "
                 f"{g('voice_pos_pairs')} genuine / {g('voice_neg_pairs')} impostor pairs)",
                 f"{_pct(g('voice_1nn'))} ({g('n_voices')} voices of {g('n_voice_people')} people; "
                 f"chance {_pct(g('voice_1nn_chance'))})"]
    if g("face_note"):
        face = [f"n/a ({g('face_note')})"] * 2
    else:
        found = (f"{g('n_faces')} of {g('n_faces') + g('n_faces_skipped')} faces found"
                 if g("n_faces_skipped") else f"{g('n_faces')} faces")
        face = [f"{_pct(g('face_1nn'))} ({found}, {g('n_face_people')} people; "
                f"chance {_pct(g('face_1nn_chance'))})",
                f"{_pct(g('face_eer'))} ({g('face_pos_pairs')} / {g('face_neg_pairs')} pairs)"]
    return voice + face


ROWS = ("GE2E speaker verification EER, voices of one person from different sessions (overall; m / f: impostors "
        "of the same gender only)",
        "GE2E 1-NN speaker identification across sessions (a query's own session is not in its gallery)",
        "dlib descriptor leave-one-out 1-NN face identification",
        "dlib face verification EER (all same- vs different-person pairs)")


def check_table(res: dict) -> str:
    """``check_world``'s dict as a Markdown table (one row per figure; a real-data column when it has one), with
    footnotes."""
    real = res.get("real_data") is not None
    head = ["", f"real data ({res['real_data']})"] if real else [""]
    head.append(f"the world's {res['split']} split")
    cols = [_cells(res, "real")] if real else []
    cols.append(_cells(res, "world"))
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r, label in enumerate(ROWS):
        lines.append("| " + " | ".join([label] + [c[r] for c in cols]) + " |")
    notes = []
    if real:
        notes.append(f"Real voices: LibriSpeech test-other ({REAL_VOICES}/), which has no session labels: its genuine "
                     "pairs and 1-NN galleries use every other file of the speaker. Real faces: ORL "
                     f"({REAL_FACES}/), raw photos through dlib's face detector.")
    else:
        notes.append("No real-data column: " + (res.get("real_note") or "not requested") + ".")
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


def store_check(world_root: str | os.PathLike, res: dict) -> Path:
    """Write ``res`` into ``WORLD/world.json`` under ``"check"`` (atomic rewrite); returns the path."""
    from .world import _write_json

    path = Path(world_root) / "world.json"
    info = json.loads(path.read_text())
    info["check"] = res
    _write_json(path, info)
    return path
