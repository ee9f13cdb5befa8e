"""Cost of CEST's reconstruction objectives as the frames per clip grow: the full Eq. 4.10 (2 n^2 terms per clip)
against the stochastic Eq. 4.11 (2 terms per frame, O(n)).

For n = 2, 4, 8, 16 frames of one clip (64x64 CPU preset, random frames: cost does not depend on content) it
measures training iterations per second (forward, all reconstruction terms, backward, Adam step) and the time of
the reconstruction terms alone, and prints ratios against n = 2 measured in the same run plus the fitted growth
exponent (1 = linear, 2 = quadratic). Our renderer packs every reflectance set of a frame into the channels of one
rasterisation, so the full objective's extra cost is interpolation, shading products and L1 terms (3 channels per
term), not extra rasterisations.

    .venv/bin/python bench/bm_cest.py [--frames 2 4 8 16] [--repeats 3] [--clips 1]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from voiceface.methods.cest.config import LossConfig, PRESETS
from voiceface.methods.cest.loss import CESTLoss, photometric, reflectance_sets
from voiceface.methods.cest.model import build_model


def batch_for(n: int, clips: int, size: int, objective: str, gen: torch.Generator) -> dict:
    b = n * clips
    base = np.repeat(np.arange(clips) * n, n)
    if objective == "full":
        partners = base[:, None] + np.arange(n)[None]
    else:
        partners = (base + (np.tile(np.arange(n), clips) + 1) % n)[:, None]
    lm = 16 + 32 * torch.rand(b, 68, 2, generator=gen)
    mask = torch.zeros(b, 1, size, size)
    mask[..., size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 1
    return {"images": torch.rand(b, 3, size, size, generator=gen), "masks": mask, "landmarks": lm,
            "partners": torch.from_numpy(partners)}


def timed(fn, repeats: int) -> float:
    fn()                                                   # warm-up
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t) / repeats


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, nargs="+", default=[2, 4, 8, 16])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--clips", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = PRESETS["cpu"]
    model = build_model(cfg.net)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    rows = []
    for n in args.frames:
        row = {"n": n}
        for objective in ("stochastic", "full"):
            lcfg = LossConfig(objective=objective)
            loss = CESTLoss(lcfg)
            batch = batch_for(n, args.clips, cfg.net.image_size, objective, gen)
            row[f"iter_{objective}"] = timed(lambda: loss.step(model, opt, batch), args.repeats)
            with torch.no_grad():
                o = model(batch["images"])
            sh = model.shading(o["shape"], o["viewpoint"], o["light"]).detach()
            refl = o["reflectance"].detach().requires_grad_(True)

            def terms():
                sets, _ = reflectance_sets(model, refl, batch["partners"], lcfg)
                img = model.render(o["verts_screen"], sh, sets, face_id=o["face_id"])["image"]
                photometric(batch["images"], img, batch["masks"]).sum().backward()

            row[f"terms_{objective}"] = timed(terms, args.repeats)
            row[f"k_{objective}"] = reflectance_sets(model, refl, batch["partners"], lcfg)[0].shape[1] * n * args.clips
        rows.append(row)
        print(f"n={n:2d}: iterations/s stochastic {1 / row['iter_stochastic']:.2f}, full {1 / row['iter_full']:.2f}; "
              f"reconstruction terms {row['k_stochastic']} vs {row['k_full']}, their time "
              f"{row['terms_stochastic'] * 1e3:.0f} ms vs {row['terms_full'] * 1e3:.0f} ms", flush=True)
    ns = np.array([r["n"] for r in rows], float)
    for key in ("iter_stochastic", "iter_full", "terms_stochastic", "terms_full"):
        t = np.array([r[key] for r in rows])
        slope = np.polyfit(np.log(ns), np.log(t), 1)[0]
        ratios = ", ".join(f"{v / t[0]:.2f}" for v in t)
        print(f"{key:17s} time ratio vs n={int(ns[0])}: [{ratios}]  growth exponent {slope:.2f}")
    print("full / stochastic iteration time: " + ", ".join(f"n={r['n']}: {r['iter_full'] / r['iter_stochastic']:.2f}"
                                                            for r in rows))


if __name__ == "__main__":
    main()
