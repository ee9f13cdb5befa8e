"""Build and load the simulated audiovisual world (the layout contract of the team brief).

::

    WORLD/manifest.csv             voice, face, clip and mesh items; split train | val | test by identity
    WORLD/world.json               preset, seed, coupling, counts, ground truth of the voice-face link
    WORLD/people.csv               identity, covariates, skin, voice parameters, face controls, look (look_*)
    WORLD/voices/<id>/<n>.wav      16 kHz mono 16-bit speech (session column = recording session)
    WORLD/faces/<id>/<n>.png       aligned 128x128 RGB crop; extra column path64 -> faces64/<id>/<n>.png
    WORLD/faces/<id>/<n>.json      its 68 landmarks (crop pixels, 128 and 64), pose (7,), light (3, 9)
    WORLD/meshes/<id>.npz          neutral shape: vertices (V, 3) float32, coeffs (Ki,), ams (94,), albedo (V, 3)
    WORLD/clips/<id>_<k>.npz       frames (F,S,S,3) uint8, masks (F,S,S) bool, landmarks (F,68,2), coeffs (Ki,),
                                   expression (F,Ke), pose (F,7), light (F,27), albedo (V,3)

Deterministic from the seed: identity i draws everything from the i-th child of ``SeedSequence(seed)``, so a
parallel build equals a serial one file for file. Resumable: each identity's files are written atomically and a
marker ``.done/<id>.json`` (holding its manifest rows) is written last; a rerun skips marked identities.
"""
from __future__ import annotations

import csv
import json
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import MISSING, asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..data.manifest import Item, Manifest, read_manifest, write_manifest
from ..errors import ConfigError, InputError
from . import people as ppl
from . import voices
from .presets import Preset, get_preset

log = logging.getLogger(__name__)
FORMAT = "voiceface-sim-world-1"


# ---------------------------------------------------------------------------------------------------------------
# Atomic writers
# ---------------------------------------------------------------------------------------------------------------

def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _write_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    tmp = _tmp(path)
    Image.fromarray(image).save(tmp, format="PNG", compress_level=1)
    os.replace(tmp, path)


def _write_json(path: Path, obj) -> None:
    tmp = _tmp(path)
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def _write_npz(path: Path, **arrays) -> None:
    tmp = _tmp(path)
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------------------------
# One identity
# ---------------------------------------------------------------------------------------------------------------

def identity_name(i: int) -> str:
    return f"sim{i:05d}"


def _identity_job(root: str, index: int, seed: int, n_total: int, preset: Preset, coupling: float, gender: str
                  ) -> dict:
    """Generate every file of identity ``index``; returns its marker (people row + item rows)."""
    root_p = Path(root)
    ident = identity_name(index)
    children = np.random.SeedSequence(seed).spawn(n_total)[index].spawn(5)  # person, voice, stills, clips, spare
    person = ppl.make_person(ident, children[0], gender)
    common = {"identity": ident, "gender": person.gender, "nationality": person.nationality,
              "age": round(person.age, 2)}
    neutral, albedo = person.neutral_shape(), person.albedo()
    rows = _write_voices(root_p, person, coupling, preset, np.random.default_rng(children[1]))
    rows.append(_write_mesh(root_p, person, neutral, albedo))
    rows += _write_stills(root_p, person, albedo, preset, np.random.default_rng(children[2]))
    rows += _write_clips(root_p, person, neutral, albedo, preset, np.random.default_rng(children[3]))
    marker = {"identity": ident, "person": ppl.person_row(person, coupling, preset.age_cue),
              "items": [{**common, **r} for r in rows]}
    _write_json(root_p / ".done" / f"{ident}.json", marker)
    return marker


def _write_voices(root: Path, person, coupling: float, preset: Preset, rng: np.random.Generator) -> list[dict]:
    """voices/<id>/<n>.wav: ``preset.utterances`` utterances spread over ``preset.sessions`` sessions."""
    vp = person.voice(coupling, preset.age_cue)
    sessions = [voices.sample_session(rng, snr_db=preset.snr_db, rt60_s=preset.rt60_s)
                for _ in range(preset.sessions)]
    ident = person.identity
    (root / "voices" / ident).mkdir(parents=True, exist_ok=True)
    rows = []
    for n in range(preset.utterances):
        s = n % preset.sessions
        dur = round(float(rng.uniform(*preset.duration_s)), 2)
        voices.write_wav(root / "voices" / ident / f"{n}.wav", voices.synthesize(vp, dur, rng, sessions[s]))
        rows.append({"path": f"voices/{ident}/{n}.wav", "modality": "voice", "session": f"{ident}_s{s}",
                     "duration": dur})
    return rows


def _write_mesh(root: Path, person, neutral, albedo) -> dict:
    """meshes/<id>.npz: neutral vertices (V, 3), identity coefficients (Ki,), AMs (94,), albedo (V, 3)."""
    (root / "meshes").mkdir(parents=True, exist_ok=True)
    ams = ppl.coeffs_to_ams(person.id_coeffs[None])[0]
    _write_npz(root / "meshes" / f"{person.identity}.npz", vertices=neutral.numpy().astype(np.float32),
               coeffs=person.id_coeffs.astype(np.float32), ams=ams.astype(np.float32),
               albedo=albedo.numpy().astype(np.float32))
    return {"path": f"meshes/{person.identity}.npz", "modality": "mesh"}


STILL_EXPRESSION = 0.5
"""Still photos show a person's expressions at this fraction of their strength (posed photos are mostly calm;
clips keep the full range)."""


def render_stills(person, albedo, images: int, render_size: int, rng: np.random.Generator
                  ) -> tuple[list[dict], np.ndarray]:
    """A person's ``images`` aligned still photos, each with one of their expressions (plus a little variation).

    Args:
        person: ``people.Person``.  albedo: (V, 3) their ``person.albedo()``.  render_size: photo side before
        alignment.  rng: the stills' generator.
    Returns:
        (``faces.aligned_stills``'s list of B dicts, expressions (B, Ke)).
    """
    import torch

    from . import faces

    model = ppl.face_model()
    ke = model.num_expression
    pick = rng.integers(0, len(person.expressions), images)
    expr = STILL_EXPRESSION * person.expressions[pick] + 0.15 * rng.standard_normal((images, ke))
    ident_c = torch.as_tensor(np.repeat(person.id_coeffs[None], images, 0), dtype=torch.float32)
    shapes = model.shape(ident_c, torch.as_tensor(expr, dtype=torch.float32) if ke else None)
    return faces.aligned_stills(_render_kit(), rng, shapes, albedo, render_size, look=person.look), expr


def _write_stills(root: Path, person, albedo, preset: Preset, rng: np.random.Generator) -> list[dict]:
    """faces/<id>/<n>.png (128), faces64/<id>/<n>.png (64) and faces/<id>/<n>.json for ``preset.images`` photos
    (``render_stills``)."""
    if not preset.images:
        return []
    stills, expr = render_stills(person, albedo, preset.images, preset.render_size, rng)
    ident = person.identity
    fdir, f64dir = root / "faces" / ident, root / "faces64" / ident
    fdir.mkdir(parents=True, exist_ok=True)
    f64dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for n, st in enumerate(stills):
        _write_png(fdir / f"{n}.png", st["crops"][128])
        _write_png(f64dir / f"{n}.png", st["crops"][64])
        _write_json(fdir / f"{n}.json", {
            "landmarks128": np.round(st["landmarks"][128], 3).tolist(),
            "landmarks64": np.round(st["landmarks"][64], 3).tolist(),
            "pose": np.round(st["pose"], 5).tolist(), "light": np.round(st["light"], 5).tolist(),
            "expression": np.round(expr[n], 5).tolist()})
        rows.append({"path": f"faces/{ident}/{n}.png", "modality": "face", "width": 128, "height": 128,
                     "extra": {"path64": f"faces64/{ident}/{n}.png"}})
    return rows


def _write_clips(root: Path, person, neutral, albedo, preset: Preset, rng: np.random.Generator) -> list[dict]:
    """clips/<id>_<k>.npz: ``preset.clips`` clips moving between two of the person's expressions."""
    from . import faces

    if not preset.clips:
        return []
    model = ppl.face_model()
    ke = model.num_expression
    exp_basis = (model.exp_basis * model.exp_std).T.reshape(ke, -1, 3) if ke else None      # (Ke, V, 3)
    (root / "clips").mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(preset.clips):
        nf = int(rng.integers(preset.clip_frames[0], preset.clip_frames[1] + 1))
        a, b = rng.choice(len(person.expressions), 2, replace=False)
        clip = faces.render_clip(_render_kit(), rng, neutral, exp_basis, person.expressions[a],
                                 person.expressions[b], albedo, nf, preset.clip_size, look=person.look)
        name = f"{person.identity}_{k}.npz"
        _write_npz(root / "clips" / name, frames=clip["frames"], masks=clip["masks"], landmarks=clip["landmarks"],
                   coeffs=person.id_coeffs.astype(np.float32), expression=clip["expression"], pose=clip["pose"],
                   light=clip["light"], albedo=albedo.numpy().astype(np.float32))
        rows.append({"path": f"clips/{name}", "modality": "clip", "width": preset.clip_size,
                     "height": preset.clip_size, "extra": {"frames": str(nf)}})
    return rows


@lru_cache(maxsize=1)
def _render_kit():
    """The render kit of the built-in model (built once per process)."""
    from .faces import RenderKit

    m = ppl.face_model()
    return RenderKit.build(m.mean, m.triangles, m.landmarks68.numpy())


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


# ---------------------------------------------------------------------------------------------------------------
# The world
# ---------------------------------------------------------------------------------------------------------------

def _split_assignment(genders: list[str], split: tuple[int, int, int], seed: int) -> list[str]:
    """Identity-level split, stratified by gender: identities are ordered by their seeded random rank within their
    gender divided by that gender's count (so every prefix holds both genders in proportion); the first
    ``split[0]`` are train, the next ``split[1]`` val, the rest test."""
    n = len(genders)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    g = np.asarray(genders)
    key = np.empty(n)
    for value in ("m", "f"):
        idx = np.flatnonzero(g == value)
        key[idx] = (rng.permutation(len(idx)) + rng.uniform(0, 1, len(idx))) / max(len(idx), 1)
    order = np.argsort(key, kind="stable")
    labels = np.empty(n, dtype=object)
    labels[order[:split[0]]] = "train"
    labels[order[split[0]:split[0] + split[1]]] = "val"
    labels[order[split[0] + split[1]:]] = "test"
    return labels.tolist()


_PRESET_DEFAULTS = {f.name: f.default for f in fields(Preset) if f.default is not MISSING}
"""Preset fields with a default (added after the first worlds were built, e.g. ``age_cue``): a build state written
before a field existed was built at its default."""


def _settings(preset: Preset, seed: int, coupling: float) -> dict:
    """The build settings as JSON values (tuples become lists), compared on resume."""
    return json.loads(json.dumps({"format": FORMAT, "preset": asdict(preset), "seed": int(seed),
                                  "coupling": float(coupling)}))


def build_world(out, preset: str | Preset = "tiny", seed: int = 0, coupling: float = 1.0, workers: int = 2,
                progress: bool = True) -> Path:
    """Generate a world into ``out`` (resuming a partial build with the same settings).

    Args:
        out: folder (created).
        preset: ``tiny`` | ``small`` | ``paper`` or a ``Preset``.
        seed: world seed (identities, splits, every random draw).
        coupling: strength of the face -> voice link in [0, 1] (``voices.voice_params_from_person``).
        workers: processes (1 = in this process).
        progress: show a tqdm progress bar.
    Returns:
        the path of ``out/manifest.csv``.
    Raises:
        ConfigError: bad preset or coupling, or ``out`` holds a world built with other settings.
    """
    p = get_preset(preset)
    if not 0.0 <= coupling <= 1.0:
        raise ConfigError(f"coupling must be in [0, 1], got {coupling}")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    settings = _settings(p, seed, coupling)
    state = root / ".build.json"
    if state.is_file():
        old = json.loads(state.read_text())
        old["preset"] = {**_PRESET_DEFAULTS, **old["preset"]}     # a state older than a preset field: its default
        if old != settings:
            raise ConfigError(f"{root} holds a world built with other settings ({old['preset']['name']}, seed "
                              f"{old['seed']}, coupling {old['coupling']}); use another folder")
    else:
        _write_json(state, settings)
    (root / ".done").mkdir(exist_ok=True)
    t0 = time.perf_counter()
    pop = ppl.population()           # computed (or loaded) once here, before the workers start
    n = p.identities
    genders = ppl.assign_genders(n, seed)
    markers: dict[int, dict] = {}
    todo = []
    for i in range(n):
        f = root / ".done" / f"{identity_name(i)}.json"
        if f.is_file():
            markers[i] = json.loads(f.read_text())
        else:
            todo.append(i)
    bar = _progress(len(todo), progress, f"sim {p.name}")
    if workers <= 1 or len(todo) <= 1:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)          # as in the workers (and bit-identical to them)
        try:
            for i in todo:
                markers[i] = _identity_job(str(root), i, seed, n, p, coupling, genders[i])
                bar.update(1)
        finally:
            torch.set_num_threads(threads)
    else:
        import multiprocessing as mp

        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                 initializer=_init_worker) as ex:
            futs = {ex.submit(_identity_job, str(root), i, seed, n, p, coupling, genders[i]): i for i in todo}
            for fut in as_completed(futs):
                markers[futs[fut]] = fut.result()
                bar.update(1)
    bar.close()
    manifest = _finish(root, p, seed, coupling, markers, pop, time.perf_counter() - t0)
    return manifest


def _progress(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="person")


def _finish(root: Path, p: Preset, seed: int, coupling: float, markers: dict[int, dict], pop, seconds: float
            ) -> Path:
    """Write manifest.csv, people.csv and world.json from the identity markers."""
    splits = _split_assignment([markers[i]["person"]["gender"] for i in range(p.identities)], p.split, seed)
    items = []
    people_rows = []
    for i in range(p.identities):
        mk = markers[i]
        row = dict(mk["person"], split=splits[i])
        people_rows.append(row)
        for r in mk["items"]:
            r = dict(r)
            extra = r.pop("extra", {})
            items.append(Item(path=str(root / r.pop("path")), split=splits[i], extra=extra, **r))
    manifest = write_manifest(items, root / "manifest.csv")
    cols = list(people_rows[0])
    tmp = _tmp(root / "people.csv")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(people_rows)
    os.replace(tmp, root / "people.csv")
    counts = {m: sum(1 for it in items if it.modality == m) for m in ("voice", "face", "clip", "mesh")}
    counts.update(identities=p.identities, **{s: splits.count(s) for s in ("train", "val", "test")},
                  male=sum(r["gender"] == "m" for r in people_rows),
                  audio_seconds=round(sum(it.duration or 0.0 for it in items), 2))
    info = {**_settings(p, seed, coupling), "counts": counts, "build_seconds_last_run": round(seconds, 2),
            "ground_truth": ground_truth(pop, coupling), "model": _model_info()}
    _write_json(root / "world.json", info)
    log.info("world %s: %d people, %d items written to %s", p.name, p.identities, len(items), root)
    return manifest


def _model_info() -> dict:
    m = ppl.face_model()
    return {"name": m.name, "units": m.units, "vertices": m.num_vertices, "identity_components": m.num_identity,
            "expression_components": m.num_expression, "albedo_components": m.num_albedo,
            "controls": list(ppl.control_names())}


LINK_DOC = {
    "f0": "gender, age (+ identity noise): no facial information",
    "vocal_tract_length": "gender, age (+ identity noise): no facial information",
    "nasal_pole_zero": "nose_protrusion (women only), nose_width: their specific parts (control z minus its "
                       "regression on all other controls), stronger for women (voices.LINK_GAIN)",
    "lip_rounding": "mouth_width (specific part), stronger for women",
    "identity_traits": "F0 level/range/declination/final rise-fall/accent timing, formant dispersion, per-vowel "
                       "formant table, formant bandwidths, F5, piriform and subglottal resonances, spectral tilt, "
                       "open quotient, breathiness, vocal fry, jitter, shimmer, nasality, speaking rate, vowel "
                       "share, pause habit, preferred vowels, long-term spectral envelope above 2 kHz: no facial "
                       "information",
    "coupling": "each face z used by the voice is c*z + sqrt(1-c^2)*e, e independent N(0,1)",
}


def ground_truth(pop, coupling: float) -> dict:
    """The voice-face link written to world.json: the mapping, the linked controls and, per gender ('m', 'f'),
    ``Population.ground_truth``: linked / unlinked AMs and the R^2 of every AM given the voice."""
    return {"linked_features": list(ppl.voices.LINKED_FEATURES),
            "linked_controls": [pop.names[i] for i in pop.linked],
            "face_linked_voice_params": list(ppl.voices.FACE_LINKED_PARAMS), "mapping": LINK_DOC,
            "reference_sample_per_gender": int(len(pop.sample["m"]["age"])),
            "thresholds": {"linked_r2": ppl.LINKED_R2, "unlinked_r2": ppl.UNLINKED_R2},
            **pop.ground_truth(coupling)}


# ---------------------------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class World:
    """A built world: its folder, manifest, people table and world.json."""

    root: Path
    manifest: Manifest
    people: list[dict] = field(repr=False)
    info: dict = field(repr=False)

    @property
    def ground_truth(self) -> dict:
        return self.info["ground_truth"]

    @property
    def coupling(self) -> float:
        return float(self.info["coupling"])

    def person(self, identity: str) -> dict:
        for r in self.people:
            if r["identity"] == identity:
                return r
        raise KeyError(identity)

    def mesh(self, identity: str) -> dict[str, np.ndarray]:
        """The identity's neutral mesh arrays (vertices, coeffs, ams, albedo)."""
        with np.load(self.root / "meshes" / f"{identity}.npz") as d:
            return {k: d[k] for k in d.files}

    def clip(self, path) -> dict[str, np.ndarray]:
        with np.load(path) as d:
            return {k: d[k] for k in d.files}


def _typed(v: str):
    try:
        return float(v)
    except ValueError:
        return v


def load_world(path) -> World:
    """Load a world folder (or its manifest.csv) built by ``build_world``."""
    root = Path(path)
    if root.is_file():
        root = root.parent
    info_path = root / "world.json"
    if not info_path.is_file():
        raise InputError(root, "not a simulated world (no world.json; build one with `voiceface sim build`)")
    info = json.loads(info_path.read_text())
    if info.get("format") != FORMAT:
        raise InputError(info_path, f"unknown world format {info.get('format')!r}")
    with open(root / "people.csv", newline="", encoding="utf-8") as f:
        people_rows = [{k: (v if k in ("identity", "gender", "nationality", "group", "split") else _typed(v))
                        for k, v in r.items()} for r in csv.DictReader(f)]
    return World(root=root, manifest=read_manifest(root / "manifest.csv"), people=people_rows, info=info)
