"""Run folders: one folder per training run holding its config, JSONL log, checkpoints and results.

Layout of ``RUN/``::

    config.json        the resolved config, the method name and the training data's record ({"path": where it was
                       read, "digest": what it holds}), written when the run starts
    log.jsonl          one JSON object per logged step ({"step": .., "time": .., "loss/..": ..}), plus event
                       records: {"event": "start", "world_size", "device", "precision", "resumed"} each time
                       training starts or resumes, {"event": "force_config", "changed": {key: [old, new]}} when a
                       run was resumed with a changed config under ``--force-config``, {"event": "data_moved",
                       "from", "to"} when it was resumed from the same data at another path
    checkpoint.pt      the latest checkpoint (atomic), used to resume after a kill
    results.json       flat named metrics written by ``voiceface evaluate``
    report.md          the human-readable results
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import ConfigError, InputError
from . import dist
from .checkpoint import atomic_write_bytes


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item):
        try:
            value = value.item()
        except (ValueError, RuntimeError):
            value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, Mapping):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: data}


def config_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Dotted key -> [old value, new value] for every leaf that differs between two JSON-like configs (a key
    present in only one side has None on the other); lists and tuples compare equal by content."""
    a, b = _flatten(_jsonable(old)), _flatten(_jsonable(new))
    return {k: [a.get(k), b.get(k)] for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)}


def _default_additions(changed: Mapping[str, list[Any]], defaults: Mapping[str, Any] | None) -> dict[str, Any]:
    """Of ``config_changes`` output, the keys absent from the old config whose new value is their default value
    in ``defaults`` (a JSON-like config): dotted key -> value."""
    if defaults is None:
        return {}
    flat = _flatten(_jsonable(defaults))
    return {k: new for k, (old, new) in changed.items() if old is None and k in flat and flat[k] == new}


LEGACY_DATA_KEYS = ("manifest", "data_source")    # where GAN / SfV runs kept their data's path in the config before


def data_record(data: str | os.PathLike) -> dict[str, str]:
    """What a run records of its training data: ``{"path": where it was read, "digest": what it holds}``.

    The path is absolute (a ``synthetic:...`` source is kept as given). The digest (16 hex digits of SHA-256) is
    taken over the manifest CSV (``data`` itself or ``data/manifest.csv``; its paths are relative, so a moved
    folder keeps its digest), else over a folder's sorted relative file names and sizes, else over the source
    string. The digest is part of what a run is, the path only where it was found (see ``Run.create``)."""
    text = os.fspath(data)
    if text.startswith("synthetic:"):
        return {"path": text, "digest": hashlib.sha256(text.encode()).hexdigest()[:16]}
    p = Path(text).resolve()
    h = hashlib.sha256()
    if p.is_dir() and (p / "manifest.csv").is_file():
        p = p / "manifest.csv"
    if p.is_file():
        h.update(p.read_bytes())
    elif p.is_dir():
        for f in sorted(q for q in p.rglob("*") if q.is_file()):
            h.update(f"{f.relative_to(p).as_posix()}\t{f.stat().st_size}\n".encode())
    else:
        raise InputError(p, "no training data here")
    return {"path": str(p), "digest": h.hexdigest()[:16]}


def _data_changes(old: Mapping[str, Any], old_config: dict[str, Any], new_config: Mapping[str, Any],
                  record: Mapping[str, str] | None) -> tuple[dict[str, list[Any]], dict[str, str]]:
    """({"data": [old digest, new digest]} when a resume would read other data, {} otherwise; the move
    {"from", "to"} when it reads the same data at another path). Pops from ``old_config`` the legacy data keys
    the new config no longer carries (they hold an older run's data path)."""
    legacy = [old_config.pop(k) for k in LEGACY_DATA_KEYS if k in old_config and k not in new_config]
    before = old.get("data") or ({"path": legacy[0]} if legacy else None)
    if record is None or before is None:
        return {}, {}
    if before.get("digest") not in (None, record["digest"]):
        return {"data": [before["digest"], record["digest"]]}, {}
    if before.get("path") != record["path"]:
        return {}, {"from": before.get("path"), "to": record["path"]}
    return {}, {}


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write JSON atomically (sorted keys, NaN written as null)."""
    text = json.dumps(_jsonable(data), indent=2, sort_keys=True) + "\n"
    atomic_write_bytes(path, lambda f: f.write(text.encode("utf-8")))


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(path, f"not valid JSON (line {e.lineno})") from None


@dataclass(frozen=True)
class Run:
    """A run folder. Create with ``Run.create(out, method, config_dict)``; open with ``Run.open(path)``."""

    path: Path

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoint.pt"

    @property
    def log_path(self) -> Path:
        return self.path / "log.jsonl"

    @classmethod
    def create(cls, out: str | os.PathLike, method: str, config: Mapping[str, Any],
               force_config: bool = False, defaults: Mapping[str, Any] | None = None,
               data: str | os.PathLike | None = None, unchecked: Sequence[str] = ()) -> "Run":
        """Create (or reopen for resuming) the run folder ``out`` and record its config and training ``data``
        (``data_record``: every method records it, so one rule holds for all).

        Reopening a folder whose ``config.json`` names another method raises ``InputError``. Resuming (the folder
        holds a checkpoint) with a config that differs from the recorded one raises ``ConfigError`` naming the
        differing keys, unless ``force_config``: then the new config is recorded and the change is logged as a
        ``force_config`` event in ``log.jsonl``.

        ``defaults``: the config (same nesting) that a run recorded before a field existed behaves as, normally the
        config class's defaults (new fields are added switched off). A key missing from the recorded config whose
        new value equals its default is no change: the run resumes, the key is recorded and a ``config_upgraded``
        event lists it. Any other difference, a removed key included, is a change.

        The data's digest is part of the config in this sense: other data (another world, an edited manifest) is a
        change named ``data``. Its path is not: a run folder moved with its data, or resumed from a copy of them,
        resumes, records the new path and logs a ``data_moved`` event. ``unchecked``: dotted config keys that only
        say where things are (a cache folder, another run read by evaluation): recorded, never a change.
        """
        path = Path(out)
        path.mkdir(parents=True, exist_ok=True)
        cfg_file = path / "config.json"
        run = cls(path)
        record = data_record(data) if data is not None else None
        if cfg_file.exists():
            old = read_json(cfg_file)
            if old.get("method") != method:
                raise InputError(path, f"run folder belongs to method '{old.get('method')}', not '{method}'")
            old_config = dict(old.get("config", {}))
            other_data, moved = _data_changes(old, old_config, config, record)
            changed = config_changes(old_config, _jsonable(dict(config)))
            upgraded = _default_additions(changed, defaults)
            changed = {**{k: v for k, v in changed.items() if k not in upgraded and k not in unchecked}, **other_data}
            if changed and run.checkpoint_path.exists():
                if not force_config:
                    keys = ", ".join(changed)
                    raise ConfigError(f"{path}: resuming with a changed config ({keys}); train into a new --out, "
                                      f"or pass --force-config to continue with the new values")
                if dist.is_main():
                    run.log(run.last_step(), event="force_config", changed=changed)
            if upgraded and run.checkpoint_path.exists() and dist.is_main():
                run.log(run.last_step(), event="config_upgraded", added=upgraded)
            if moved and run.checkpoint_path.exists() and dist.is_main():
                run.log(run.last_step(), event="data_moved", **moved)
        write_json(cfg_file, {"method": method, "config": dict(config),
                              **({"data": record} if record is not None else {})})
        return run

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Run":
        path = Path(path)
        if not (path / "config.json").is_file():
            raise InputError(path, "not a run folder (no config.json): train one with `voiceface train`")
        return cls(path)

    @property
    def method(self) -> str:
        return read_json(self.path / "config.json")["method"]

    @property
    def config(self) -> dict[str, Any]:
        return read_json(self.path / "config.json")["config"]

    @property
    def data(self) -> str | None:
        """The path of the run's training data as last recorded (older GAN / SfV runs: their config's data key);
        None when the run did not record it."""
        stored = read_json(self.path / "config.json")
        legacy = [stored.get("config", {}).get(k) for k in LEGACY_DATA_KEYS]
        return (stored.get("data") or {}).get("path") or next((v for v in legacy if v), None)

    def log(self, step: int, **values: Any) -> None:
        """Append one JSON line ``{"step", "time", **values}`` to ``log.jsonl``."""
        record = {"step": int(step), "time": round(time.time(), 3), **_jsonable(values)}
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")

    def last_step(self) -> int:
        """The highest step in ``log.jsonl`` (0 when nothing was logged)."""
        return max((int(r.get("step", 0)) for r in self.read_log()), default=0)

    def read_log(self) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        rows = []
        for line in self.log_path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line torn by a kill: skip it
                continue
        return rows

    def write_results(self, results: Mapping[str, Any]) -> Path:
        out = self.path / "results.json"
        write_json(out, results)
        return out

    def read_results(self) -> dict[str, Any]:
        return read_json(self.path / "results.json")
