"""Evaluate trained DIMNets with the whole protocol of Sec. 2.3 and write RUN/results.json and RUN/report.md.

Test sets (any manifest): *unseen-unheard* = voice and face items of ``data.test_splits`` (identities never seen in
training); *seen-heard* = the training identities' held-out items (``train.heldout_mask``). Voices are embedded
whole (the full normalised log-mel of the utterance), faces at the trained size.

Flat results (fractions in [0, 1]; unseen-unheard unless prefixed ``seen_``):
``match_{v2f,f2v}_{U,G,N,GN}`` (1:2), ``match1N_{v2f,f2v}_{U,G}_N{2..10}`` (1:N), ``eer_{U,G,N,GN}``,
``auc_{U,G,N,GN}`` (verification on the v2f 1:2 trials; ``*_f2v`` on the f2v ones),
``map_{v2f,f2v}_{id,gender,nationality}`` (+ ``chance_map_*``: the relevant fraction, a random ranking's mAP),
``acc_{gender,nationality}_{voice,face}`` (covariate classifiers; null when that covariate was not trained),
``n_*`` counts. Published VoxCeleb1 lists add ``list_*`` keys when the manifest holds their media: the lists
folder is ``lists=`` (``voiceface evaluate dimnet --lists DIR``), else ``$VOICEFACE_LISTS``, else
``voxceleb1_eval_lists`` in the shared sample folder; listed media are matched on the corpora's layouts
(``idXXXXX/VIDEO/NNNNN.wav``, ``NAME/[1.6/]VIDEO/NNNNNNN.jpg`` or aligned ``.png`` crops, ``.npy`` features), and
a warning names the lists when none of their media match.

Several runs (a folder of run folders): each is evaluated, and the folder's results.json holds the mean of every
key plus ``KEY_std`` (the thesis reports mean +/- std over 5 models).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from ...data.loaders import FaceBank, VoiceBank, default_cache_dir, item_labels
from ...data.manifest import Item, Manifest, read_manifest
from ...engine import dist, write_json
from ...errors import InputError
from ...metrics import matching as M
from .. import resolve_data
from .train import Trained, load_trained, training_items

log = logging.getLogger(__name__)


@torch.no_grad()
def embed_voices(net: torch.nn.Module, bank: VoiceBank, device: torch.device) -> np.ndarray:
    """(N, d) embeddings of whole utterances (one forward each: lengths differ, BN in eval mode)."""
    out = [net(bank.whole(i, min_frames=32).to(device)).cpu() for i in range(len(bank))]  # each (1, d)
    return torch.cat(out).numpy() if out else np.zeros((0, net.embed_dim), np.float32)


@torch.no_grad()
def embed_faces(net: torch.nn.Module, bank: FaceBank, device: torch.device, batch: int = 128) -> np.ndarray:
    """(N, d) face embeddings, in batches of ``batch`` images."""
    out = [net(bank.batch(range(s, min(s + batch, len(bank)))).to(device)).cpu() for s in range(0, len(bank), batch)]
    return torch.cat(out).numpy() if out else np.zeros((0, net.embed_dim), np.float32)


def _side(emb: np.ndarray, items: Sequence[Item]) -> M.Side:
    return M.Side(emb, np.array(item_labels(items, "identity")), np.array(item_labels(items, "gender")),
                  np.array(item_labels(items, "nationality")))


@torch.no_grad()
def head_accuracy(trained: Trained, emb: np.ndarray, items: Sequence[Item], name: str) -> float | None:
    """Accuracy of the covariate classifier H_C on embeddings (Table 2.3); None when C was not trained."""
    if name not in trained.heads.heads:
        return None
    y = trained.encoders[name].encode(item_labels(items, name))
    ok = y >= 0
    if not ok.any():
        return None
    logits = trained.heads.heads[name](torch.as_tensor(emb[ok]).to(next(trained.heads.parameters()).device))
    return M.classification_accuracy(logits.cpu().numpy(), y[ok])


def embed_items(trained: Trained, items: Sequence[Item], manifest: Manifest, cache: Path, device: torch.device
                ) -> tuple[M.Side, M.Side, list[Item], list[Item], np.ndarray, np.ndarray]:
    vb = VoiceBank(items, cache, workers=trained.config.data.extract_workers)
    fb = FaceBank(items, trained.config.net.face_size, root=manifest.root)
    for path, msg in vb.failures + fb.failures:
        log.warning("skipped: %s", msg)
    ev = embed_voices(trained.voice, vb, device)
    ef = embed_faces(trained.face, fb, device)
    return _side(ev, vb.items), _side(ef, fb.items), list(vb.items), list(fb.items), ev, ef


def evaluate_trained(trained: Trained, manifest: Manifest, cache: Path, device: torch.device,
                     figures_dir: Path | None = None, lists: str | os.PathLike | None = None
                     ) -> dict[str, float | None]:
    """All metrics of one trained model on ``manifest`` (see module docstring). Optionally draws the figures;
    ``lists``: the published lists folder (default: ``find_lists_dir``)."""
    cfg = trained.config
    ec = cfg.eval
    test = [it for it in manifest if it.modality in ("voice", "face") and it.split in cfg.data.test_splits]
    if not test:
        raise InputError(manifest.root, f"no voice or face items in test split(s) {', '.join(cfg.data.test_splits)}")
    _, heldout = training_items(manifest, cfg)
    results: dict[str, float | None] = {}
    v, f, vitems, fitems, ev, ef = embed_items(trained, test, manifest, cache, device)
    if len(vitems) == 0 or len(fitems) == 0:
        raise InputError(manifest.root, "the test split needs both voice and face items")
    results.update(M.cross_modal_suite(v, f, seed=ec.seed, n_max=ec.n_max, strata=ec.strata, device=device))
    for name in ("gender", "nationality"):
        results[f"acc_{name}_voice"] = head_accuracy(trained, ev, vitems, name)
        results[f"acc_{name}_face"] = head_accuracy(trained, ef, fitems, name)
    results.update({"n_test_voices": len(vitems), "n_test_faces": len(fitems),
                    "n_test_identities": len({it.identity for it in vitems + fitems})})
    seen = None
    if heldout:
        sv, sf, svi, sfi, sev, sef = embed_items(trained, heldout, manifest, cache, device)
        if len(svi) and len(sfi):
            seen = (sv, sf)
            res = M.cross_modal_suite(sv, sf, seed=ec.seed, n_max=ec.n_max, strata=ec.strata, device=device)
            results.update({f"seen_{k}": val for k, val in res.items()})
            results.update({"n_seen_voices": len(svi), "n_seen_faces": len(sfi)})
            results.update(published_list_metrics(sv, sf, svi, sfi, SEEN_LISTS, lists_dir=lists, device=device))
    results.update(published_list_metrics(v, f, vitems, fitems, lists_dir=lists, device=device))
    results.update(real_voice_metrics(trained, cache, device))
    if figures_dir is not None:
        from .report import plot_mds
        plot_mds(seen, (v, f), figures_dir / "mds.png", n_identities=ec.mds_identities, seed=ec.seed)
    return results


@torch.no_grad()
def real_voice_metrics(trained: Trained, cache: Path, device: torch.device,
                       sets: Mapping[str, Manifest] | None = None) -> dict[str, float]:
    """Covariate accuracy of the voice network on real speech (the transfer check of a model trained on the
    simulated world): ``real_acc_gender_voice_<set>`` per utterance and ``real_acc_gender_speaker_<set>`` by the
    majority of each speaker's utterances, plus ``real_n_voices_<set>``, for every real sample present
    (``data.samples.real_voice_sets``: LibriSpeech with readers' sex, the VoxCeleb1 sample with its metadata).
    {} when the model has no gender head or no real sample is present."""
    from ...data.samples import real_voice_sets

    if "gender" not in trained.heads.heads:
        return {}
    out: dict[str, float] = {}
    for name, manifest in (real_voice_sets() if sets is None else sets).items():
        items = [it for it in manifest if it.gender in ("m", "f")]
        vb = VoiceBank(items, cache, workers=trained.config.data.extract_workers)
        for path, msg in vb.failures:
            log.warning("skipped: %s", msg)
        if not len(vb):
            continue
        emb = embed_voices(trained.voice, vb, device)
        y = trained.encoders["gender"].encode(item_labels(vb.items, "gender"))
        pred = trained.heads.heads["gender"](torch.as_tensor(emb).to(device)).argmax(1).cpu().numpy()
        ok = pred == y
        speakers = np.array(item_labels(vb.items, "identity"))
        per_speaker = [ok[speakers == s].mean() > 0.5 for s in np.unique(speakers)]
        out.update({f"real_acc_gender_voice_{name}": float(ok.mean()),
                    f"real_acc_gender_speaker_{name}": float(np.mean(per_speaker)),
                    f"real_n_voices_{name}": len(vb)})
    return out


LISTS_ENV = "VOICEFACE_LISTS"
"""Environment variable naming the published ``voxceleb1_eval_lists`` folder."""
LIST_EXTENSIONS = (".wav", ".flac", ".m4a", ".npy", ".png", ".jpg", ".jpeg")
"""Suffixes a listed file may have on disk: audio, cached features, aligned crops, frames."""


def find_lists_dir(explicit: str | os.PathLike | None = None) -> tuple[Path | None, bool]:
    """(the published lists folder, whether the user named it): ``explicit``, else ``$VOICEFACE_LISTS``, else
    ``voxceleb1_eval_lists`` in the shared sample folder (None when absent)."""
    from ...data.samples import shared_data_dir

    chosen = explicit if explicit is not None else os.environ.get(LISTS_ENV) or None
    if chosen is not None:
        return Path(chosen), True
    root = shared_data_dir()
    return (root / "voxceleb1_eval_lists" if root is not None else None), False
UNSEEN_LISTS = ("matching_v2f_U", "matching_v2f_G", "matching_f2v_U", "matching_f2v_G", "verif_random_unseenunheard",
                "verif_G_unseenunheard")
SEEN_LISTS = ("verif_random_seenheard",)


def _suffix_index(items: Sequence[Item]) -> dict[str, int]:
    """Every trailing sub-path of 2 to 5 components of each item's path -> item position (first wins)."""
    index: dict[str, int] = {}
    for i, it in enumerate(items):
        parts = Path(it.path).parts
        for k in range(2, min(5, len(parts)) + 1):
            index.setdefault("/".join(parts[-k:]), i)
    return index


def _name_to_id(items: Sequence[Item]) -> dict[str, str]:
    """Identity name -> VoxCeleb id, from the ``vox_id`` the VoxCeleb adapters record with each item."""
    return {it.identity: str(it.extra["vox_id"]) for it in items if it.extra.get("vox_id")}


def _lookup(listed: np.ndarray, index: Mapping[str, int], name_to_id: Mapping[str, str] | None = None
            ) -> np.ndarray:
    """(N,) item positions of listed paths, -1 where absent. Tried per path: the layouts of
    ``data.lists.candidates`` (the release's ``idXXXXX/VIDEO/NNNNN.wav`` for ``NAME/VIDEO_NNNNNNN.wav``, no
    ``1.6/``, NAME or id folders) with each suffix of ``LIST_EXTENSIONS`` (aligned ``.png`` crops of ``.jpg``
    frames, ``.npy`` features)."""
    from ...data.lists import candidates

    return np.array([next((index[c] for c in candidates(p, name_to_id, LIST_EXTENSIONS) if c in index), -1)
                     for p in listed], dtype=np.int64)


def published_list_metrics(voice: M.Side, face: M.Side, vitems: Sequence[Item], fitems: Sequence[Item],
                           names: Sequence[str] = UNSEEN_LISTS, lists_dir: str | os.PathLike | None = None,
                           prefix: str = "list_", device="cpu") -> dict[str, float]:
    """Scores on the published VoxCeleb1 lists (``data.lists``) over the trials whose media are all among the
    given items (matched by trailing path on the corpora's layouts, see ``_lookup``): ``{prefix}match_{v2f,f2v}_{U,G}``
    (1:2 accuracy), ``{prefix}eer_/auc_{random,G}_{testset}`` and ``*_coverage`` (fraction of the list's trials
    found).

    ``lists_dir``: the lists folder (default: ``$VOICEFACE_LISTS``, then the shared sample folder). Returns {} when
    the lists are absent or none of their media are among the items; a warning says so when the folder was named
    (argument or environment) or the items hold the lists' identities (a real corpus whose layout did not match).
    """
    from ...data import lists as published

    root, named = find_lists_dir(lists_dir)
    if root is None or not root.is_dir():
        if named:
            log.warning("published lists folder %s not found (from --lists or $%s); list_* metrics skipped",
                        root, LISTS_ENV)
        return {}
    files = {n: f for n, f in published.list_files(root).items() if n in names}
    ids = _name_to_id(list(vitems) + list(fitems))
    vidx, fidx = _suffix_index(vitems), _suffix_index(fitems)
    out: dict[str, float] = {}
    listed_people: set[str] = set()
    for name, path in files.items():
        if name.startswith("matching_"):
            ml = published.read_matching_list(path)
            out.update(_matching_scores(ml, voice, face, vidx, fidx, ids, f"{prefix}match_{name[len('matching_'):]}",
                                        device))
            listed_people.update(ml.identities("probes"), ml.identities("trues"))
        else:
            vl = published.read_verification_list(path)
            out.update(_verification_scores(vl, voice, face, vidx, fidx, ids, f"{prefix}", name[len("verif_"):],
                                            device))
            listed_people.update(vl.voice_identities, vl.face_identities)
    ours = {it.identity for it in list(vitems) + list(fitems)} | set(ids.values())
    if files and not out and (named or listed_people & ours):
        log.warning("published lists %s in %s: none of their trials have all media among the %d voice and %d face "
                    "items (layouts tried: idXXXXX/VIDEO/NNNNN.wav, NAME/VIDEO_NNNNNNN.wav, NAME/[1.6/]VIDEO/"
                    "NNNNNNN.jpg|.png, .npy features); list_* metrics skipped", ", ".join(files), root, len(vitems),
                    len(fitems))
    return out


def _matching_scores(ml, voice: M.Side, face: M.Side, vidx, fidx, ids, key: str, device) -> dict[str, float]:
    """``key`` (1:2 accuracy) and ``key_coverage`` of one matching list over its fully present triplets."""
    v2f = ml.direction == "v2f"
    pi, gi = (vidx, fidx) if v2f else (fidx, vidx)
    p, t, i = _lookup(ml.probes, pi, ids), _lookup(ml.trues, gi, ids), _lookup(ml.imposters, gi, ids)
    ok = (p >= 0) & (t >= 0) & (i >= 0)
    if not ok.any():
        return {}
    P, G = (voice, face) if v2f else (face, voice)
    return {key: M.list_matching_accuracy(P.emb, G.emb, p[ok], t[ok], i[ok], device=device),
            f"{key}_coverage": float(ok.mean())}


def _verification_scores(vl, voice: M.Side, face: M.Side, vidx, fidx, ids, prefix: str, tag: str, device
                         ) -> dict[str, float]:
    """EER, AUC and coverage of one verification list over its fully present pairs."""
    a, b = _lookup(vl.voice_paths, vidx, ids), _lookup(vl.face_paths, fidx, ids)
    ok = (a >= 0) & (b >= 0)
    if not ok.any():
        return {}
    res = M.list_verification(voice.emb, face.emb, a[ok], b[ok], vl.labels[ok], device=device)
    return {f"{prefix}eer_{tag}": res["eer"], f"{prefix}auc_{tag}": res["auc"],
            f"{prefix}{tag}_coverage": float(ok.mean())}


def aggregate(results: Sequence[Mapping[str, float | None]]) -> dict[str, float | None]:
    """Mean of every key over runs, plus ``KEY_std`` (population std; 0 for one run); None-only keys stay None."""
    keys = sorted({k for r in results for k in r})
    out: dict[str, float | None] = {}
    for k in keys:
        vals = np.array([r[k] for r in results if r.get(k) is not None], dtype=np.float64)
        vals = vals[np.isfinite(vals)]
        out[k] = float(vals.mean()) if len(vals) else None
        if not k.startswith("n_"):
            out[f"{k}_std"] = float(vals.std()) if len(vals) else None
    out["n_models"] = len(results)
    return out


def _run_folders(run: Path) -> list[Path]:
    if (run / "checkpoint.pt").is_file():
        return [run]
    subs = sorted(p for p in run.iterdir() if (p / "checkpoint.pt").is_file()) if run.is_dir() else []
    if not subs:
        raise InputError(run, "no DIMNet checkpoint here (nor in its subfolders): train one with "
                              "`voiceface train dimnet`")
    return subs


def evaluate(run: str | os.PathLike, data: str | os.PathLike | None = None, *, label: str | None = None,
             lists: str | os.PathLike | None = None) -> dict[str, float | None]:
    """Evaluate the run folder ``run`` (or every run folder inside it, as mean +/- std) on ``data`` (default: the
    training manifest recorded in the checkpoint). Writes results.json, report.md, tables (CSV) and figures.
    ``lists``: the published ``voxceleb1_eval_lists`` folder (default: ``$VOICEFACE_LISTS``, then the shared one)."""
    run = Path(run)
    folders = _run_folders(run)
    per_run = []
    for folder in folders:
        device = dist.default_device("auto")
        trained = load_trained(folder, device)
        dev = dist.default_device(trained.config.eval.device)
        if dev != device:
            trained = load_trained(folder, dev)
        manifest_path = resolve_data(data) if data is not None else Path(trained.data)
        if not manifest_path.is_file():
            raise InputError(manifest_path, "training manifest not found: give --data")
        manifest = read_manifest(manifest_path)
        cache = Path(trained.config.data.cache_dir) if trained.config.data.cache_dir else \
            default_cache_dir(manifest, folder / "cache")
        res = evaluate_trained(trained, manifest, cache, dev, figures_dir=folder, lists=lists)
        res["train_steps"] = trained.step
        if len(folders) > 1:
            write_json(folder / "results.json", res)
        per_run.append((trained, res))
    results = per_run[0][1] if len(per_run) == 1 else aggregate([r for _, r in per_run])
    write_json(run / "results.json", results)
    from .report import write_report
    name = label or f"DIMNet-{per_run[0][0].config.covariates.upper()}"
    write_report(run, {name: results})
    return results
