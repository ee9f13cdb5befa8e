"""Readers for the published VoxCeleb1/VGGFace cross-modal evaluation lists (``voxceleb1_eval_lists/``).

* Verification pairs (Learnable PINs, the lists behind thesis Table 2.7 AUCs), ``veriflist/veriflist_test_*.txt``:
  comma-separated with a header ``id,voice-speaker-id,face-speaker-id,label,voice-path,face-path``.
* 1:2 matching triplets (thesis Sec. 2.4.3, Table 2.4), ``matching/matching_{v2f,f2v}_{U,G}.csv``: space-separated
  despite the extension, no header: ``probe true imposter`` (U unstratified, G gender-stratified).

Listed paths are relative and name media that are not shipped (VoxCeleb1 audio, VGGFace/VoxCeleb1 face frames).
``map_paths`` finds them under a user's media root, trying the layouts the lists and the corpora use, and reports
how many exist, so the evaluation code can run on whatever part of the media a user has.
"""
from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, Mapping

import numpy as np

from ..errors import InputError

VERIF_HEADER = ("id", "voice-speaker-id", "face-speaker-id", "label", "voice-path", "face-path")


def _identity_of(paths: np.ndarray) -> np.ndarray:
    """First path component of each listed path (a name such as ``A.J._Buckley`` or an id such as ``id10002``)."""
    return np.array([p.split("/", 1)[0] for p in paths], dtype=object)


@dataclass(frozen=True)
class VerificationList:
    """Voice-face verification pairs; every array has shape (N,).

    ids: pair number; voice_speaker / face_speaker: integer speaker indices as published; labels: 1 same person,
    0 different (int8); voice_paths / face_paths: listed relative paths (object arrays of str).
    """

    ids: np.ndarray
    voice_speaker: np.ndarray
    face_speaker: np.ndarray
    labels: np.ndarray
    voice_paths: np.ndarray
    face_paths: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def voice_identities(self) -> np.ndarray:
        """(N,) identity name of each voice (first path component)."""
        return _identity_of(self.voice_paths)

    @property
    def face_identities(self) -> np.ndarray:
        """(N,) identity name of each face."""
        return _identity_of(self.face_paths)


@dataclass(frozen=True)
class MatchingList:
    """1:2 matching triplets; each array (N,) of relative paths (object arrays of str).

    direction: 'v2f' (voice probe, face gallery) or 'f2v'; stratified: True for gender-stratified (G) lists.
    """

    probes: np.ndarray
    trues: np.ndarray
    imposters: np.ndarray
    direction: str
    stratified: bool

    def __len__(self) -> int:
        return len(self.probes)

    def identities(self, which: str) -> np.ndarray:
        """(N,) first path component of 'probes', 'trues' or 'imposters' (an id10xxx for voices, a name for faces)."""
        return _identity_of(getattr(self, which))


def read_verification_list(path: str | os.PathLike) -> VerificationList:
    """Read a ``veriflist_test_*.txt`` file (header checked, every row validated)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "verification list not found")
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f) if r]
    if not rows or tuple(h.strip().lower() for h in rows[0]) != VERIF_HEADER:
        raise InputError(path, f"not a verification list: header must be {','.join(VERIF_HEADER)}")
    body = rows[1:]
    bad = next((i for i, r in enumerate(body) if len(r) != 6), None)
    if bad is not None:
        raise InputError(path, f"line {bad + 2}: expected 6 comma-separated fields, got {len(body[bad])}")
    cols = list(zip(*body)) if body else [()] * 6
    try:
        ints = [np.array(c, dtype=np.int64) for c in cols[:4]]
    except ValueError as e:
        raise InputError(path, f"a numeric column holds a non-integer ({e})") from None
    if not np.isin(ints[3], (0, 1)).all():
        raise InputError(path, "labels must be 0 or 1")
    return VerificationList(ids=ints[0], voice_speaker=ints[1], face_speaker=ints[2], labels=ints[3].astype(np.int8),
                            voice_paths=np.array(cols[4], dtype=object), face_paths=np.array(cols[5], dtype=object))


_MATCHING_NAME = re.compile(r"matching_(v2f|f2v)_([UG])", re.IGNORECASE)


def read_matching_list(path: str | os.PathLike, direction: str | None = None) -> MatchingList:
    """Read a ``matching_{v2f,f2v}_{U,G}.csv`` file (whitespace-separated triplets, no header).

    ``direction`` ('v2f' | 'f2v') defaults to the one in the file name.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "matching list not found")
    m = _MATCHING_NAME.search(path.name)
    direction = direction or (m.group(1).lower() if m else None)
    if direction not in ("v2f", "f2v"):
        raise InputError(path, "cannot tell the direction (v2f or f2v) from the file name; pass direction=")
    with open(path, encoding="utf-8") as f:
        rows = [ln.split() for ln in f if ln.strip()]
    bad = next((i for i, r in enumerate(rows) if len(r) != 3), None)
    if bad is not None:
        raise InputError(path, f"line {bad + 1}: expected 'probe true imposter', got {len(rows[bad])} fields")
    cols = [np.array(c, dtype=object) for c in zip(*rows)] if rows else [np.array([], dtype=object)] * 3
    return MatchingList(probes=cols[0], trues=cols[1], imposters=cols[2], direction=direction,
                        stratified=bool(m and m.group(2).upper() == "G"))


def list_files(lists_root: str | os.PathLike) -> dict[str, Path]:
    """The published lists under a ``voxceleb1_eval_lists`` folder: short name -> path.

    Names: ``verif_<criterion>_<testset>`` (e.g. ``verif_random_seenheard``), ``matching_<dir>_<U|G>``, ``splits``.
    """
    root = Path(lists_root)
    if not root.is_dir():
        raise InputError(root, "evaluation lists folder not found")
    out = {}
    for p in sorted((root / "veriflist").glob("veriflist_test_*.txt")):
        out["verif_" + p.stem[len("veriflist_test_"):]] = p
    for p in sorted((root / "matching").glob("matching_*.csv")):
        out[p.stem] = p
    if (root / "splits" / "identity_splits.txt").is_file():
        out["splits"] = root / "splits" / "identity_splits.txt"
    return out


@dataclass(frozen=True)
class PathMapping:
    """Listed paths resolved under a media root: ``paths`` (N,) absolute str ('' where not found), ``exists`` (N,)
    bool; ``found`` = exists.sum()."""

    paths: np.ndarray
    exists: np.ndarray

    @property
    def found(self) -> int:
        return int(self.exists.sum())

    @property
    def fraction(self) -> float:
        return float(self.exists.mean()) if len(self.exists) else 0.0


_VERIF_VOICE = re.compile(r"^(?P<name>[^/]+)/(?P<video>.+)_(?P<seg>\d+)\.(?P<ext>\w+)$")


def candidates(listed: str, name_to_id: Mapping[str, str] | None = None,
               extensions: Iterable[str] = ()) -> list[str]:
    """Relative paths under a media root where a listed file may be, most literal first.

    Tried: the path itself; without the ``1.6/`` version folder the matching lists put after the name; the
    VoxCeleb1 release layout ``[wav/]idXXXXX/VIDEO/NNNNN.wav`` for verification voices written
    ``NAME/VIDEO_NNNNNNN.wav`` (needs ``name_to_id``, e.g. from vox1_meta); a ``wav/`` prefix for ``idXXXXX/...``
    paths; ``NAME/...`` face paths under the VoxCeleb id instead of the name (``idXXXXX/[1.6/]VIDEO/N.jpg``, needs
    ``name_to_id``); and each of these with the suffix replaced by each of ``extensions`` (e.g. '.npy' for
    precomputed features, '.png' for aligned crops).
    """
    p = PurePosixPath(listed)
    base = [str(p)]
    if len(p.parts) > 2 and re.fullmatch(r"\d+(\.\d+)*", p.parts[1]):
        base.append(str(PurePosixPath(p.parts[0], *p.parts[2:])))
    m = _VERIF_VOICE.match(listed)
    if m and name_to_id and m.group("name") in name_to_id:
        seg = f"{int(m.group('seg')):05d}.{m.group('ext')}"
        vid = name_to_id[m.group("name")]
        base += [f"{vid}/{m.group('video')}/{seg}", f"wav/{vid}/{m.group('video')}/{seg}"]
    if re.match(r"^id\d{5}/", listed):
        base.append("wav/" + listed)
    if name_to_id and p.parts and p.parts[0] in name_to_id and not m:
        vid = name_to_id[p.parts[0]]
        base += [str(PurePosixPath(vid, *PurePosixPath(b).parts[1:])) for b in list(base)]
    out = list(base)
    for ext in extensions:
        out += [str(PurePosixPath(b).with_suffix(ext)) for b in base]
    return list(dict.fromkeys(out))


def map_paths(listed: Iterable[str], media_root: str | os.PathLike, name_to_id: Mapping[str, str] | None = None,
              extensions: Iterable[str] = ()) -> PathMapping:
    """Find each listed path under ``media_root`` (see ``candidates``); one directory walk, then set look-ups.

    Returns a ``PathMapping`` with the first existing candidate per path and how many were found.
    """
    root = Path(media_root)
    if not root.is_dir():
        raise InputError(root, "media folder not found")
    present = set()
    for dirpath, _, files in os.walk(root, followlinks=True):
        rel = Path(dirpath).relative_to(root).as_posix()
        prefix = "" if rel == "." else rel + "/"
        present.update(prefix + f for f in files)
    exts = tuple(extensions)
    resolved, exists = [], []
    for item in listed:
        hit = next((c for c in candidates(item, name_to_id, exts) if c in present), None)
        resolved.append(str(root / hit) if hit else "")
        exists.append(hit is not None)
    return PathMapping(paths=np.array(resolved, dtype=object), exists=np.array(exists, dtype=bool))
