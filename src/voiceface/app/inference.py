"""What the app computes, without any web code: the models are loaded once (``VoiceFaceApp``); ``analyse_voice``
turns 16 kHz samples into every voice-tab output and ``analyse_photo`` an image upload into the photo tab's CEST
outputs. Each output part that cannot be made (run missing, no speech for that model) carries its reason instead,
so the rest of the page still fills.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError, VoicefaceError
from . import media
from .runs import NATIONALITY_COMMAND, AppRuns

GENDER_NAMES = {"m": "male", "f": "female"}


@dataclass
class Gallery:
    """The world's gallery faces: (N, S, S, 3) uint8 images, per image identity / gender / nationality, and (N, d)
    L2-normalised DIMNet face embeddings."""

    images: np.ndarray
    identity: np.ndarray
    gender: np.ndarray
    nationality: np.ndarray
    embeddings: np.ndarray


def load_gallery(trained, world: Path, splits: tuple[str, ...] = ("val", "test")) -> Gallery:
    """The face items of ``world``'s ``splits`` (people unseen in training; all items when there are none) embedded
    by a trained DIMNet's face net."""
    from ..data.loaders import FaceBank
    from ..data.manifest import read_manifest
    from ..methods.dimnet.evaluate import embed_faces

    manifest = read_manifest(world / "manifest.csv")
    faces = [it for it in manifest if it.modality == "face"]
    chosen = [it for it in faces if it.split in splits] or faces
    bank = FaceBank(chosen, trained.config.net.face_size, root=manifest.root)
    emb = torch.nn.functional.normalize(torch.from_numpy(embed_faces(trained.face, bank, torch.device("cpu"))), dim=1)
    items = bank.items
    return Gallery(bank.images(range(len(bank))), np.array([it.identity for it in items]),
                   np.array([it.gender for it in items]), np.array([it.nationality for it in items]), emb.numpy())


def nearest_faces(gallery: Gallery, voice_emb: np.ndarray, k: int = 5) -> list[dict]:
    """The ``k`` gallery identities closest to a (d,) normalised voice embedding (cosine; each identity's best image),
    best first: image (data URL), identity, gender, nationality, similarity."""
    sims = gallery.embeddings @ voice_emb                                    # (N,)
    order = np.argsort(-sims, kind="stable")
    _, first = np.unique(gallery.identity[order], return_index=True)        # best image per identity
    best = order[np.sort(first)][:k]
    return [{"image": media.png_url(gallery.images[i]), "identity": str(gallery.identity[i]),
             "gender": str(gallery.gender[i]), "nationality": str(gallery.nationality[i]),
             "similarity": round(float(sims[i]), 4)} for i in best]


@torch.no_grad()
def covariates(trained, emb: torch.Tensor) -> dict[str, list[dict]]:
    """Per trained covariate head (gender, nationality): [{label, probability}] sorted by probability, from a
    (1, d) voice embedding."""
    out = {}
    for name in ("gender", "nationality"):
        if name in trained.heads.heads:
            p = torch.softmax(trained.heads.heads[name](emb), dim=1)[0].numpy()
            classes = trained.encoders[name].classes
            out[name] = [{"label": classes[i], "probability": round(float(p[i]), 4)} for i in np.argsort(-p)]
    return out


def estimate_genders(dimnet_run: str | Path, voices) -> list[dict]:
    """The gender of each recording (paths or (N,) 16 kHz arrays) by a DIMNet run's gender head: per voice
    {gender, probability} or {error}. A run without a gender head raises ``InputError``."""
    from ..methods.dimnet.train import load_trained

    trained = load_trained(dimnet_run)
    if "gender" not in trained.heads.heads:
        raise InputError(dimnet_run, "this DIMNet run has no gender head (train one with covariates=G or IG)")
    out = []
    for v in voices:
        try:
            best = covariates(trained, voice_embedding(trained, v))["gender"][0]
        except InputError as e:
            out.append({"error": e.problem})
            continue
        out.append({"gender": best["label"], "probability": best["probability"]})
    return out


@torch.no_grad()
def voice_embedding(trained, voice) -> torch.Tensor:
    """(1, d) DIMNet voice embedding of a recording (path or (N,) 16 kHz array); ``InputError`` when it has no
    usable speech."""
    from ..audio import extract_features

    return trained.voice(torch.from_numpy(extract_features(voice)).T[None])    # (1, 64, T) -> (1, d)


def synthetic_voice(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """(N,) float32 16 kHz babble of a fixed adult speaker (the simulated world's synthesiser)."""
    from ..sim.voices import VoiceParams, synthesize

    params = VoiceParams(f0_hz=120.0, f0_range_st=2.0, vtl_cm=17.0, formant_offsets=(1.0, 1.0, 1.0, 1.0),
                         nasal_pole_hz=270.0, nasal_zero_hz=1100.0, nasal_pole2_hz=2100.0, nasal_bw_hz=120.0,
                         nasality=0.1, lip_rounding=0.15, tilt_db_oct=-1.0, rate_syl_s=4.5, jitter=0.01,
                         shimmer=0.03, breathiness=0.05, open_quotient=0.6)
    return synthesize(params, seconds, rng).astype(np.float32)


class VoiceFaceApp:
    """Every model of the app, loaded once from ``runs``; methods are not thread-safe (the server serialises)."""

    def __init__(self, runs: AppRuns):
        self.runs = runs
        self.dimnet = self.gan = self.gallery = self.shape_model = self.detector = None
        if runs.dimnet is not None:
            from ..methods.dimnet.train import load_trained
            self.dimnet = load_trained(runs.dimnet)
            if runs.world is not None:
                self.gallery = load_gallery(self.dimnet, runs.world)
        if runs.gan is not None:
            from ..methods.gan.generate import load_model
            self.gan = load_model(runs.gan)
        if runs.sfv is not None and (runs.sfv / "shape_model.npz").is_file():
            self.shape_model = dict(np.load(runs.sfv / "shape_model.npz"))
        if runs.cest is not None:
            from ..face.detect import FaceDetector
            self.detector = FaceDetector()

    def warm_up(self) -> None:
        """One analysis of a synthetic voice, so that the first user's request does not pay the lazy imports and
        first allocations (about 4 s on one core)."""
        self.analyse_voice(synthetic_voice(3.0, np.random.default_rng(0)))

    def status(self) -> dict:
        """Runs in use and the parts that are missing (with the command that makes each)."""
        return {"runs": self.runs.to_dict(), "missing": self.runs.missing(),
                "genders": sorted(str(g) for g in self.shape_model["genders"]) if self.shape_model else []}

    def analyse_voice(self, samples: np.ndarray, gender: str | None = None) -> dict:
        """(N,) float32 16 kHz samples -> {face, covariates, gender, nearest, shape, timings}; ``gender`` ('m' /
        'f') overrides the estimate from the voice for the 3D shape."""
        out: dict = {"timings": {}}
        t = time.perf_counter()
        out["dimnet"] = self._dimnet_part(samples)
        out["timings"]["dimnet"] = time.perf_counter() - t
        t = time.perf_counter()
        out["face"] = self._gan_part(samples)
        out["timings"]["gan"] = time.perf_counter() - t
        out["gender"] = self._gender_choice(out["dimnet"], gender)
        t = time.perf_counter()
        out["shape"] = self._sfv_part(samples, out["gender"].get("used"))
        out["timings"]["sfv"] = time.perf_counter() - t
        return out

    def _dimnet_part(self, samples: np.ndarray) -> dict:
        if self.dimnet is None:
            return {"error": "no DIMNet run"}
        try:
            emb = voice_embedding(self.dimnet, samples)                      # (1, d)
        except InputError as e:
            return {"error": e.problem}
        res = {"covariates": covariates(self.dimnet, emb),
               "absent": [c for c in ("gender", "nationality") if c not in self.dimnet.heads.heads],
               "absent_command": NATIONALITY_COMMAND}
        if self.gallery is not None:
            res["nearest"] = nearest_faces(self.gallery, torch.nn.functional.normalize(emb, dim=1)[0].numpy())
        return res

    def _gan_part(self, samples: np.ndarray) -> dict:
        if self.gan is None:
            return {"error": "no GAN run"}
        from ..methods.gan.generate import generate, to_uint8

        gen = generate(self.gan, [samples])
        if gen.failed:
            return {"error": gen.failed[0][1].replace("<array 0>: ", "")}
        return {"image": media.png_url(to_uint8(gen.faces)[0])}

    def _gender_choice(self, dimnet: dict, given: str | None) -> dict:
        """{estimate, probability (of the estimate), used, source ('given' | 'voice' | None)}."""
        est = dimnet.get("covariates", {}).get("gender")
        res = {"estimate": est[0]["label"] if est else None, "probability": est[0]["probability"] if est else None}
        if given in GENDER_NAMES:
            return res | {"used": given, "source": "given"}
        return res | {"used": res["estimate"], "source": "voice" if est else None}

    def _sfv_part(self, samples: np.ndarray, gender: str | None) -> dict:
        if self.shape_model is None:
            return {"error": "no evaluated SfV run"}
        if gender not in set(self.shape_model["net_gender"].astype(str)):
            return {"error": "choose the speaker's gender (no DIMNet gender estimate)" if gender is None
                    else f"the SfV run has no estimators for gender {gender!r}"}
        from ..methods.sfv.evaluate import shape_voices

        with media.scratch_dir() as tmp:
            try:
                res = shape_voices(self.runs.sfv, [media.write_wav(tmp / "voice.wav", samples)], [gender],
                                   tmp / "out")[0]
            except InputError as e:                    # the run cannot reconstruct (e.g. no landmarked mesh)
                return {"error": str(e)}
            if "error" in res:
                return {"error": res["error"].split(": ", 1)[-1]}
            info = json.loads((tmp / "out" / "voice.json").read_text(encoding="utf-8"))
            verts, tri, _ = media.read_obj(Path(res["obj"]))
        return shape_payload(verts, tri, self.shape_model[f"{gender}_mean"].reshape(-1, 3), info["ams"], gender)

    def analyse_photo(self, data: bytes, filename: str) -> dict:
        """Image upload -> CEST outputs: overlay, UV reflectance, shading, relit (data URLs), the 3D shape with
        reflectance colours, the photometric error. Raises ``InputError`` (naming ``filename``) when the image
        cannot be read or holds no face."""
        if self.runs.cest is None:
            raise InputError(None, "no CEST run: " + next(m["command"] for m in self.runs.missing()
                                                           if m["part"] == "cest"))
        from ..methods.cest.reconstruct import reconstruct_images

        media.check_size(data, filename)
        with media.upload_file(data, filename) as path:
            rec = reconstruct_images(self.runs.cest, [path], path.parent / "out", detector=self.detector)[0]
            if "error" in rec:
                msg = rec["error"].removeprefix(f"{path}: ").replace(str(path), filename)
                raise InputError(filename, msg)
            return photo_payload(Path(rec["obj"]), rec)


def shape_payload(verts: np.ndarray, tri: np.ndarray, mean: np.ndarray, ams: list[dict], gender: str) -> dict:
    """The 3D-shape part: the reconstruction coloured by its per-vertex distance to the gender's mean face, the
    mean face, the AM table (selected first) and the distance range."""
    diff = np.linalg.norm(verts - mean, axis=1)                              # (V,)
    table = sorted(({"name": a["name"], "region": a["region"], "prediction": round(a["prediction"], 4),
                     "sd": round(float(np.sqrt(max(a["uncertainty_var"], 0.0))), 4), "selected": a["selected"],
                     "used_in_fit": a["used_in_fit"]} for a in ams), key=lambda r: (not r["selected"], r["name"]))
    grey = np.full_like(mean, 0.8)
    return {"gender": gender, "mesh": media.mesh_payload(verts, tri, media.heat_colors(diff)),
            "mean_mesh": media.mesh_payload(mean, tri, grey), "difference_max": float(diff.max()),
            "difference_mean": float(diff.mean()), "ams": table,
            "n_selected": int(sum(r["selected"] for r in table))}


def photo_payload(obj: Path, rec: dict) -> dict:
    """The photo tab from ``reconstruct_images``' files beside ``obj`` (``<stem>_overlay.png`` ...)."""
    stem = obj.with_suffix("")
    verts, tri, colors = media.read_obj(obj)
    return {"images": {k: media.file_url(Path(f"{stem}_{k}.png")) for k in ("overlay", "uv", "shading", "relit")},
            "mesh": media.mesh_payload(verts, tri, colors),
            "photometric_error": rec["photometric_error"], "greyscale": rec["greyscale"]}


def load_app(runs: AppRuns) -> VoiceFaceApp:
    """``VoiceFaceApp(runs)``, turning a run that cannot be loaded into a ``VoicefaceError`` naming it."""
    try:
        return VoiceFaceApp(runs)
    except (KeyError, RuntimeError) as e:
        raise VoicefaceError(f"cannot load the runs {runs.to_dict()}: {e}") from None
