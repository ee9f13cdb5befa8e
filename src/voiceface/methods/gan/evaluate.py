"""Evaluation of the voice-to-face GAN (Sec. 3.3.1-3.3.2, Table 3.3, Fig. 3.2, 3.3, 3.5).

Metrics written to ``RUN/results.json`` (fractions in [0, 1]):

* ``d_speech_mean/std``, ``d_noise_mean/std``: F_d's output (sigmoid) on faces generated from speech crops and from
  noise (white, pink, brown, hum) of ``eval_durations`` seconds, pooled over durations (per duration too).
* ``gen_id_top1/top5``: F_c's identity accuracy on faces generated from held-out sessions of training identities
  (top-k uses k = min(5, identities)).
* ``gen_gender_acc``: a face gender classifier with F_d's architecture, trained on real training faces
  (``gender_clf_real_acc``: its accuracy on real faces of the unseen identities), applied to faces generated from
  the unseen identities' recordings.
* ``gen_match_v2f_U/G``: 1:2 voice->face matching through the generated face: probe = face generated from a test
  recording, gallery = real faces of the unseen identities, every positive pair with one imposter (any identity /
  same gender), cosine similarity of face embeddings (``metrics.matching``). The face embedding is DIMNet-I's face
  network when ``dimnet_i_run`` is given and loadable, else F_c's convolutional trunk (``gen_match_embedding``);
  ``*_dlib`` repeat it with the dlib 128-d descriptor; ``*_train`` use training recordings and faces.
* ``sim_pixel_*``: pixel-space distance of each generated face to the mean real face of the speaker vs to that of a
  random other identity; ``sim_landmark_*``: the same with 68-point landmark shapes (dlib's predictor placed in the
  fixed aligned-face box, no detector, on 192 px upsamplings; Procrustes distance to the identity's mean shape).
* ``dlib_recall_at_*``, ``dlib_cos_*``, ``gender_dlib_real_acc``, ``gen_gender_dlib_acc``, ``dlib_frechet``,
  ``gen_diversity_ratio``, ...: generated faces judged by dlib's descriptor (``metrics.dlib_face_metrics``; the
  gender classifier is saved as ``RUN/gender_dlib.json``).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ...data.loaders import VoiceBank
from ...data.manifest import Item, read_manifest
from ...engine import Run, read_json
from ...errors import VoicefaceError
from ...metrics.matching import auc, encode_labels, make_trials, stratum_codes, trial_scores
from .. import resolve_data
from .generate import contact_sheet, faces_from_features
from .metrics import CachedDescriber, dlib_face_metrics, dlib_table
from .model import FaceClassifier
from .train import (TrainedGAN, feature_fn, load_faces64, load_run,
                    seeded, split_data, to_unit, voice_features)

log = logging.getLogger(__name__)
NOISE_TYPES = ("white", "pink", "brown", "hum")
RESULT_KEYS = ("gen_id_top1", "gen_id_top5", "gen_gender_acc", "gen_match_v2f_U", "gen_match_v2f_G",
               "d_speech_mean", "d_speech_std", "d_noise_mean", "d_noise_std")


def noise(kind: str, seconds: float, rng: np.random.Generator, sr: int = 16000) -> np.ndarray:
    """(N,) float32 noise at -26 dBFS: white, pink (1/f), brown (1/f^2) or mains hum (50 Hz harmonics + white)."""
    n = int(seconds * sr)
    if kind == "hum":
        t = np.arange(n) / sr
        x = sum(np.sin(2 * np.pi * 50 * k * t + rng.uniform(0, 6)) / k for k in range(1, 8))
        x = x + 0.1 * rng.standard_normal(n)
    else:
        alpha = {"white": 0.0, "pink": 1.0, "brown": 2.0}[kind]
        spec = np.fft.rfft(rng.standard_normal(n))
        f = np.maximum(np.fft.rfftfreq(n, 1 / sr), 1.0)
        x = np.fft.irfft(spec / f ** (alpha / 2), n)
    x = x / (np.sqrt(np.mean(x ** 2)) + 1e-12) * 10 ** (-26 / 20)
    return np.clip(x, -1, 1).astype(np.float32)


@torch.no_grad()
def d_output(model: TrainedGAN, faces: torch.Tensor) -> np.ndarray:
    """F_d(f) = sigmoid(logit): (B, 3, 64, 64) -> (B,)."""
    return torch.sigmoid(model.critics.d_logit(faces.to(model.device))).cpu().numpy()


def train_gender_classifier(faces_u8: np.ndarray, genders: np.ndarray, model: TrainedGAN, steps: int, seed: int
                            ) -> FaceClassifier:
    """Face gender classifier with F_d's architecture (Sec. 3.3.2): Adam(gender_lr, (0.5, 0.999)), batch 64, flips.

    faces_u8: (M, 3, 64, 64) uint8 real training faces; genders: (M,) 0 = m, 1 = f."""
    m = model.config.model
    with seeded(seed + 3):
        clf = FaceClassifier(2, m.face_channels, m.face_embed, m.face_kernel, model.config.leaky_slope)
    opt = torch.optim.Adam(clf.parameters(), lr=model.config.gender_lr, betas=(0.5, 0.999))
    y_all = torch.from_numpy(genders)
    faces_t = torch.from_numpy(faces_u8)
    for step in range(steps):
        rng = np.random.default_rng([seed, 13, step])
        idx = torch.from_numpy(rng.integers(0, len(faces_t), 64))
        x = to_unit(faces_t[idx])
        flip = torch.from_numpy(rng.random(len(idx)) < 0.5)
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(clf(x), y_all[idx])
        loss.backward()
        opt.step()
    return clf.eval()


@torch.no_grad()
def _predict(net: torch.nn.Module, faces: torch.Tensor, batch: int = 256) -> torch.Tensor:
    return torch.cat([net(faces[i:i + batch]) for i in range(0, len(faces), batch)]) if len(faces) else torch.zeros(0, 2)


def match_accuracy(probe_emb: np.ndarray, probe_ids: Sequence[str], probe_gender: Sequence[str],
                   gallery_emb: np.ndarray, gallery_ids: Sequence[str], gallery_gender: Sequence[str],
                   stratified: bool, seed: int) -> tuple[float, int]:
    """1:2 matching accuracy (all positive pairs, one imposter each; ``stratified``: imposter of the same gender)."""
    pid, gid = encode_labels(list(probe_ids), list(gallery_ids))
    keys = stratum_codes([list(probe_gender)], [list(gallery_gender)]) if stratified else (None, None)
    trials = make_trials(pid, gid, keys[0], keys[1], n_imposters=1, seed=seed)
    if len(trials) == 0:
        return float("nan"), 0
    pos, imp = trial_scores(probe_emb, gallery_emb, trials)
    ok = ~np.isnan(imp[:, 0])
    return float(np.mean(pos[ok] > imp[ok, 0])) if ok.any() else float("nan"), int(ok.sum())


class _Embedders:
    """Face embeddings for matching: the primary one (DIMNet-I face net or F_c's trunk) and dlib (if installed)."""

    def __init__(self, model: TrainedGAN):
        self.model = model
        self.primary_name = "critic_trunk"
        self._primary = lambda f: model.critics._trunk_c()(f.to(model.device)).cpu().numpy()
        run = model.config.dimnet_i_run
        if run:
            try:
                from ..dimnet import load_trained
                trained = load_trained(run)
                net, size = trained.face.eval(), int(trained.config.net.face_size)

                def dimnet_face(f: torch.Tensor) -> np.ndarray:    # (B, 3, 64, 64) -> (B, d), resized to DIMNet's S
                    if size != f.shape[-1]:
                        f = F.interpolate(f, size=(size, size), mode="bilinear", align_corners=False)
                    return net(f).cpu().numpy()
                self._primary = dimnet_face
                self.primary_name = "dimnet_face"
            except (ImportError, VoicefaceError) as e:
                log.warning("DIMNet face network not usable (%s); matching uses F_c's trunk", e)
        self.dlib = None
        try:
            from ...face.descriptors import FaceDescriber, default_workers
            self.dlib = FaceDescriber()
            self.dlib._load()
            self.dlib_cached = CachedDescriber(self.dlib, workers=default_workers())
        except (ImportError, VoicefaceError, OSError, RuntimeError) as e:
            log.warning("dlib face descriptor unavailable: %s", e)
            self.dlib = None

    @torch.no_grad()
    def primary(self, faces: torch.Tensor) -> np.ndarray:
        return np.concatenate([self._primary(faces[i:i + 256]) for i in range(0, len(faces), 256)])

    def dlib_desc(self, faces: torch.Tensor) -> np.ndarray:
        """(B, 3, 64, 64) in [-1, 1] -> (B, 128); memoised by image (the dlib metrics reuse matching's faces)."""
        return self.dlib_cached(faces)


def landmarks68(faces: torch.Tensor, size: int = 192) -> np.ndarray | None:
    """dlib's 68-point shape predictor in the fixed aligned-face box (no detection, so every crop gets points):
    (B, 3, 64, 64) in [-1, 1] -> (B, 68, 2) unit coordinates; None when dlib or its model is unavailable."""
    try:
        from PIL import Image

        from ...face.align import FACE_BOX
        from ...face.detect import SHAPE_68, import_dlib, model_path
        dlib = import_dlib("landmark-shape distances")
        predictor = dlib.shape_predictor(str(model_path(SHAPE_68)))
    except (ImportError, VoicefaceError, RuntimeError, OSError) as e:
        log.warning("68-point landmarks unavailable: %s", e)
        return None
    u8 = ((faces.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    rect = dlib.rectangle(*(int(round(v * size - 0.5)) for v in FACE_BOX))
    out = np.empty((len(u8), 68, 2))
    for i, img in enumerate(u8):  # one C++ call per image
        up = np.ascontiguousarray(np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR)))
        shape = predictor(up, rect)
        out[i] = [(p.x / size, p.y / size) for p in shape.parts()]
    return out


def procrustes_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Shape distance after optimal similarity alignment: (N, P, 2), (N, P, 2) -> (N,) RMS point distance of the
    unit-size, centred shapes (b rotated onto a)."""
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    a = a / np.linalg.norm(a, axis=(1, 2), keepdims=True)
    b = b / np.linalg.norm(b, axis=(1, 2), keepdims=True)
    u, sv, vt = np.linalg.svd(np.einsum("npi,npj->nij", b, a))                   # (N, 2, 2)
    proper = np.sign(np.linalg.det(u @ vt))                                       # no reflections
    d = np.sqrt(np.maximum(2 - 2 * (sv[:, 0] + proper * sv[:, 1]), 0))            # ||a - bR|| for unit shapes
    return d / np.sqrt(a.shape[1])


def _bank(model: TrainedGAN, items: list[Item], manifest, run: Run):
    return voice_features(model.config.encoder.kind, items, manifest, run.path / "cache")


def _topk(logits: torch.Tensor, labels: np.ndarray, k: int) -> float:
    if len(labels) == 0:
        return float("nan")
    k = min(k, logits.shape[1])
    top = logits.topk(k, dim=1).indices.numpy()
    return float(np.mean((top == labels[:, None]).any(1)))


def _d_stats(model: TrainedGAN, test_feats: list[np.ndarray], seed: int) -> tuple[dict[str, float], dict]:
    """F_d on faces from speech crops vs noise of each duration; also the images for Fig. 3.2 / 3.3."""
    cfg = model.config
    front = feature_fn(cfg.encoder.kind, "cpu")
    n = cfg.eval_noise_trials
    rng = np.random.default_rng([seed, 17])
    speech_bank = VoiceBank.from_arrays(test_feats)
    out: dict[str, float] = {}
    all_s, all_n, figs = [], [], {"noise": [], "speech": []}
    for dur in cfg.eval_durations:
        frames = int(round(dur * 100))
        idx = rng.integers(0, len(speech_bank), n)
        crops = speech_bank.crops_at(idx, rng.random(n), frames).transpose(1, 2).numpy()     # (n, T, F)
        f_s = faces_from_features(model, list(crops))
        noise_feats = [front(noise(NOISE_TYPES[i % len(NOISE_TYPES)], dur, rng), use_vad=False) for i in range(n)]
        f_n = faces_from_features(model, noise_feats)
        d_s, d_n = d_output(model, f_s), d_output(model, f_n)
        out[f"d_speech_mean_{dur:g}s"], out[f"d_noise_mean_{dur:g}s"] = float(d_s.mean()), float(d_n.mean())
        all_s.append(d_s)
        all_n.append(d_n)
        figs["noise"].append(f_n[:len(NOISE_TYPES)])
    s, nz = np.concatenate(all_s), np.concatenate(all_n)
    out.update(d_speech_mean=float(s.mean()), d_speech_std=float(s.std()), d_noise_mean=float(nz.mean()),
               d_noise_std=float(nz.std()))
    return out, figs


def _grid(rows: list[torch.Tensor], path: Path, labels: list[str] | None = None) -> str:
    """Save rows of faces (each (k, 3, 64, 64), equal k) as one image grid."""
    cols = max(len(r) for r in rows)
    padded = [torch.cat([r, torch.ones(cols - len(r), 3, 64, 64)]) if len(r) < cols else r for r in rows]
    contact_sheet(torch.cat(padded), labels, columns=cols).save(path)
    return str(path)


def _figures(model: TrainedGAN, out: Path, d_figs: dict, test_feats: list[np.ndarray],
             test_items: list[Item], faces_by_id: dict[str, np.ndarray]) -> list[str]:
    """Fig. 3.2 (noise x duration), Fig. 3.3 (speech x duration + references), Fig. 3.5 (segments of a speaker)."""
    cfg = model.config
    figs = []
    noise_rows = [torch.stack([col[i] for col in d_figs["noise"]]) for i in range(len(NOISE_TYPES))]
    figs.append(_grid(noise_rows, out / "fig_noise_by_duration.png",
                      [f"{t} {d:g}s" for t in NOISE_TYPES for d in cfg.eval_durations]))
    speakers = sorted({it.identity for it in test_items})[:4]
    rows, seg_rows = [], []
    for ident in speakers:
        mine = [i for i, it in enumerate(test_items) if it.identity == ident]
        longest = max(mine, key=lambda i: len(test_feats[i]))
        crops = [test_feats[longest][np.arange(int(d * 100)) % len(test_feats[longest])] for d in cfg.eval_durations]
        refs = to_unit(faces_by_id.get(ident, np.zeros((0, 3, 64, 64), np.uint8))[:2])
        rows.append(torch.cat([faces_from_features(model, crops), refs]))          # durations..., real faces
        seg_rows.append(torch.cat([faces_from_features(model, [test_feats[i] for i in mine[:7]]), refs[:1]]))
    if rows:
        figs.append(_grid(rows, out / "fig_speech_by_duration.png"))
        figs.append(_grid(seg_rows, out / "fig_segments_per_speaker.png"))
    return figs


def _table33(results: dict[str, Any], cfg) -> str:
    def pct(x):
        return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{100 * x:.2f}"

    lines = ["| | unstratified (train / test, %) | gender-stratified (train / test, %) |", "|---|---|---|"]
    for name, run in (("DIMNet-I", cfg.dimnet_i_run), ("DIMNet-G", cfg.dimnet_g_run)):
        if not run:
            continue
        try:
            r = read_json(Path(run) / "results.json")
        except VoicefaceError:
            r = {}
        lines.append(f"| {name} | - / {pct(r.get('match_v2f_U'))} | - / {pct(r.get('match_v2f_G'))} |")
    lines.append(f"| ours ({results['gen_match_embedding']}) | {pct(results.get('gen_match_v2f_U_train'))} / "
                 f"{pct(results['gen_match_v2f_U'])} | {pct(results.get('gen_match_v2f_G_train'))} / "
                 f"{pct(results['gen_match_v2f_G'])} |")
    if "gen_match_v2f_U_dlib" in results:
        lines.append(f"| ours (dlib descriptor) | {pct(results.get('gen_match_v2f_U_dlib_train'))} / "
                     f"{pct(results['gen_match_v2f_U_dlib'])} | {pct(results.get('gen_match_v2f_G_dlib_train'))} / "
                     f"{pct(results['gen_match_v2f_G_dlib'])} |")
    return "\n".join(lines)


def _identity_metrics(model: TrainedGAN, gd, manifest, run: Run) -> dict[str, Any]:
    """Top-1 / top-5 of F_c on faces from held-out sessions of training identities (Sec. 3.3.2, first test)."""
    label = {k: i for i, k in enumerate(gd.identities)}
    feats, items = _bank(model, gd.heldout_voice, manifest, run)
    faces = faces_from_features(model, feats) if feats else torch.zeros(0, 3, 64, 64)
    with torch.no_grad():
        logits = model.critics.c_logit(faces.to(model.device)).cpu() if len(faces) else torch.zeros(0, len(label))
    y = np.array([label[it.identity] for it in items], dtype=np.int64)
    return {"gen_id_top1": _topk(logits, y, 1), "gen_id_top5": _topk(logits, y, 5), "gen_id_n": len(y)}


def _gender_metrics(model: TrainedGAN, train_faces, gallery, test_faces: torch.Tensor, test_items: list[Item],
                    seed: int) -> dict[str, float]:
    """Gender classifier on real training faces, applied to real unseen faces and to generated ones."""
    (train_u8, train_items), (gal_u8, gal_items) = train_faces, gallery
    code = lambda items: np.array([1 if it.gender == "f" else 0 for it in items])  # noqa: E731
    clf = train_gender_classifier(train_u8, code(train_items), model, model.config.gender_steps, seed)
    out = {"gender_clf_real_acc": float((_predict(clf, to_unit(gal_u8)).argmax(1).numpy() == code(gal_items)).mean())
           if len(gal_items) else float("nan")}
    known = [i for i, it in enumerate(test_items) if it.gender in ("m", "f")]
    logits = _predict(clf, test_faces[known]) if known else torch.zeros(0, 2)
    truth = code([test_items[i] for i in known])
    out["gen_gender_acc"] = float((logits.argmax(1).numpy() == truth).mean()) if known else float("nan")
    score, female = (logits[:, 1] - logits[:, 0]).numpy(), truth == 1
    out["gen_gender_auc"] = auc(score[female], score[~female])        # sees a score shift even when argmax does not
    return out


def _matching_metrics(model: TrainedGAN, sets: dict[str, tuple], seed: int, emb: _Embedders | None = None
                      ) -> dict[str, Any]:
    """1:2 v->f matching through generated faces, U and G, for each face embedding and each probe/gallery set."""
    emb = emb or _Embedders(model)
    out: dict[str, Any] = {"gen_match_embedding": emb.primary_name}
    embedders = [("", emb.primary)] + ([("_dlib", emb.dlib_desc)] if emb.dlib is not None else [])
    for suffix_e, fn in embedders:
        for suffix_s, (probe, p_items, gallery, g_items) in sets.items():
            if not len(probe) or not len(gallery):
                continue
            pe, ge = fn(probe), fn(gallery)
            for strat in ("U", "G"):
                acc, n = match_accuracy(pe, [it.identity for it in p_items], [it.gender for it in p_items],
                                        ge, [it.identity for it in g_items], [it.gender for it in g_items],
                                        strat == "G", seed)
                out[f"gen_match_v2f_{strat}{suffix_e}{suffix_s}"] = acc
                out[f"gen_match_trials_{strat}{suffix_e}{suffix_s}"] = n
    return out


def _true_face_distances(gen_faces: torch.Tensor, gen_items: list[Item], faces_by_id: dict[str, np.ndarray],
                         rng: np.random.Generator) -> dict[str, float]:
    """Generated face vs the speaker's real (on the simulated world: rendered) faces, against a random other
    identity: pixel MSE to the identity's mean face, and Procrustes distance of 68-point landmark shapes."""
    ids = sorted(faces_by_id)
    pos = {k: i for i, k in enumerate(ids)}
    have = [i for i, it in enumerate(gen_items) if it.identity in pos]
    if not have or len(ids) < 2:
        return {}
    mean_face = torch.stack([to_unit(faces_by_id[k]).mean(0) for k in ids])                  # (I, 3, 64, 64)
    true_i = np.array([pos[gen_items[i].identity] for i in have])
    other = (true_i + rng.integers(1, len(ids), len(have))) % len(ids)                       # another identity
    gen = gen_faces[have]
    d_true = ((gen - mean_face[true_i]) ** 2).mean((1, 2, 3)).numpy()
    d_rand = ((gen - mean_face[other]) ** 2).mean((1, 2, 3)).numpy()
    out = {"sim_pixel_mse_true": float(d_true.mean()), "sim_pixel_mse_random": float(d_rand.mean()),
           "sim_pixel_closer_frac": float(np.mean(d_true < d_rand))}
    lm_gen = landmarks68(gen)
    if lm_gen is not None:
        counts = [len(faces_by_id[k]) for k in ids]                                          # one predictor load
        real = to_unit(np.concatenate([faces_by_id[k] for k in ids]))                      # (sum counts, 3, 64, 64)
        lm_real = np.split(landmarks68(real), np.cumsum(counts)[:-1])
        mean_lm = np.stack([lm.mean(0) for lm in lm_real])                                   # (I, 68, 2)
        l_true = procrustes_distance(mean_lm[true_i], lm_gen)
        l_rand = procrustes_distance(mean_lm[other], lm_gen)
        out.update(sim_landmark_dist_true=float(l_true.mean()), sim_landmark_dist_random=float(l_rand.mean()),
                   sim_landmark_closer_frac=float(np.mean(l_true < l_rand)))
    return out


def generated_gender(run: str | os.PathLike, data: str | os.PathLike | None = None, seed: int | None = None
                     ) -> dict[str, float]:
    """Only ``gender_clf_real_acc`` and ``gen_gender_acc`` of ``evaluate`` (seconds instead of minutes; writes
    nothing): does the face generated from an unseen identity's recording have the speaker's gender, by a face
    gender classifier trained on the real training faces only (independent of the GAN's training)."""
    run = Run.open(run)
    model = load_run(run.path, device=None)
    seed = model.seed if seed is None else seed
    manifest = read_manifest(resolve_data(data or model.data))
    gd = split_data(manifest, model.config)
    test_feats, test_items = _bank(model, gd.test_voice, manifest, run)
    return _gender_metrics(model, load_faces64(gd.train_face, manifest.root), load_faces64(gd.test_face, manifest.root),
                           faces_from_features(model, test_feats), test_items, seed)


def evaluate(run: str | os.PathLike, data: str | os.PathLike | None = None, seed: int | None = None,
             figures: bool = True) -> dict[str, Any]:
    """``voiceface evaluate gan --run RUN``: every Sec. 3.3 measurement; writes RUN/results.json and RUN/report.md."""
    run = Run.open(run)
    model = load_run(run.path, device=None)      # the run's device rule (auto: CUDA when present)
    cfg = model.config
    seed = model.seed if seed is None else seed
    manifest = read_manifest(resolve_data(data or model.data))
    gd = split_data(manifest, cfg)
    rng = np.random.default_rng([seed, 19])
    results: dict[str, Any] = _identity_metrics(model, gd, manifest, run)

    # unseen identities: their recordings -> generated faces; their real faces = the gallery
    test_feats, test_items = _bank(model, gd.test_voice, manifest, run)
    test_faces = faces_from_features(model, test_feats)
    train_u8, train_face_items = load_faces64(gd.train_face, manifest.root)
    gal_u8, gal_items = load_faces64(gd.test_face, manifest.root)
    results.update(_gender_metrics(model, (train_u8, train_face_items), (gal_u8, gal_items), test_faces,
                                   test_items, seed))

    # Table 3.3: test column (unseen identities) and training column (a subset of training recordings)
    pick = sorted(rng.permutation(len(gd.train_voice))[:cfg.eval_train_probes])
    tr_feats, tr_items = _bank(model, [gd.train_voice[i] for i in pick], manifest, run)
    sets = {"": (test_faces, test_items, to_unit(gal_u8), gal_items),
            "_train": (faces_from_features(model, tr_feats), tr_items, to_unit(train_u8), train_face_items)}
    emb = _Embedders(model)
    results.update(_matching_metrics(model, sets, seed, emb))
    if emb.dlib is not None:    # the same dlib descriptors (memoised): identity, gender, Frechet, diversity
        results.update(dlib_face_metrics(
            emb.dlib_desc, test_faces, [it.identity for it in test_items], [it.gender for it in test_items],
            (to_unit(gal_u8), [it.identity for it in gal_items], [it.gender for it in gal_items]),
            (to_unit(train_u8), [it.gender for it in train_face_items]), seed, run.path))

    if test_feats:
        d_res, d_figs = _d_stats(model, test_feats, seed)
        results.update(d_res)
    else:
        log.warning("no usable recordings of unseen identities: discriminator statistics not computed")
        results.update({k: float("nan") for k in ("d_speech_mean", "d_speech_std", "d_noise_mean", "d_noise_std")})

    faces_by_id: dict[str, list] = {}
    for arr, items in ((train_u8, train_face_items), (gal_u8, gal_items)):
        for img, it in zip(arr, items):
            faces_by_id.setdefault(it.identity, []).append(img)
    faces_by_id = {k: np.stack(v) for k, v in faces_by_id.items()}
    results.update(_true_face_distances(test_faces, test_items, faces_by_id, rng))

    figs = _figures(model, run.path, d_figs, test_feats, test_items, faces_by_id) if figures and test_feats else []
    results["figures"] = [Path(f).name for f in figs]
    run.write_results(results)
    (run.path / "report.md").write_text(report_markdown(results, cfg), encoding="utf-8")
    return results


def report_markdown(r: dict[str, Any], cfg) -> str:
    def f(x):
        return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.3f}"

    durs = " | ".join(f"{d:g} s" for d in cfg.eval_durations)
    sp = " | ".join(f(r.get(f"d_speech_mean_{d:g}s")) for d in cfg.eval_durations)
    nz = " | ".join(f(r.get(f"d_noise_mean_{d:g}s")) for d in cfg.eval_durations)
    lines = [
        "## Voice-to-face GAN (Chapter 3)", "",
        f"Encoder: `{cfg.encoder.kind}`; {cfg.steps} iterations of Algorithm 1, batch {cfg.batch_size}.", "",
        "### Discriminator output F_d on generated faces (Sec. 3.3.2)", "",
        f"speech: mean {f(r['d_speech_mean'])}, std {f(r['d_speech_std'])}; "
        f"noise: mean {f(r['d_noise_mean'])}, std {f(r['d_noise_std'])}", "",
        f"| input | {durs} |", "|---|" + "---|" * len(cfg.eval_durations),
        f"| speech | {sp} |", f"| noise | {nz} |", "",
        "### Identity and gender of generated faces", "",
        f"- identity top-1 / top-5 (held-out sessions of training identities, n={r['gen_id_n']}): "
        f"{f(r['gen_id_top1'])} / {f(r['gen_id_top5'])}",
        f"- gender accuracy on unseen identities: {f(r['gen_gender_acc'])} "
        f"(classifier on real unseen faces: {f(r['gender_clf_real_acc'])})", "",
        "### 1:2 voice->face matching through the generated face (Table 3.3 layout)", "",
        _table33(r, cfg), "",
    ]
    if "sim_pixel_mse_true" in r:
        lines += ["### Generated vs the speaker's real (rendered) face, pixel space", "",
                  f"MSE to own identity's mean face {f(r['sim_pixel_mse_true'])} vs a random identity's "
                  f"{f(r['sim_pixel_mse_random'])}; closer to own in {f(r['sim_pixel_closer_frac'])} of recordings.", ""]
        if "sim_landmark_dist_true" in r:
            lines += ["68-point landmark shapes (dlib predictor in the fixed aligned-face box, no detection; Procrustes "
                      f"RMS distance): to own identity {f(r['sim_landmark_dist_true'])} vs random identity "
                      f"{f(r['sim_landmark_dist_random'])}; closer to own in {f(r['sim_landmark_closer_frac'])}.", ""]
    return "\n".join(lines) + "\n" + ("\n" + dlib_table(r) if "dlib_recall_at_1" in r else "")
