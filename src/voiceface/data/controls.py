"""Negative controls: manifests whose cross-modal link is deliberately broken.

A method that really learns the link between a person's voice and face must fall to chance when trained on a
manifest where one modality's items belong to somebody else. ``shuffle_identities`` makes such a manifest; tests
train on it beside the real one (``tests/*/test_*_learns.py``), and ``write_control_manifest`` saves it next to
the original so relative paths (and ``path64``-style extra columns) still resolve.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .manifest import MODALITIES, Manifest, read_manifest, write_manifest
from ..errors import ConfigError

# the identity-level fields an item takes from the person it is reattached to
PERSON_FIELDS = ("identity", "gender", "nationality", "age")


def derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) a random permutation without fixed points (the identity permutation for n < 2)."""
    if n < 2:
        return np.arange(n)
    while True:  # the fraction of permutations that are derangements tends to 1/e: few retries
        perm = rng.permutation(n)
        if not (perm == np.arange(n)).any():
            return perm


def shuffle_identities(manifest: Manifest, modality: str, seed: int,
                       splits: Sequence[str] | None = None) -> Manifest:
    """Reattach every identity's ``modality`` items to another person of the same split.

    Within each split (so the split stays identity-disjoint), a random derangement ``pi`` of the split's
    identities (those holding items of ``modality``) gives identity ``a``'s ``modality`` items the person fields
    (identity, gender, nationality, age) of ``pi(a)``. Items of other modalities, and of splits not in ``splits``
    (default: every split), are unchanged. Within the modality each person's items still form one group, so a
    method can still learn that modality alone; what is broken is the link to the other modalities.

    Args:
        manifest: any manifest; ``modality``: voice | face | clip | mesh; ``seed``: the derangement's seed;
        splits: the splits to shuffle (e.g. ``["train"]`` to train on broken pairs and test on true ones).
    Returns:
        a new manifest, items in the original order.
    """
    if modality not in MODALITIES:
        raise ConfigError(f"modality '{modality}' is not one of {', '.join(MODALITIES)}")
    rng = np.random.default_rng(seed)
    person = {}                                   # identity -> its person fields (first item of any modality)
    for it in manifest:
        person.setdefault(it.identity, {f: getattr(it, f) for f in PERSON_FIELDS})
    owner: dict[str, str] = {}                    # identity -> the identity its items now belong to
    for split in sorted({it.split for it in manifest}):
        if splits is not None and split not in splits:
            continue
        ids = sorted({it.identity for it in manifest if it.split == split and it.modality == modality})
        perm = derangement(len(ids), rng)
        owner.update({a: ids[j] for a, j in zip(ids, perm)})
    items = [it.with_(**person[owner[it.identity]]) if it.modality == modality and it.identity in owner
             and (splits is None or it.split in splits) else it for it in manifest]
    return Manifest(items, manifest.root)


def write_control_manifest(data: str | os.PathLike, modality: str, seed: int,
                           splits: Sequence[str] | None = None, name: str | None = None) -> Path:
    """``shuffle_identities`` of the manifest ``data`` (a CSV or a folder with manifest.csv), written beside it as
    ``manifest_shuffled_<modality>_<seed>.csv`` (or ``name``); returns that path, usable as any method's data."""
    path = Path(data)
    path = path / "manifest.csv" if path.is_dir() else path
    shuffled = shuffle_identities(read_manifest(path), modality, seed, splits)
    return write_manifest(shuffled, path.with_name(name or f"manifest_shuffled_{modality}_{seed}.csv"))
