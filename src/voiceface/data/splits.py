"""Identity splits of VoxCeleb/VGGFace (thesis Table 2.1 / Table 3.1, and the Learnable PINs protocol of Table 2.7).

* ``authors``: the split of the DIMNet / voice-to-face code the thesis follows: identities whose *name* starts with
  F-Z are for training, A-E for evaluation. The evaluation names are separated as **A-B -> val, C-E -> test**. The
  thesis gives only counts (Table 2.1: 924 / 112 / 189 of the 1,225 identities shared by VoxCeleb1 and VGGFace); on
  the 1,251 VoxCeleb1 names F-Z / A-B / C-E hold 942 / 116 / 193, consistent with those counts once the 26
  identities missing from VGGFace are removed (18 / 4 / 4), whereas no other contiguous cut of A-E is. The first
  character is compared case-insensitively; names starting with anything but a letter A-E (digits, accents,
  VoxCeleb ids such as ``id10001``) go to train, so apply it to manifests whose identities are names (``voxceleb1``
  with metadata, VGGFace1 folders).
* ``pins``: Nagrani et al., Learnable PINs (ECCV 2018), ``splits/identity_splits.txt`` (``NAME SET`` per line; set 1
  train, 2 val, 3 seen-heard test, 4 unseen-unheard test). Sets map to the manifest split values ``PINS_SPLITS``:
  1 -> train, 2 -> val, 3 -> seen, 4 -> test (the unseen-unheard test is the open-set test every method evaluates
  on; the published file has no set-3 names, since its seen-heard test uses held-out media of training identities).
  Identities absent from the file get split '' (and are counted in the log).
"""
from __future__ import annotations

import logging
import os
import re
import zlib
from pathlib import Path, PurePath
from typing import Sequence

import numpy as np

from ..errors import InputError
from .manifest import Item, Manifest

log = logging.getLogger(__name__)
_ID = re.compile(r"^(id\d{5}|n\d{6})$")   # VoxCeleb / VGGFace2 ids

SPLITS = ("authors", "pins")
AUTHORS_VAL = "AB"
"""Initials of validation identities in the authors' split."""
AUTHORS_TEST = "CDE"
"""Initials of test identities in the authors' split (everything else trains)."""
PINS_SPLITS = {1: "train", 2: "val", 3: "seen", 4: "test"}
"""Learnable PINs set number -> manifest split value."""
PINS_FILE = Path("splits") / "identity_splits.txt"
"""Where the PINs split lives inside the published ``voxceleb1_eval_lists`` folder."""


def authors_split(identity: str) -> str:
    """'train' | 'val' | 'test' for one identity name (F-Z train, A-B val, C-E test; see module doc)."""
    first = identity[:1].upper()
    if first and first in AUTHORS_VAL:
        return "val"
    if first and first in AUTHORS_TEST:
        return "test"
    return "train"


def read_pins_split(path: str | os.PathLike) -> dict[str, str]:
    """Read ``identity_splits.txt`` (or the eval-lists folder holding it): name -> manifest split value."""
    path = Path(path)
    if path.is_dir():
        path = path / PINS_FILE
    if not path.is_file():
        raise InputError(path, "Learnable PINs split file not found")
    table: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) not in PINS_SPLITS:
                raise InputError(path, f"line {n}: expected 'NAME SET' with SET in 1-4, got {line.strip()!r}")
            table[parts[0]] = PINS_SPLITS[int(parts[1])]
    if not table:
        raise InputError(path, "split file is empty")
    return table


def apply_split(manifest: Manifest, split: str, pins_file: str | os.PathLike | None = None) -> Manifest:
    """A new manifest with every item's ``split`` set by identity.

    Args:
        manifest: items to label (identities should be names, e.g. ``A.J._Buckley``).
        split: 'authors' or 'pins'.
        pins_file: for 'pins', ``identity_splits.txt`` or the ``voxceleb1_eval_lists`` folder.
    """
    if split == "authors":
        table = {ident: authors_split(ident) for ident in manifest.identities()}
        ids = [i for i in table if _ID.match(i)]
        if ids:
            log.warning("%d identities are corpus ids, not names (e.g. %s): the authors' split puts them in train; "
                        "build the manifest with the name metadata (vox1_meta.csv)", len(ids), ids[0])
    elif split == "pins":
        if pins_file is None:
            raise InputError(None, "the 'pins' split needs the identity_splits.txt file (or its eval-lists folder)")
        table = read_pins_split(pins_file)
        missing = [i for i in manifest.identities() if i not in table]
        if missing:
            log.warning("%d of %d identities are not in the PINs split and get split '': %s", len(missing),
                        len(manifest.identities()), ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""))
    else:
        raise InputError(None, f"unknown split '{split}' (known: {', '.join(SPLITS)})")
    return Manifest((it.with_(split=table.get(it.identity, "")) for it in manifest), manifest.root)


def session_key(item: Item) -> str:
    """``identity|session`` of an item: its video / recording session; when the manifest has none, the folder
    holding the file (``idXXXXX/VIDEO/00001.wav`` -> VIDEO), or the file itself when that folder is the identity's
    own (``NAME/0001.jpg``): items of one video are never told apart by segment number."""
    path = PurePath(item.path)
    where = item.session or (path.parent.name if path.parent.name not in ("", item.identity) else path.name)
    return f"{item.identity}|{where}"


def heldout_sessions(items: Sequence[Item], fraction: float) -> np.ndarray:
    """(n,) bool: the seen-heard hold-out, by whole video (session).

    About ``fraction`` of each identity's sessions are held out, with every item of a held-out session in either
    modality (no held-out recording shares its video with a training one). Deterministic (a CRC32 hash of
    identity and session, independent of order, paths' roots and machine), so training and evaluation agree. An
    identity never loses all of its sessions of one modality: the session with the highest hash stays in training.
    """
    if fraction <= 0 or not len(items):
        return np.zeros(len(items), bool)
    keys, inverse = np.unique([session_key(it) for it in items], return_inverse=True)
    h = np.array([zlib.crc32(k.encode()) / 2**32 for k in keys])[inverse]        # (n,) one value per session
    mask = h < fraction
    groups: dict[tuple[str, str], list[int]] = {}
    for i, it in enumerate(items):
        groups.setdefault((it.identity, it.modality), []).append(i)
    for idx in map(np.asarray, groups.values()):
        if mask[idx].all():
            mask[idx[h[idx] == h[idx].max()]] = False
    return mask
