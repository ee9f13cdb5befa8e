"""Manifest builders for real corpora laid out as they are distributed (thesis Sec. 2.4.1, 3.3.1: VoxCeleb + VGGFace).

* ``voxceleb1(root, meta)``: ``[wav/]idXXXXX/VIDEO/NNNNN.wav`` + ``vox1_meta.csv`` (tab-separated: VoxCeleb1 ID,
  VGGFace1 ID (the name), Gender, Nationality, Set). The item identity is the *name* (so voices join VGGFace faces,
  which are filed by name, and the authors' A-E / F-Z split applies); the VoxCeleb id is kept in the extra column
  ``vox_id`` and the official set (dev/test) in ``vox_set``. Without metadata the identity is the VoxCeleb id.
* ``voxceleb2(root, meta)``: ``[aac/]idXXXXX/VIDEO/NNNNN.m4a`` + ``vox2_meta.csv`` (VoxCeleb2 ID, VGGFace2 ID, Gender,
  Set). The identity is the VGGFace2 id (``n000012``), which is how VGGFace2 files its faces.
* ``vggface(root, meta)``: one folder per identity (``ROOT/NAME/*.jpg``; VGGFace1 names or VGGFace2 ids, also under
  VGGFace2's ``train/`` and ``test/``), images found recursively inside; gender/nationality looked up by name (vox1
  meta) or VGGFace2 id (vox2 meta, VGGFace2 identity_meta.csv) when given.
* ``librispeech(root, meta)``: ``SPEAKER/[CHAPTER/]*.flac`` + ``SPEAKERS.TXT`` (reader id, sex).
* ``folders(root, meta)``: any ``ROOT/IDENTITY/...`` layout; each file is a voice (audio extension) or a face (image
  extension) by its extension, others are ignored.

Metadata files are read by ``read_meta``, which accepts the tab-separated vox1 file, the comma-separated vox2 file
(whose fields carry trailing spaces) or any CSV/TSV with an identity column. Durations (voice) and sizes (face) are
read from file headers when ``probe=True`` (default); a file whose header cannot be read is logged and kept with the
value empty.
"""
from __future__ import annotations

import csv
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from ..audio.io import AUDIO_EXTENSIONS
from ..errors import InputError
from ..face.detect import IMAGE_EXTENSIONS
from .manifest import Item, Manifest

log = logging.getLogger(__name__)

VOX_ID = re.compile(r"^id\d{5}$")
"""VoxCeleb1/2 speaker id folder names: ``id`` + 5 digits."""


@dataclass(frozen=True)
class Person:
    """One identity's metadata: identity (the name used as the manifest identity), other ids, covariates."""

    identity: str
    vox_id: str = ""
    vgg_id: str = ""
    gender: str = ""
    nationality: str = ""
    vox_set: str = ""


def _norm_gender(g: str) -> str:
    g = g.strip().lower()
    return {"m": "m", "male": "m", "f": "f", "female": "f"}.get(g, "")


_HEADERS = {
    "vox_id": ("voxceleb1 id", "voxceleb2 id", "voxceleb id", "vox_id", "id"),
    "name": ("vggface1 id", "name", "identity", "vggface id"),
    "vgg_id": ("vggface2 id", "vgg_id", "class_id"),
    "gender": ("gender", "sex"),
    "nationality": ("nationality", "country"),
    "vox_set": ("set", "split"),
}


def read_meta(path: str | os.PathLike) -> list[Person]:
    """Read a VoxCeleb1/VoxCeleb2 metadata file (or a CSV/TSV with such columns) into ``Person`` rows.

    The delimiter (tab or comma) is detected from the header; fields are stripped of spaces. For vox1 rows the
    identity is the VGGFace1 name; for vox2 rows (no name) the VGGFace2 id.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "metadata file not found")
    with open(path, newline="", encoding="utf-8-sig") as f:
        text = f.read()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise InputError(path, "metadata file is empty")
    delim = "\t" if "\t" in lines[0] else ","
    rows = list(csv.reader(lines, delimiter=delim))
    header = [h.strip().lower() for h in rows[0]]
    cols: dict[str, int] = {}
    for key, names in _HEADERS.items():
        for i, h in enumerate(header):
            if h in names and key not in cols and i not in cols.values():
                cols[key] = i
    if "name" not in cols and "vgg_id" not in cols and "vox_id" not in cols:
        raise InputError(path, f"no identity column in header {rows[0]} (expected e.g. 'VoxCeleb1 ID', "
                               "'VGGFace1 ID', 'VGGFace2 ID')")
    people = []
    for n, row in enumerate(rows[1:], start=2):
        cells = [c.strip().strip("\"").strip() for c in row]
        get = lambda k: cells[cols[k]] if k in cols and cols[k] < len(cells) else ""  # noqa: E731
        ident = get("name") or get("vgg_id") or get("vox_id")
        if not ident:
            log.warning("%s: line %d has no identity; skipped", path, n)
            continue
        people.append(Person(identity=ident, vox_id=get("vox_id"), vgg_id=get("vgg_id"),
                             gender=_norm_gender(get("gender")), nationality=get("nationality"),
                             vox_set=get("vox_set")))
    return people


def _lookup(meta: str | os.PathLike | Iterable[Person] | None) -> dict[str, Person]:
    """Index people by every id they carry (name, VoxCeleb id, VGGFace2 id)."""
    if meta is None:
        return {}
    people = read_meta(meta) if isinstance(meta, (str, os.PathLike)) else list(meta)
    table: dict[str, Person] = {}
    for p in people:
        for key in (p.identity, p.vox_id, p.vgg_id):
            if key:
                table.setdefault(key, p)
    return table


def audio_duration(path: str | os.PathLike) -> float | None:
    """Seconds of audio from the file header (soundfile, else PyAV); ``None`` if unreadable."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".wav", ".flac", ".ogg", ".oga"):
            import soundfile
            return float(soundfile.info(str(path)).duration)
        import av
        with av.open(str(path)) as c:
            if c.duration is not None:
                return float(c.duration) / av.time_base
            s = c.streams.audio[0]
            return float(s.duration * s.time_base) if s.duration is not None else None
    except Exception as e:  # any decoder failure: keep the item, report the file
        log.warning("%s: cannot read audio header (%s)", path, e)
        return None


def image_size(path: str | os.PathLike) -> tuple[int | None, int | None]:
    """(width, height) from the image header; ``(None, None)`` if unreadable."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            return int(im.width), int(im.height)
    except Exception as e:  # PIL raises several types for a bad file
        log.warning("%s: cannot read image header (%s)", path, e)
        return None, None


def _files(root: Path, extensions: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in extensions)


def _check_root(root: str | os.PathLike) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "dataset folder not found")
    return root


def _item(path: Path, modality: str, identity: str, person: Person | None, session: str, probe: bool,
          vox_id: str = "") -> Item:
    extra = {"vox_id": vox_id} if vox_id else {}
    if person is not None:
        extra.update({k: v for k, v in (("vox_id", person.vox_id), ("vgg_id", person.vgg_id),
                                        ("vox_set", person.vox_set)) if v})
    kw: dict = {}
    if probe and modality == "voice":
        kw["duration"] = audio_duration(path)
    elif probe and modality == "face":
        kw["width"], kw["height"] = image_size(path)
    return Item(path=str(path.resolve()), modality=modality, identity=identity,
                gender=person.gender if person else "", nationality=person.nationality if person else "",
                session=session, extra=extra, **kw)


def _voxceleb(root: Path, sub: str, extensions: tuple[str, ...], meta, probe: bool,
              identity_of: Callable[[Person], str]) -> Manifest:
    base = root / sub if (root / sub).is_dir() else root
    table = _lookup(meta)
    items, unknown = [], set()
    for spk in sorted(p for p in base.iterdir() if p.is_dir() and VOX_ID.match(p.name)):
        person = table.get(spk.name)
        if person is None and table:
            unknown.add(spk.name)
        ident = identity_of(person) if person else spk.name
        for f in _files(spk, extensions):
            rel = f.relative_to(spk).parts
            session = rel[0] if len(rel) > 1 else ""
            items.append(_item(f, "voice", ident, person, session, probe, vox_id=spk.name))
    if not items:
        raise InputError(base, f"no idXXXXX/VIDEO/NNNNN{extensions[0]} files found")
    if unknown:
        log.warning("%d speaker folder(s) not in the metadata (identity = folder name): %s", len(unknown),
                    ", ".join(sorted(unknown)[:5]) + (" ..." if len(unknown) > 5 else ""))
    return Manifest(items, root=root)


def _find_meta(root: Path, name: str) -> Path | None:
    for cand in (root / name, root.parent / name, root / "meta" / name):
        if cand.is_file():
            return cand
    return None


def voxceleb1(root: str | os.PathLike, meta: str | os.PathLike | None = None, probe: bool = True) -> Manifest:
    """VoxCeleb1 voices: ``ROOT/[wav/]idXXXXX/VIDEO/NNNNN.wav`` (meta default: ``vox1_meta.csv`` in ROOT or its parent).

    Identity = VGGFace1 name from the metadata (the VoxCeleb id when there is no metadata); session = VIDEO.
    """
    root = _check_root(root)
    meta = meta if meta is not None else _find_meta(root, "vox1_meta.csv")
    return _voxceleb(root, "wav", (".wav", ".flac", ".m4a"), meta, probe, lambda p: p.identity)


def voxceleb2(root: str | os.PathLike, meta: str | os.PathLike | None = None, probe: bool = True) -> Manifest:
    """VoxCeleb2 voices: ``ROOT/[aac/]idXXXXX/VIDEO/NNNNN.m4a`` (meta default: ``vox2_meta.csv`` in ROOT or parent).

    Identity = VGGFace2 id from the metadata (the VoxCeleb id without it); session = VIDEO.
    """
    root = _check_root(root)
    meta = meta if meta is not None else _find_meta(root, "vox2_meta.csv")
    return _voxceleb(root, "aac", (".m4a", ".aac", ".wav"), meta, probe, lambda p: p.vgg_id or p.identity)


def folders(root: str | os.PathLike, meta: str | os.PathLike | None = None, probe: bool = True,
            modalities: tuple[str, ...] = ("voice", "face")) -> Manifest:
    """Any folder-per-identity layout: ``ROOT/IDENTITY/**/FILE``; audio files are voices, images are faces.

    The session is the first sub-folder under the identity folder ('' for files directly inside it). Covariates
    come from ``meta`` (looked up by folder name: a name, a VoxCeleb id or a VGGFace2 id).
    """
    root = _check_root(root)
    table = _lookup(meta)
    kinds = {**({e: "voice" for e in AUDIO_EXTENSIONS} if "voice" in modalities else {}),
             **({e: "face" for e in IMAGE_EXTENSIONS} if "face" in modalities else {})}
    items = []
    for ident_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        person = table.get(ident_dir.name)
        for f in _files(ident_dir, tuple(kinds)):
            rel = f.relative_to(ident_dir).parts
            items.append(_item(f, kinds[f.suffix.lower()], ident_dir.name, person,
                               rel[0] if len(rel) > 1 else "", probe))
    if not items:
        raise InputError(root, f"no {' or '.join(modalities)} files in identity sub-folders")
    if table:
        missing = {it.identity for it in items} - set(table)
        if missing:
            log.warning("%d identities not in the metadata: %s", len(missing),
                        ", ".join(sorted(missing)[:5]) + (" ..." if len(missing) > 5 else ""))
    return Manifest(items, root=root)


VGG_SETS = ("train", "test")
"""VGGFace2 ships ``train/`` and ``test/`` folders of identity folders; ``vggface`` descends into them."""


def vggface(root: str | os.PathLike, meta: str | os.PathLike | None = None, probe: bool = True) -> Manifest:
    """VGGFace / VGGFace2-style faces: ``ROOT/NAME/**/*.jpg`` (one folder per identity, images only).

    When ROOT holds only ``train/`` and/or ``test/`` (the VGGFace2 release), each is scanned as such a folder and
    the set is kept in the extra column ``vgg_set``. ``meta`` may also be VGGFace2's ``identity_meta.csv``
    (Class_ID, Name, Sample_Num, Flag, Gender).
    """
    root = _check_root(root)
    subs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if subs and all(p.name in VGG_SETS for p in subs):
        items = [it.with_(extra={**it.extra, "vgg_set": sub.name})
                 for sub in sorted(subs) for it in folders(sub, meta, probe, modalities=("face",))]
        return Manifest(items, root=root)
    return folders(root, meta, probe, modalities=("face",))


def read_librispeech_speakers(path: str | os.PathLike) -> list[Person]:
    """LibriSpeech's ``SPEAKERS.TXT``: ``;`` comment lines, then ``ID | SEX | SUBSET | MINUTES | NAME`` rows."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "SPEAKERS.TXT not found")
    people = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        cells = [c.strip() for c in line.split("|")]
        if line.lstrip().startswith(";") or len(cells) < 2 or not cells[0]:
            continue
        people.append(Person(identity=cells[0], gender=_norm_gender(cells[1])))
    if not people:
        raise InputError(path, "no speaker rows (expected 'ID | SEX | ...')")
    return people


def librispeech(root: str | os.PathLike, meta: str | os.PathLike | None = None, probe: bool = True) -> Manifest:
    """LibriSpeech: ``ROOT/SPEAKER/[CHAPTER/]SPEAKER-CHAPTER-NNNN.flac`` with ``SPEAKERS.TXT`` (meta default: in
    ROOT or its parent). Identity = reader id, gender from the file; session = chapter (from the file name)."""
    root = _check_root(root)
    meta = meta if meta is not None else _find_meta(root, "SPEAKERS.TXT")
    table = {p.identity: p for p in read_librispeech_speakers(meta)} if meta is not None else {}
    items = []
    for spk in sorted(p for p in root.iterdir() if p.is_dir() and p.name.isdigit()):
        for f in _files(spk, (".flac", ".wav")):
            parts = f.stem.split("-")
            session = parts[1] if len(parts) == 3 else (f.parent.name if f.parent != spk else "")
            items.append(_item(f, "voice", spk.name, table.get(spk.name), session, probe))
    if not items:
        raise InputError(root, "no SPEAKER/**/*.flac files found")
    return Manifest(items, root=root)


ADAPTERS = {"voxceleb1": voxceleb1, "voxceleb2": voxceleb2, "vggface": vggface, "folders": folders,
            "librispeech": librispeech}
"""Adapter name (as on the command line) -> builder ``(root, meta=None, probe=True) -> Manifest``."""
