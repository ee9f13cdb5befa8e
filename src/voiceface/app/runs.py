"""The runs the app uses: found in a ``voiceface demo`` folder (``world/``, ``dimnet/dimnet_*``, ``gan/gan_run``,
``cest/cest_a``, ``sfv/sfv_run``) or given as run folders (each one's ``config.json`` names its method)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Sequence

from ..engine import Run

# per part: what it shows in the page and the command that makes it
PARTS: dict[str, tuple[str, str]] = {
    "world": ("the gallery of faces (nearest faces by DIMNet matching)",
              "voiceface sim build --preset small --out demo/world"),
    "dimnet": ("gender / nationality from the voice, nearest gallery faces",
               "voiceface demo --out demo --methods dimnet"),
    "gan": ("the face generated from the voice", "voiceface demo --out demo --methods gan"),
    "sfv": ("the 3D shape from the voice and its AM table", "voiceface demo --out demo --methods sfv"),
    "cest": ("the photo tab (CEST 3D reconstruction of a photo)", "voiceface demo --out demo --methods cest"),
}
# DIMNet variants in order of preference: the gender / nationality heads need a covariate-supervised run (the demo
# trains G, I and IG; IGN adds nationality)
DIMNET_ORDER = ("dimnet_IGN", "dimnet_IG", "dimnet_GN", "dimnet_G", "dimnet_IN", "dimnet_N", "dimnet_I")
NATIONALITY_COMMAND = ("voiceface train dimnet --data demo/world --out demo/dimnet/dimnet_IGN "
                       "--config configs/dimnet/cpu.yaml covariates=IGN")
DEMO_LAYOUT = {"gan": ("gan/gan_run",), "cest": ("cest/cest_a",), "sfv": ("sfv/sfv_run",),
               "dimnet": tuple(f"dimnet/{v}" for v in DIMNET_ORDER)}


@dataclass
class AppRuns:
    """Paths of the world and of one run per method (None when absent)."""

    world: Path | None = None
    dimnet: Path | None = None
    gan: Path | None = None
    cest: Path | None = None
    sfv: Path | None = None

    def missing(self) -> list[dict[str, str]]:
        """One record per absent part: ``part``, ``shows`` (what the page lacks), ``command`` (what makes it)."""
        out = [{"part": f.name, "shows": PARTS[f.name][0], "command": PARTS[f.name][1]}
               for f in fields(self) if getattr(self, f.name) is None]
        if self.sfv is not None and not (self.sfv / "shape_model.npz").is_file():
            out.append({"part": "sfv", "shows": "the 3D shape (the SfV run is not evaluated yet)",
                        "command": f"voiceface evaluate sfv --run {self.sfv}"})
        return out

    def to_dict(self) -> dict[str, str | None]:
        return {f.name: None if getattr(self, f.name) is None else str(getattr(self, f.name)) for f in fields(self)}


def run_method(path: Path) -> str | None:
    """The method named by ``path/config.json`` (a run folder), else None."""
    cfg = path / "config.json"
    if not (cfg.is_file() and (path / "checkpoint.pt").is_file()):
        return None
    try:
        return json.loads(cfg.read_text(encoding="utf-8")).get("method")
    except (json.JSONDecodeError, OSError):
        return None


def _from_demo(root: Path, runs: AppRuns) -> None:
    """Fill the parts of ``runs`` still empty from a demo folder ``root``."""
    if runs.world is None and (root / "world" / "manifest.csv").is_file():
        runs.world = root / "world"
    for part, candidates in DEMO_LAYOUT.items():
        if getattr(runs, part) is None:
            found = next((root / c for c in candidates if run_method(root / c) == part), None)
            setattr(runs, part, found)


def _world_of(run: Path) -> Path | None:
    """The world a run trained on, when the run records a manifest path that still exists."""
    v = Run(run).data
    if not v:
        return None
    p = Path(v)
    p = p.parent if p.suffix == ".csv" else p
    return p if (p / "manifest.csv").is_file() else None


def find_runs(paths: Sequence[str | os.PathLike]) -> AppRuns:
    """Runs from demo folders and / or run folders (earlier paths win); the world is also taken from a
    run's recorded training data when no demo folder gives one."""
    runs = AppRuns()
    for p in map(Path, paths):
        method = run_method(p)
        if method in DEMO_LAYOUT and getattr(runs, method) is None:
            setattr(runs, method, p)
        elif (p / "manifest.csv").is_file() and runs.world is None:
            runs.world = p
        elif p.is_dir():
            _from_demo(p, runs)
    if runs.world is None:
        for part in ("dimnet", "gan", "sfv"):
            run = getattr(runs, part)
            if run is not None and (w := _world_of(run)) is not None:
                runs.world = w
                break
    return runs
