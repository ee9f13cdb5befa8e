"""Corpus preparation: VoxCeleb1 (+ VoxCeleb2) voices and VGGFace(2) faces -> one joined voice+face manifest
(thesis Sec. 2.4.1, Table 2.1), with both identity splits, aligned face crops and cached voice features.

Steps (each a function, driven by ``voiceface prepare``):

* ``join_corpora``: scan the corpora with the adapters (``adapters.voxceleb1/voxceleb2/vggface``) and keep the
  identities that have both voices and faces. VoxCeleb1 voices are named by ``vox1_meta.csv`` (VGGFace1 name), so
  they join VGGFace1 folders; VoxCeleb2 voices are named by VGGFace2 id (``n000012``), joining VGGFace2 folders.
  Faces take their gender / nationality from the voices' metadata when their own is empty.
* ``label_splits``: the ``split`` column is one scheme, and every item also carries both schemes in the extra
  columns ``split_authors`` (``splits.authors_split``: F-Z train, A-B val, C-E test) and ``split_pins`` (the
  published Learnable PINs ``identity_splits.txt``; empty when that file is not given).
* ``align_faces``: aligned crops ``OUT/faces/IDENTITY/REL.png`` (128 px, DIMNet) and optionally
  ``OUT/faces64/...`` (64 px, the GAN's ``path64`` column), made in worker processes each holding one dlib
  ``FaceDetector``. Resumable: an image whose crops all exist is not decoded again. An image that cannot be read or
  has no face is reported and left out, and listed in ``OUT/faces/failed.tsv`` so a rerun reports it without
  decoding it again (while the file is unchanged).
* voice features go to ``OUT/cache/logmel64`` (``audio.batch.extract_manifest``), the folder
  ``loaders.default_cache_dir`` gives for ``OUT/manifest.csv``, so training reuses them; resumable likewise.
* ``split_counts``: the Table 2.1 numbers (identities, speech segments, face images, genders, nationalities) per
  split, with identities per gender.
"""
from __future__ import annotations

import functools

import logging
import os
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PurePosixPath
from typing import Iterable, Sequence

from ..errors import InputError
from . import adapters
from .manifest import Item, Manifest
from .splits import authors_split, read_pins_split

log = logging.getLogger(__name__)

SPLIT_ORDER = ("train", "val", "seen", "test", "")
"""Order of split columns in ``split_counts`` ('' = identities the scheme does not cover)."""


@dataclass
class JoinReport:
    """What the join kept and dropped: identity names per side, item counts."""

    joined: list[str]
    voice_only: list[str]
    face_only: list[str]
    voices: int = 0
    faces: int = 0


def _meta_people(vox1: Path, meta, vox2: Path | None, vox2_meta) -> tuple[list, list]:
    """(vox1 people, vox2 people) from the given or default metadata files (empty lists when none is found)."""
    meta = meta if meta is not None else adapters._find_meta(vox1, "vox1_meta.csv")
    people1 = adapters.read_meta(meta) if meta is not None else []
    people2 = []
    if vox2 is not None:
        vox2_meta = vox2_meta if vox2_meta is not None else adapters._find_meta(vox2, "vox2_meta.csv")
        people2 = adapters.read_meta(vox2_meta) if vox2_meta is not None else []
    return people1, people2


def join_corpora(vox1: str | os.PathLike, faces: Sequence[str | os.PathLike], *, vox2: str | os.PathLike | None = None,
                 meta: str | os.PathLike | None = None, vox2_meta: str | os.PathLike | None = None,
                 probe: bool = True, probe_faces: bool | None = None) -> tuple[Manifest, JoinReport]:
    """Scan voices and faces and keep the identities present in both.

    Args:
        vox1: VoxCeleb1 root (``[wav/]idXXXXX/VIDEO/NNNNN.wav``).
        faces: VGGFace / VGGFace2 roots (``NAME/*.jpg``, or ``train/``+``test/`` of such folders).
        vox2: optional VoxCeleb2 root (``[aac/]idXXXXX/VIDEO/NNNNN.m4a``).
        meta / vox2_meta: ``vox1_meta.csv`` / ``vox2_meta.csv`` (default: looked up beside the roots).
        probe: read durations and image sizes from file headers (an unreadable image gets width ``None``).
        probe_faces: read image headers (default ``probe``; alignment reads the images anyway).
    Returns:
        (manifest of voice items then face items of the joined identities, ``JoinReport``).
    """
    vox1 = Path(vox1)
    people1, people2 = _meta_people(vox1, meta, None if vox2 is None else Path(vox2), vox2_meta)
    if not people1:
        raise InputError(vox1, "no vox1_meta.csv found (give --meta): VoxCeleb1 ids cannot be matched to "
                               "VGGFace names without it")
    voices = list(adapters.voxceleb1(vox1, meta=people1, probe=probe))
    if vox2 is not None:
        voices += list(adapters.voxceleb2(vox2, meta=people2 or None, probe=probe))
    probe_faces = probe if probe_faces is None else probe_faces
    face_items = [it for root in faces for it in adapters.vggface(root, meta=people1 + people2, probe=probe_faces)]
    voice_ids = {it.identity for it in voices}
    face_ids = {it.identity for it in face_items}
    both = voice_ids & face_ids
    covariates = Manifest(voices).identity_table()
    kept_faces = []
    for it in face_items:
        if it.identity in both:
            cov = covariates[it.identity]
            kept_faces.append(it.with_(gender=it.gender or cov["gender"],
                                       nationality=it.nationality or cov["nationality"]))
    kept_voices = [it for it in voices if it.identity in both]
    report = JoinReport(joined=sorted(both), voice_only=sorted(voice_ids - both), face_only=sorted(face_ids - both),
                        voices=len(kept_voices), faces=len(kept_faces))
    return Manifest(kept_voices + kept_faces, root=vox1), report


def label_splits(manifest: Manifest, split: str = "authors", pins_file: str | os.PathLike | None = None) -> Manifest:
    """Every item gets ``split_authors`` and ``split_pins`` extra columns and ``split`` = the chosen scheme.

    ``split`` 'pins' needs ``pins_file`` (``identity_splits.txt`` or the ``voxceleb1_eval_lists`` folder).
    Identities the PINs file does not list get ``split_pins`` '' (VoxCeleb2 / VGGFace2 ids, for instance).
    """
    if split not in ("authors", "pins"):
        raise InputError(None, f"unknown split '{split}' (known: authors, pins)")
    if split == "pins" and pins_file is None:
        raise InputError(None, "the 'pins' split needs the Learnable PINs identity_splits.txt (--pins-file)")
    pins = read_pins_split(pins_file) if pins_file is not None else {}
    table = {ident: (authors_split(ident), pins.get(ident, "")) for ident in manifest.identities()}
    out = []
    for it in manifest:
        a, p = table[it.identity]
        out.append(it.with_(split=a if split == "authors" else p,
                            extra={**it.extra, "split_authors": a, "split_pins": p}))
    return Manifest(out, manifest.root)


def split_counts(manifest: Manifest, column: str = "split") -> dict[str, dict[str, int]]:
    """Table 2.1 counts per split of ``column`` ('split' or an extra column such as 'split_pins').

    Returns ``{split: {identities, speech segments, face images, male ids, female ids, genders, nationalities}}``
    with a 'total' entry; splits in ``SPLIT_ORDER`` order ('' = not covered by the scheme), empty ones left out.
    """
    groups: dict[str, list[Item]] = defaultdict(list)
    for it in manifest:
        groups[it.split if column == "split" else it.extra.get(column, "")].append(it)
    names = [s for s in SPLIT_ORDER if s in groups] + sorted(set(groups) - set(SPLIT_ORDER))
    result = {}
    for name, items in [(n, groups[n]) for n in names] + [("total", list(manifest))]:
        ids = Manifest(items).identity_table()
        genders = [row["gender"] for row in ids.values()]
        result[name] = {
            "identities": len(ids),
            "speech segments": sum(it.modality == "voice" for it in items),
            "face images": sum(it.modality == "face" for it in items),
            "male ids": genders.count("m"), "female ids": genders.count("f"),
            "genders": len({g for g in genders if g}),
            "nationalities": len({row["nationality"] for row in ids.values() if row["nationality"]}),
        }
    return result


# --------------------------------------------------------------------------------------------------------------
# aligned face crops

CROP_DIRS = {128: "faces", 64: "faces64"}
"""Crop side -> folder under OUT (128: DIMNet's ``path``, 64: the GAN's ``path64``)."""


@dataclass
class AlignReport:
    """crops: source path -> {size: crop path} for every usable image; failures: (source, one-line message);
    computed / reused: crops made now / found; known: failures of a previous run reported without decoding."""

    crops: dict[str, dict[int, Path]] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)
    computed: int = 0
    reused: int = 0
    known: int = 0


def crop_relpath(item: Item) -> PurePath:
    """``IDENTITY/REL`` for a face item: its path below the last folder named by its identity, minus only a known
    image extension (``NAME/sub/00000001.jpg`` -> ``NAME/sub/00000001``), so crops never collide within one
    identity; the file name alone when no folder carries the identity name."""
    from ..face.detect import image_stem

    parts = PurePath(item.path).parts
    idx = max((i for i, p in enumerate(parts[:-1]) if p == item.identity), default=len(parts) - 1)
    rel = PurePath(item.identity, *parts[idx + 1:-1], image_stem(parts[-1]))
    return rel


@functools.lru_cache(maxsize=1)
def _detector():
    """One dlib detector per worker process (loading the models takes a second)."""
    from ..face.detect import FaceDetector

    return FaceDetector()


def _align_one(src: str, outs: dict[int, str]) -> tuple[str, str | None]:
    """Worker: align one image into every ``outs`` (size -> PNG path). Returns (src, None) or (src, message)."""
    from PIL import Image

    from ..face.align import align_image
    from ..face.detect import load_image

    try:
        image = load_image(src)
        face = _detector().find(image, src)
    except InputError as e:
        return src, str(e)
    for size, out in outs.items():
        crop = align_image(image, face.landmarks, size)
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        tmp = f"{out}.{os.getpid()}.tmp"
        Image.fromarray(crop).save(tmp, format="PNG")
        os.replace(tmp, out)
    return src, None


FAILED_FILE = "failed.tsv"
"""Under ``OUT/faces``: images that failed (source, size, mtime, message), not decoded again while unchanged."""


def _stamp(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}"


def _read_failed(path: Path) -> dict[str, tuple[str, str]]:
    """source -> (stamp, message) from a previous run's ``failed.tsv`` (empty when absent)."""
    if not path.is_file():
        return {}
    rows = (line.split("\t", 2) for line in path.read_text(encoding="utf-8").splitlines())
    return {r[0]: (r[1], r[2]) for r in rows if len(r) == 3}


def _plan_crops(items: Iterable[Item], out: Path, sizes: Sequence[int]) -> dict[str, dict[int, Path]]:
    """source -> {size: crop path}; a second source that would land on a taken crop is renamed by the rule every
    batch command shares (``face.detect.unique_output``) and reported."""
    from ..face.detect import unique_output

    plan: dict[str, dict[int, Path]] = {}
    taken: dict[str, str] = {}
    for it in items:
        if it.modality != "face" or it.path in plan:
            continue
        want = PurePosixPath(crop_relpath(it).as_posix())
        rel = unique_output(want, it.path, taken)
        if rel != want:
            log.warning("%s: crop name %s is already %s's; written as %s", it.path, want, taken[str(want).lower()], rel)
        taken[str(rel).lower()] = it.path
        plan[it.path] = {s: out / CROP_DIRS[s] / f"{rel}.png" for s in sizes}
    return plan


def align_faces(items: Iterable[Item], out: str | os.PathLike, *, sizes: Sequence[int] = (128,),
                workers: int = 2, retry_failed: bool = False, progress: bool = False) -> AlignReport:
    """Aligned crops of every face item under ``out/faces`` (128) / ``out/faces64`` (64), ``workers`` processes.

    Resume: images whose crops (all sizes) exist are reused without decoding, and images that failed before
    (listed in ``out/faces/failed.tsv``, unchanged since) are reported again without decoding unless
    ``retry_failed``. Crops are written atomically as they are made. A missing / corrupt image or one without a
    face is a failure (reported, never raised).
    """
    from tqdm.auto import tqdm

    out = Path(out)
    report = AlignReport(crops=_plan_crops(items, out, sizes))
    failed_file = out / CROP_DIRS[max(sizes)] / FAILED_FILE
    before = {} if retry_failed else _read_failed(failed_file)
    todo: dict[str, dict[int, str]] = {}
    for src, targets in report.crops.items():
        if all(p.is_file() for p in targets.values()):
            report.reused += 1
        elif src in before and before[src][0] == _stamp(src):
            report.failures.append((src, before[src][1]))
            report.known += 1
        else:
            todo[src] = {s: str(p) for s, p in targets.items()}
    bar = tqdm(total=len(todo), desc="align faces", unit="img", disable=not progress or not todo)
    try:
        if workers <= 1 or len(todo) <= 1:
            results = (_align_one(src, outs) for src, outs in todo.items())
            _collect(results, report, bar)
        else:
            with ProcessPoolExecutor(max_workers=min(workers, len(todo))) as pool:
                _collect(pool.map(_align_one, todo, todo.values(), chunksize=8), report, bar)
    finally:
        bar.close()
        failed_file.parent.mkdir(parents=True, exist_ok=True)
        failed_file.write_text("".join(f"{src}\t{_stamp(src)}\t{msg}\n" for src, msg in report.failures),
                               encoding="utf-8")
    for src, _ in report.failures:
        report.crops.pop(src, None)
    return report


def _collect(results: Iterable[tuple[str, str | None]], report: AlignReport, bar) -> None:
    for src, error in results:
        if error is None:
            report.computed += 1
        else:
            log.info("skipped %s", error)
            report.failures.append((src, error.replace("\n", " ")))
        bar.update()


def apply_crops(manifest: Manifest, report: AlignReport, out: str | os.PathLike) -> Manifest:
    """Face items pointed at their crops (``path`` 128 px when made, ``path64`` 64 px; the original image kept in
    the ``source`` column); faces without a crop are dropped. Voice items are kept as they are. ``out`` is the
    folder of the manifest to be written (``path64`` is stored relative to it)."""
    items = []
    for it in manifest:
        if it.modality != "face":
            items.append(it)
            continue
        crops = report.crops.get(it.path)
        if crops is None:
            continue
        extra = {**it.extra, "source": it.path}
        if 64 in crops:   # relative to the manifest's folder, as ``loaders.face_path`` reads it
            extra["path64"] = os.path.relpath(Path(crops[64]).resolve(), Path(out).resolve())
        size = 128 if 128 in crops else 64
        items.append(it.with_(path=str(crops[size]), width=size, height=size, extra=extra))
    return Manifest(items, root=Path(out))


# --------------------------------------------------------------------------------------------------------------
# the whole preparation


@dataclass
class PrepareResult:
    """manifest: the written joined manifest; path: its CSV; join / align: reports (align None with no alignment);
    voice_failures / face_failures: (source, message) of files left out; features_computed / features_reused."""

    manifest: Manifest
    path: Path
    join: JoinReport
    align: AlignReport | None = None
    voice_failures: list[tuple[str, str]] = field(default_factory=list)
    face_failures: list[tuple[str, str]] = field(default_factory=list)
    features_computed: int = 0
    features_reused: int = 0


def _unreadable_faces(manifest: Manifest) -> tuple[Manifest, list[tuple[str, str]]]:
    """Without alignment: drop faces whose header could not be read (probe left width empty)."""
    bad = [(it.path, f"{it.path}: not a readable image") for it in manifest
           if it.modality == "face" and it.width is None]
    drop = {p for p, _ in bad}
    return Manifest((it for it in manifest if it.path not in drop), manifest.root), bad


def prepare_corpus(vox1: str | os.PathLike, faces: Sequence[str | os.PathLike], out: str | os.PathLike, *,
                   vox2: str | os.PathLike | None = None, meta=None, vox2_meta=None, split: str = "authors",
                   pins_file: str | os.PathLike | None = None, align: bool = True, sizes: Sequence[int] = (128,),
                   features: bool = True, workers: int = 2, retry_failed: bool = False, probe: bool = True,
                   progress: bool = False) -> PrepareResult:
    """Join, label, align and cache, then write ``out/manifest.csv`` (paths relative to it). See module doc.

    ``probe=False`` leaves voice durations empty (reading a million VoxCeleb2 ``.m4a`` headers takes a while); face
    headers are read only without alignment, to leave out unreadable images."""
    from ..audio.batch import extract_manifest
    from .manifest import write_manifest

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest, join = join_corpora(vox1, faces, vox2=vox2, meta=meta, vox2_meta=vox2_meta, probe=probe,
                                  probe_faces=not align)
    if not join.joined:
        raise InputError(None, f"no identity has both voices and faces ({len(join.voice_only)} voice-only, "
                               f"{len(join.face_only)} face-only identities): do the face folders carry VGGFace "
                               "names (VoxCeleb1) or VGGFace2 ids (VoxCeleb2)?")
    manifest = label_splits(manifest, split, pins_file)
    result = PrepareResult(manifest=manifest, path=out / "manifest.csv", join=join)
    if align:
        result.align = align_faces(manifest, out, sizes=sizes, workers=workers, retry_failed=retry_failed,
                                    progress=progress)
        result.face_failures = list(result.align.failures)
        manifest = apply_crops(manifest, result.align, out)
    else:
        manifest, result.face_failures = _unreadable_faces(manifest)
    if features:
        feats = extract_manifest(manifest, out / "cache" / "logmel64", workers=workers, progress=progress)
        result.voice_failures = list(feats.failures)
        result.features_computed, result.features_reused = feats.computed, feats.reused
        failed = {os.path.abspath(src) for src, _ in feats.failures}
        manifest = Manifest((it for it in manifest if os.path.abspath(it.path) not in failed), manifest.root)
    result.manifest = Manifest(manifest, root=out)
    write_manifest(result.manifest, result.path)
    return result
