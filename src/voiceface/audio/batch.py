"""Batch voice feature extraction with a cache: parallel, resumable, failure-tolerant.

``extract_manifest`` turns voice items (a ``Manifest``, ``Item``s or plain paths) into cached (T, 64) float32
arrays (``features.extract_features``: load, VAD, log mel, CMVN), one ``.npy`` per recording under ``cache_dir``:

* cache names are stable: ``<stem>-<hash>.npy``, the hash covering the absolute source path and the feature
  options, so two files with the same stem never collide and a rerun finds what an earlier run wrote;
* each array is written to a temporary file and renamed into place (a killed run never leaves a partial array),
  so a rerun skips everything already cached (resume);
* worker processes (``concurrent.futures.ProcessPoolExecutor``) do the work, with a tqdm progress bar;
* a file that fails (missing, corrupt, silence only) is reported in ``ExtractionResult.failures`` with its
  one-line message and skipped; the others go on.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from ..data.manifest import Item, Manifest
from ..errors import VoicefaceError

log = logging.getLogger(__name__)

_CACHE_VERSION = "logmel64-v1"  # bump when the feature definition changes, so stale caches are not reused


@dataclass
class ExtractionResult:
    """paths: source path -> cached (T, 64) ``.npy``, for every file that succeeded (cached before or now);
    failures: (source path, one-line message) for every file that failed; computed / reused: counts."""

    paths: dict[str, Path] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)
    computed: int = 0
    reused: int = 0


def cache_path(path: str | os.PathLike, cache_dir: str | os.PathLike, *, standard: bool = False,
               normalize: bool = True) -> Path:
    """The cache file for ``path``: ``cache_dir/<stem>-<12 hex digits>.npy`` (stable across runs)."""
    src = os.path.abspath(os.fspath(path))
    key = f"{_CACHE_VERSION}|standard={int(standard)}|normalize={int(normalize)}|{src}"
    digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:12]
    return Path(cache_dir) / f"{Path(src).stem}-{digest}.npy"


def save_array_atomic(array: np.ndarray, out: str | os.PathLike) -> Path:
    """np.save to a temporary file beside ``out``, then rename it into place."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return out


def _extract_one(src: str, out: str, standard: bool, normalize: bool) -> tuple[str, str | None]:
    """Worker: extract one file into ``out``. Returns (src, None) or (src, one-line error message)."""
    from .features import extract_features

    try:
        feat = extract_features(src, standard=standard, normalize=normalize)
        save_array_atomic(feat, out)
        return src, None
    except VoicefaceError as e:
        return src, str(e)
    except Exception as e:  # noqa: BLE001 - a batch reports any per-file failure and goes on
        return src, f"{src}: {type(e).__name__}: {e}"


def _source_paths(items: Manifest | Iterable[Item | str | os.PathLike]) -> list[str]:
    paths = []
    for it in items:
        if isinstance(it, Item):
            if it.modality != "voice":
                continue
            paths.append(it.path)
        else:
            paths.append(os.fspath(it))
    return list(dict.fromkeys(os.path.abspath(p) for p in paths))  # unique, in order


def extract_files(jobs: Iterable[tuple[str | os.PathLike, str | os.PathLike]], *, workers: int = 2,
                  progress: bool = True, standard: bool = False, normalize: bool = True,
                  skip_existing: bool = True) -> ExtractionResult:
    """Extract features for (source, output .npy) pairs with ``workers`` processes (``<= 1``: in this process).

    With ``skip_existing`` an output that already exists is reused without decoding (resume). Outputs are written
    atomically. Failures are collected, never raised.
    """
    from tqdm.auto import tqdm

    result = ExtractionResult()
    todo: list[tuple[str, str]] = []
    order: dict[str, int] = {}
    for src, out in jobs:
        src, out = os.fspath(src), os.fspath(out)
        order.setdefault(src, len(order))
        if skip_existing and os.path.isfile(out):
            result.paths[src] = Path(out)
            result.reused += 1
        else:
            todo.append((src, out))
    outs = dict(todo)

    def record(src: str, error: str | None) -> None:
        if error is None:
            result.paths[src] = Path(outs[src])
            result.computed += 1
        else:
            log.info("skipped %s", error)
            result.failures.append((src, error))

    bar = tqdm(total=len(todo), desc="voice features", unit="file", disable=not progress or not todo)
    try:
        if workers <= 1 or len(todo) <= 1:
            for src, out in todo:
                record(*_extract_one(src, out, standard, normalize))
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=min(workers, len(todo))) as pool:
                futures = {pool.submit(_extract_one, src, out, standard, normalize): src for src, out in todo}
                for fut in as_completed(futures):
                    try:
                        record(*fut.result())
                    except Exception as e:  # noqa: BLE001 - a crashed worker (e.g. a decoder segfault)
                        record(futures[fut], f"{futures[fut]}: worker process failed: {type(e).__name__}: {e}")
                    bar.update()
    finally:
        bar.close()
    result.failures.sort(key=lambda f: order[f[0]])
    return result


def extract_manifest(items: Manifest | Iterable[Item | str | os.PathLike], cache_dir: str | os.PathLike, *,
                     workers: int = 2, progress: bool = True, standard: bool = False,
                     normalize: bool = True) -> ExtractionResult:
    """Extract (T, 64) features for every voice item (non-voice manifest items are ignored) into ``cache_dir``
    (file names from ``cache_path``). Files already cached are reused without decoding (resume).
    ``workers <= 1`` runs in this process. Returns an ``ExtractionResult``; failures never raise.
    """
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    jobs = [(src, cache_path(src, cache_dir, standard=standard, normalize=normalize))
            for src in _source_paths(items)]
    return extract_files(jobs, workers=workers, progress=progress, standard=standard, normalize=normalize)


def load_cached_features(path: str | os.PathLike, cache_dir: str | os.PathLike, *, standard: bool = False,
                         normalize: bool = True) -> np.ndarray:
    """(T, 64) float32 features of one recording from ``cache_dir``, extracting and caching them first when absent.

    Raises ``InputError`` (naming the file) when the recording cannot be used.
    """
    from .features import extract_features

    out = cache_path(path, cache_dir, standard=standard, normalize=normalize)
    if out.is_file():
        return np.load(out)
    feat = extract_features(path, standard=standard, normalize=normalize)
    save_array_atomic(feat, out)
    return feat
