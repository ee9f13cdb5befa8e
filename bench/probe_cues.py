"""Can DIMNet's networks perceive a world's cues at all? Supervised perceptibility probes.

A DIMNet branch (``VoiceNet`` on CMVN log-mel crops, or ``FaceNet`` on 64 px faces, at the ``cpu`` preset's widths)
is trained with direct supervision to regress per-person targets from the world's ``people.csv`` (each standardised
within gender, so gender itself is no help) on the training people, and scored by R^2 of its per-person mean
prediction on the unseen people (val + test). R^2 near 1: the network reads the cue from new people; near or below
0: it cannot, and no amount of DIMNet training will match voices and faces through that cue.

Targets are ``people.csv`` columns; numeric columns whose name starts with ``voice_`` (except lip rounding) are
taken in log units. Default targets: age, and for voices the F0, speaking rate, tremor, jitter, vocal tract length
and breathiness; for faces the specific face z-scores the voice links to. Run (one thread, about a minute per
modality on the small world; voice features are cached in WORLD/cache/logmel64 as DIMNet's training does):

    OMP_NUM_THREADS=1 .venv/bin/python bench/probe_cues.py --data WORLD [--modality voice face] [--steps 1500]

Measured on the small world (seed 0) with ``--modality voice --targets age voice_rate_syl_s``: age -0.3 (the
speaking rate 0.83) at ``age_cue=0``, 0.30 / 0.95 at ``age_cue=0.7`` and 0.84 / 0.93 at ``age_cue=1`` (the presets'
value since the rate carries age, ``voiceface.sim.voices._rate_deviation``); the face network reads age at 0.59.

``--linear`` asks the same question of voice statistics without a network: a ridge from each person's mean raw
log-mel statistics (per band: mean, sd, mean |delta|, 10th / 90th percentiles) to the targets, for lambda 1-1000.
Measured (best lambda per cue; age / F0 / nose width): small world, 180 training people: -0.09 / 0.34 / 0.28;
``sim build --preset small`` with ``identities=480 split=[360,48,72] utterances=4 sessions=2 images=5``: 0.08 /
0.52 / 0.14; with ``identities=1225 split=[924,112,189] utterances=6 images=6 clips=0``: 0.05 / 0.59 / 0.37.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import torch

from voiceface.data.loaders import FaceBank, VoiceBank, to_tensor
from voiceface.data.manifest import read_manifest
from voiceface.methods.dimnet.config import PRESETS
from voiceface.methods.dimnet.model import FaceNet, VoiceNet

DEFAULT_TARGETS = {
    "voice": ["age", "voice_f0_hz", "voice_rate_syl_s", "voice_tremor_st", "voice_jitter", "voice_vtl_cm",
              "voice_breathiness"],
    "face": ["age", "facez_nose_width", "facez_nose_protrusion", "facez_mouth_width"],
}


def person_targets(rows: dict[str, dict], names: list[str]) -> dict[str, np.ndarray]:
    """{identity: (K,) targets}, each column standardised within gender (log first for positive voice_* columns)."""
    ids = sorted(rows)
    raw = np.array([[float(rows[i][n]) for n in names] for i in ids])                      # (P, K)
    for k, n in enumerate(names):
        if n.startswith("voice_") and "lip" not in n:
            raw[:, k] = np.log(raw[:, k] + 1e-3)
    male = np.array([rows[i]["gender"] == "m" for i in ids])
    for m in (male, ~male):
        raw[m] = (raw[m] - raw[m].mean(0)) / np.maximum(raw[m].std(0), 1e-9)
    return dict(zip(ids, raw))


def _banks(world: Path, modality: str):
    """(train bank, unseen bank) of one modality."""
    items = [it for it in read_manifest(world / "manifest.csv") if it.modality == modality]
    train = [it for it in items if it.split == "train"]
    unseen = [it for it in items if it.split != "train"]
    if modality == "voice":
        cache = world / "cache" / "logmel64"
        return VoiceBank(train, cache, workers=1, progress=False), VoiceBank(unseen, cache, workers=1, progress=False)
    return FaceBank(train, 64, root=world), FaceBank(unseen, 64, root=world)


def probe(world: Path, modality: str, names: list[str], steps: int, seed: int) -> dict[str, float]:
    """Train one branch + linear head on the targets ``names``; R^2 per target on unseen people."""
    rows = {r["identity"]: r for r in csv.DictReader(open(world / "people.csv"))}
    tgt = person_targets(rows, names)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    net_cfg = PRESETS["cpu"].net
    train, unseen = _banks(world, modality)
    if modality == "voice":
        net = VoiceNet(tuple(net_cfg.voice_widths), 64, 64, 1)
    else:
        net = FaceNet(tuple(net_cfg.face_widths), 64, 1)
    head = torch.nn.Linear(64, len(names))
    y = torch.tensor(np.array([tgt[it.identity] for it in train.items]), dtype=torch.float32)    # (N, K)
    opt = torch.optim.Adam([*net.parameters(), *head.parameters()], 1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps)
    for _ in range(steps):
        idx = rng.integers(0, len(train), 32)
        if modality == "voice":
            x, idx = train.sample_crops(idx, rng, 150, 300)                                  # (32, 64, T)
        else:
            img, idx = train.read(idx)
            x = to_tensor(img, train.random_flips(len(idx), rng))                          # (32, 3, 64, 64)
        loss = ((head(net(x)) - y[idx]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    with torch.no_grad():
        if modality == "voice":
            pred = torch.cat([head(net(unseen.whole(i, 32))) for i in range(len(unseen))]).numpy()
        else:
            pred = torch.cat([head(net(unseen.batch(range(s, min(s + 128, len(unseen))))))
                              for s in range(0, len(unseen), 128)]).numpy()
    pid = np.array([it.identity for it in unseen.items])
    people = sorted(set(pid))
    p_mean = np.array([pred[pid == u].mean(0) for u in people])                               # (P, K)
    truth = np.array([tgt[u] for u in people])
    r2 = 1.0 - ((p_mean - truth) ** 2).mean(0) / truth.var(0)
    return {n: round(float(v), 3) for n, v in zip(names, r2)}


LINEAR_TARGETS = ["age", "voice_f0_hz", "voice_rate_syl_s", "voice_vtl_cm", "voice_tremor_st", "facez_nose_width",
                  "facez_mouth_width", "facez_nose_protrusion"]
LAMBDAS = (1.0, 10.0, 100.0, 1000.0)


def voice_stats(world: Path) -> tuple[list, np.ndarray]:
    """(voice items, (N, 5 * 64) statistics of each recording's raw log-mel: per band the mean, sd, mean |frame
    delta|, 10th and 90th percentiles). Raw (un-normalised) features are cached in WORLD/cache/raw64."""
    from voiceface.audio.batch import extract_manifest

    items = [it for it in read_manifest(world / "manifest.csv") if it.modality == "voice"]
    res = extract_manifest(items, world / "cache" / "raw64", workers=2, progress=False, normalize=False)
    paths = {str(Path(k).resolve()): v for k, v in res.paths.items()}
    found = [(it, paths.get(str(Path(it.path).resolve()))) for it in items]
    items = [it for it, p in found if p is not None]
    rows = []
    for p in (p for _, p in found if p is not None):
        f = np.load(p)                                                                       # (T, 64)
        rows.append(np.concatenate([f.mean(0), f.std(0), np.abs(np.diff(f, axis=0)).mean(0),
                                    *np.percentile(f, [10, 90], axis=0)]))
    return items, np.array(rows)


def linear_probe(world: Path, names: list[str]) -> dict[float, dict[str, float]]:
    """Ridge from per-person mean voice statistics (``voice_stats``, centred within gender on the training people,
    standardised) to the targets (standardised within gender); R^2 on unseen people for each lambda in LAMBDAS."""
    rows = {r["identity"]: r for r in csv.DictReader(open(world / "people.csv"))}
    tgt = person_targets(rows, names)
    items, x = voice_stats(world)
    pid = np.array([it.identity for it in items])
    people = sorted(set(pid))
    split = {it.identity: it.split for it in items}
    feats = np.array([x[pid == u].mean(0) for u in people])                                  # (P, 320)
    train = np.array([split[u] == "train" for u in people])
    male = np.array([rows[u]["gender"] == "m" for u in people])
    for g in (male, ~male):
        feats[g] -= feats[g & train].mean(0)
    z = (feats - feats[train].mean(0)) / (feats[train].std(0) + 1e-6)
    y = np.array([tgt[u] for u in people])                                                   # (P, K)
    out = {}
    for lam in LAMBDAS:
        a = z[train]
        w = np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ y[train])
        r2 = 1.0 - ((z[~train] @ w - y[~train]) ** 2).mean(0) / y[~train].var(0)
        out[lam] = {n: round(float(v), 3) for n, v in zip(names, r2)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="a simulated world (voiceface sim build)")
    ap.add_argument("--modality", nargs="+", default=["voice", "face"], choices=["voice", "face"])
    ap.add_argument("--targets", nargs="*", help="people.csv columns (default: per modality, see the docstring)")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--linear", action="store_true",
                    help="instead: a ridge from per-person log-mel statistics (no network; seconds)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.linear:
        for lam, r2 in linear_probe(args.data, args.targets or LINEAR_TARGETS).items():
            print(f"ridge lambda {lam:g}: R^2 on unseen people (within gender): "
                  + ", ".join(f"{k} {v}" for k, v in r2.items()))
        return
    for modality in args.modality:
        names = args.targets or DEFAULT_TARGETS[modality]
        r2 = probe(args.data, modality, names, args.steps, args.seed)
        print(f"{modality}: R^2 on unseen people (within gender): " + ", ".join(f"{k} {v}" for k, v in r2.items()))


if __name__ == "__main__":
    main()
