"""Benchmark: which per-person voice features give the ridge of Algorithm 2 (``methods.sfv.linear``) its power, on
simulated worlds: recall over the truly predictable AM-gender pairs and false-positive rate over the truly
unpredictable ones (world.json's ground truth), over several seeds of the repeated splits, beside the ``decoupled``
control of the same world (within-gender derangement of the faces: every selection is false).

    .venv/bin/python bench/sfv_features.py WORLD [WORLD ...] [--features mean murmur] [--split-seeds 0 1]

On a coupling-0 world (``voiceface sim build --coupling 0``) every AM is unpredictable, so the false-positive rate is
the share of all AMs selected.

Measured (300 repeats, 6/1/2/1, alpha 0.05; recall / FPR at split seeds 0 / 1; small worlds built with
``voiceface sim build --preset small --seed S [--coupling 0] --out W``; the murmur rule was settled on seed 1):

| world | mean (16 bands, all frames) | murmur (8 bands below ~1.8 kHz, murmur-like frames) |
|---|---|---|
| seed 1 | 0.286 / 0.015, 0.306 / 0.015 | 0.531 / 0.000, 0.551 / 0.023 |
| seed 2 | 0.408 / 0.000, 0.592 / 0.015 | 0.571 / 0.015, 0.673 / 0.030 |
| seed 0 (the demo's world) | 0.367 / 0.008, 0.490 / 0.000 | 0.633 / 0.000, 0.776 / 0.000 |
| mean recall of the six | 0.408 | 0.623 |
| seed 0, coupling 0: AMs selected | 3.7%, 4.3% | 5.9%, 7.4% (all women's AMs: a chance link in this sample) |
| seed 1, coupling 0: AMs selected | 1.1%, 0.5% | 0.5%, 1.6% |
| ``decoupled`` controls of the five: AMs selected | 0-1.6% | 0-5.9% (seed 2: 5.9%, 4.3%) |

Each feature set takes about 2 s to compute for 240 people on one thread (k-means on 40,000 frames included).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from voiceface.methods.sfv.config import PRESETS
from voiceface.methods.sfv.data import from_world
from voiceface.methods.sfv.evaluate import truth_scores
from voiceface.methods.sfv.linear import FEATURES, LINEAR_REPEATS, LINEAR_SPLIT, decoupled, linear_selection


def scores(d, x: np.ndarray, seed: int, alpha: float) -> tuple[float, float, float]:
    """Recall, false-positive rate and share of all AMs selected (pooled over genders) with features x (P, D)."""
    sel, lay = linear_selection(d, ("m", "f"), LINEAR_REPEATS, LINEAR_SPLIT, seed, alpha, x=x)
    s = truth_scores(d, sel, lay.genders)
    share = np.mean([sel.z(g).mean() for g in lay.genders])
    return s["sfv_recall"], s["sfv_false_positive_rate"], float(share)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("worlds", type=Path, nargs="+")
    ap.add_argument("--features", nargs="+", default=sorted(FEATURES), choices=sorted(FEATURES))
    ap.add_argument("--split-seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--alpha", type=float, default=0.05)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    cfg = PRESETS["cpu"]
    for world in a.worlds:
        d = from_world(world, norm=cfg.data.feature_norm, max_s=cfg.data.max_test_s)
        control = decoupled(d, np.random.default_rng(0))
        print(f"== {world}: {len(d.identity)} people")
        for name in a.features:
            t0 = time.perf_counter()
            x = FEATURES[name](d)
            for seed in a.split_seeds:
                recall, fpr, share = scores(d, x, seed, a.alpha)
                _, _, share_c = scores(control, x, seed, a.alpha)
                print(f"  {name:7s} split seed {seed}: recall {recall:.3f}  FPR {fpr:.3f}  AMs selected "
                      f"{share:.1%}  decoupled control: {share_c:.1%} selected")
            print(f"  {name:7s} {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
