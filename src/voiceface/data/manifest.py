"""One manifest format for voice, face, clip and mesh items, read and written as CSV.

Columns (``COLUMNS``; unknown extra columns are kept in ``Item.extra``)::

    path         file path; relative paths are relative to the manifest file's folder
    modality     voice | face | clip | mesh
    identity     identity label (a name or an id such as id10001)
    gender       m | f | '' (unknown)
    nationality  free text ('' unknown)
    split        train | val | test | seen | unseen | '' (set by ``data.splits``)
    age          years (float, '' unknown)
    session      video / session id the item comes from ('' unknown)
    duration     seconds of audio (voice items; '' unknown)
    width        pixels (face items; '' unknown)
    height       pixels (face items; '' unknown)

Every adapter (``voiceface.data.adapters``) and the simulated world write this format, so every method reads one
kind of data.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ..errors import InputError

MODALITIES = ("voice", "face", "clip", "mesh")
COLUMNS = ("path", "modality", "identity", "gender", "nationality", "split", "age", "session", "duration",
           "width", "height")
_FLOATS = ("age", "duration")
_INTS = ("width", "height")


@dataclass(frozen=True)
class Item:
    """One row of a manifest. ``path`` is absolute once read through ``read_manifest``."""

    path: str
    modality: str
    identity: str
    gender: str = ""
    nationality: str = ""
    split: str = ""
    age: float | None = None
    session: str = ""
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def with_(self, **changes) -> "Item":
        return replace(self, **changes)


class Manifest(Sequence[Item]):
    """An ordered, immutable list of ``Item`` with a few selectors."""

    def __init__(self, items: Iterable[Item], root: str | os.PathLike | None = None):
        self.items: tuple[Item, ...] = tuple(items)
        self.root = None if root is None else Path(root)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):
        return Manifest(self.items[i], self.root) if isinstance(i, slice) else self.items[i]

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def __repr__(self) -> str:
        counts = {m: sum(1 for it in self.items if it.modality == m) for m in MODALITIES}
        return f"Manifest({len(self)} items: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v) + ")"

    def select(self, *, modality: str | None = None, split: str | Sequence[str] | None = None,
               gender: str | None = None) -> "Manifest":
        """Items matching every given criterion (``split`` may be one name or several)."""
        splits = (split,) if isinstance(split, str) else split
        return Manifest((it for it in self.items
                         if (modality is None or it.modality == modality)
                         and (splits is None or it.split in splits)
                         and (gender is None or it.gender == gender)), self.root)

    def identities(self) -> list[str]:
        """Sorted distinct identities."""
        return sorted({it.identity for it in self.items})

    def identity_table(self) -> dict[str, dict[str, str]]:
        """identity -> {gender, nationality} (first non-empty value seen)."""
        table: dict[str, dict[str, str]] = {}
        for it in self.items:
            row = table.setdefault(it.identity, {"gender": "", "nationality": ""})
            row["gender"] = row["gender"] or it.gender
            row["nationality"] = row["nationality"] or it.nationality
        return table


def _parse(row: dict[str, str], path: Path, line: int) -> Item:
    for col in ("path", "modality", "identity"):
        if not row.get(col):
            raise InputError(path, f"line {line}: empty '{col}'")
    if row["modality"] not in MODALITIES:
        raise InputError(path, f"line {line}: modality '{row['modality']}' is not one of {', '.join(MODALITIES)}")
    values: dict = {}
    for col in COLUMNS:
        raw = (row.get(col) or "").strip()
        if col in _FLOATS:
            try:
                values[col] = float(raw) if raw else None
            except ValueError:
                raise InputError(path, f"line {line}: '{col}' is not a number: {raw!r}") from None
        elif col in _INTS:
            try:
                values[col] = int(raw) if raw else None
            except ValueError:
                raise InputError(path, f"line {line}: '{col}' is not an integer: {raw!r}") from None
        else:
            values[col] = raw
    p = Path(values["path"])
    if not p.is_absolute():
        values["path"] = str((path.parent / p).resolve())
    extra = {k: v for k, v in row.items() if k not in COLUMNS and k is not None}
    return Item(**values, extra=extra)


def read_manifest(path: str | os.PathLike) -> Manifest:
    """Read a manifest CSV; relative item paths are resolved against the CSV's folder."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "manifest not found")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("path", "modality", "identity") if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(path, f"not a manifest: missing column(s) {', '.join(missing)}")
        items = [_parse(row, path, i + 2) for i, row in enumerate(reader)]
    return Manifest(items, root=path.parent)


def write_manifest(items: Iterable[Item], path: str | os.PathLike, relative: bool = True) -> Path:
    """Write items as CSV (paths relative to the CSV's folder when ``relative`` and possible)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    items = list(items)
    extra_cols = sorted({k for it in items for k in it.extra})
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(list(COLUMNS) + extra_cols)
        base = path.parent.resolve()
        for it in items:
            p = it.path
            if relative:
                try:
                    p = os.path.relpath(Path(p).resolve(), base)
                except ValueError:
                    pass
            row = []
            for col in COLUMNS:
                v = p if col == "path" else getattr(it, col)
                row.append("" if v is None else (f"{v:g}" if isinstance(v, float) else str(v)))
            writer.writerow(row + [it.extra.get(c, "") for c in extra_cols])
    os.replace(tmp, path)
    return path


ITEM_FIELDS = tuple(f.name for f in fields(Item))
