"""Ablation of the GAN's stable CPU recipe: the ``cpu`` preset, each stable part removed once, and Algorithm 1's
recipe at the same network sizes, all trained with the same seed and (reduced) number of steps on one world.

Every row is scored on the unseen identities by models the GAN never trained against (``metrics.dlib_face_metrics``:
gender of generated faces by the logistic regression on dlib descriptors, recall@10, diversity ratio, Frechet) and by
1:2 v->f matching through the generated face (dlib descriptors, unstratified / gender-stratified). dlib descriptors
of the world's real faces are cached in OUT/dlib_cache.npz (keyed by image content), so later rows only describe
their generated faces. The voice encoder is pretrained once (first row) and copied to the other rows. Run:

    OMP_NUM_THREADS=1 .venv/bin/python bench/ablate_gan.py --data WORLD --out DIR [--steps 600] [--rows a,b] [--seed S]

Rows after "thesis recipe" are candidate additions (not in the preset). ``--threads 2`` is the preset's time target
(2 idle cores); each row records train_s (wall), train_cpu_s (process CPU time) and the 1-min load average at start/end.

Measured (small world seed 0 after the looks' dimorphism change, --steps 300, one seed, preset without recon; dlib
gender judge 91.3% on real unseen faces): gender of generated faces (dlib LR) stable 0.80; without upsampling 0.89
(checkerboard images, but dark hair / beard areas), thesis recipe 0.55, without PixelNorm 0.73, spectral norm 0.55
(diversity ratio 0.07: collapse), R1 0.78, EMA 0.56, mismatched pairs 0.84, projection 0.76, minibatch std 0.78;
recall@10 0.16-0.23 (chance 0.167) and 1:2 matching 0.45-0.59 in every row.

--steps 600, same world and seed, load average 6-8 (columns: gen gender acc / AUC, 1:2 U / G, recall@10, diversity):
cpu preset 0.675 / 0.760, 0.524 / 0.500, 0.177, 1.18; + recon L1 1: 0.719 / 0.770, 0.505 / 0.488, 0.165, 1.16;
+ recon L1 5: 0.708 / 0.802, 0.524 / 0.503, 0.206, 1.24 (one seed: within noise; not adopted, since it also lowered
the learning test's margin: seed 0 AUC 0.78 / control 0.55 with the preset + recon_weight 5). The embedding
of the own F_e (200 steps) gives the speaker's gender to a linear probe for 91.0% of unseen recordings, so ~90% is
about the ceiling of generated-face gender with that F_e (600 pretraining steps: 91.2%, no better); a DIMNet-I run's
voice net only 63.5%. Identity: a linear
map from the world's true voice parameters (people.csv voice_*, 87 columns) to the dlib descriptor reaches 1:2 U 0.68
/ G 0.53 and recall@10 0.35, the own F_e's embedding 0.61 / 0.49-0.52, recall@10 0.24-0.25: the 70% / 55% matching
targets are above what the world's voice-face cues give in dlib space (bench/gan_ceiling.py).

The preset + recon_weight 5 at full length (1500 steps, 1 thread; F_e of its first, interrupted start reused):
gender 0.729 / AUC 0.791, 1:2 U 0.520 / G 0.472, recall@1/5/10 0.015/0.075/0.175, diversity 1.21, Frechet 0.144
(the preset without recon, the earlier demo run: 0.708, 0.568 / 0.483, 0.019/0.113/0.208, 1.21, 0.158). 513 s of process CPU time
for the 1500 GAN steps (0.34 s per step on one thread, load average 6.7 falling to 2.5; 1092 s wall).
Time of the preset on 2 threads at load average 1.8-2.4 (--steps 300 --threads 2): F_e pretraining 24.8 s, GAN
5.35 steps/s after a 50-step stall, so 1500 steps ~280 s: about 5.5 minutes in all on 2 idle cores. On a loaded
machine 2 threads collapse (0.24 steps/s at load 7, against 1.2 with 1 thread).

Late-training degradation (issue 13; world /tmp/me/demo2/world copied, seed 0, --steps 900, 1 thread, ~2 steps/s at
load average 2.5-6; columns as above + Frechet): the preset's sample grids are coherent at step 300 and noisy with
blocky colour by step 600-900, while D stays balanced (d/real ~0, d/fake ~-0.5, R1 ~0.005) and F_c's training accuracy
on real faces climbs (0.33 at step 600, 0.71 at 1500) with the generator's identity loss. Rows:
cpu preset 0.725 / 0.794, 0.535 / 0.473, 0.158, 1.20, 0.180 (470 s wall, load 2.5 -> 6.0);
+ C weight 0.25: 0.690 / 0.783, 0.526 / 0.518, 0.179, 0.97, 0.287 (smoother grids, but no gender gain, less
diversity, worse Frechet; 401 s, load 5.0 -> 4.8);
+ lr decay from 50% (lr_decay_start 0.5): 0.719 / 0.813, 0.535 / 0.499, 0.171, 1.20, 0.193 (405 s, load 4.1 -> 4.0).
+ EMA 0.999: 0.727 / 0.795, 0.535 / 0.475, 0.163, 1.20, 0.180 (the EMA ramp min(beta, (1 + t) / (10 + t)) is still
0.990 at t = 900, so this row is the preset in all but the last steps; a slower ramp would be the real test).
None beats the preset at equal steps (one seed), so the preset is unchanged; "+ C weight 0" is a row, not measured.

Gender terms (issue 13; the rows above were measured on the preset before them). Small world seed 0 (built with
``sim build --preset small --seed 0``), --steps 600, 1 thread, load average 1.5-4.2; columns: dlib gender acc / AUC,
1:2 U / G, recall@10, diversity, Frechet (dlib gender judge on real unseen faces 0.987):
preset before issue 13 0.706 / 0.765, 0.557 / 0.510, 0.208, 1.18, 0.250;
+ gender term in G (stable.gender_weight 1) 0.758 / 0.825, 0.551 / 0.513, 0.223, 1.15, 0.218;
+ encoder gender head (encoder.gender_weight 1) 0.669 / 0.740, 0.560 / 0.498, 0.160, 1.16, 0.208;
+ both (G 1, encoder 1) 0.815 / 0.893, 0.530 / 0.500, 0.192, 1.13, 0.238;
+ both (G 3, encoder 1), the preset since: 0.838 / 0.940, 0.563 / 0.473, 0.188, 1.13, 0.232 (rerun: identical);
the old preset + C label smoothing 0.2: 0.783 / 0.849, 0.547 / 0.494, 0.173, 1.18, 0.248;
the preset + C label smoothing 0.2: 0.850 / 0.956, 0.561 / 0.511, 0.229, 1.01, 0.294 (within noise on gender, lower
diversity and worse Frechet: left off). The F_e gender probe of bench/gan_ceiling.py (unseen recordings): 0.931
without the encoder's gender head, 0.958 with it (training recordings 0.928 -> 0.987). Ceilings on this world
(bench/gan_ceiling.py): the gender mean face alone 1:2 U 0.713 / G 0.496, recall@10 0.333 (2x chance); the world's
true voice parameters by ridge 0.705 / 0.516, 0.333: 1:2 G > 0.55 is above what the world's voices tell.
The preset with the gender terms at --steps 1500 (load average 4.8 -> 2.0, 585 s wall): 0.733 / 0.873, 0.571 / 0.494,
0.217, 1.14, 0.135 (F_c's training accuracy 0.63, the G term's gender head fooled on 98% of G's faces): gender peaks
early, hence the preset's 600 steps.

Issue 13, dlib gender of generated faces over seeds (/tmp/demo4/world copied, --steps 600, 1 thread, load 1.7-5.2;
``--seed S``; g-aug: stable.gender_augment translation,color,cutout, g-aug5 all five policies, g-proj:
model.gender_projection, +gmis: + gender_mismatch_weight 0.25). Columns: gender acc / AUC, 1:2 U / G, recall@10,
diversity, Frechet:
row              seed 0                             seed 1                             seed 2
0 preset   .802/.884 .570/.495 .252 1.15 .217 .919/.976 .631/.497 .221 1.18 .191 .644/.845 .532/.497 .190 1.10 .221
4 - R1     .883/.968 .587/.499 .265 1.17 .236 .890/.957 .608/.499 .248 1.08 .161 .875/.952 .611/.496 .269 1.15 .200
8 - mbstd  (0.865: an earlier run, not rerun)  .562/.753 .536/.527 .240 0.99 .136
25 g-aug   .840/.916 .582/.498 .265 1.18 .188 .771/.890 .590/.484 .227 1.13 .184
32 g-aug5  .840/.916 .561/.519 .223 1.18 .222 .742/.930 .542/.489 .163 1.07 .178
26 g-proj  .637/.679 .536/.511 .196 1.17 .258
27 +gmis   .850/.931 .563/.496 .169 1.20 .238
seed 3: row 0 .852/.942 .581/.486 .240 1.12 .166; row 4 .758/.758 .531/.475 .194 1.13 .215.
seed 4: row 0 .600/.748 .551/.509 .217 1.12 .186; row 4 .692/.938 .571/.489 .248 1.08 .226.
Seed noise dwarfs one-seed differences (the preset alone spans 0.60-0.92). Without R1, seeds 0-4: gender 0.820 against
0.763 (means; AUC 0.915 vs 0.879), recall@10 0.245 vs 0.224, 1:2 U 0.582 vs 0.573, Frechet 0.208 vs 0.196, but three
seeds up and two down (paired differences +.08 -.03 +.23 -.09 +.09), so the preset keeps R1 until more seeds settle
it. Augmenting the gender head's input (rows 25, 32; 29-31 not measured) and the gender projection D (26, 27; 28 not
measured) gave no gain over seeds. The ceiling: F_e's gender probe on unseen recordings 0.93-0.96 (above), so 0.90
needs G to render nearly every voice's gender.

The face prior (issue 13; the demo's world, ``age_cue`` 1, /tmp/demo6/world; --steps 600 --seed S, 1 thread, two rows
at a time, load average 0.8-4; all with the 800-step prior of then; row 0 = prior + recon pull 30, measured as "+ recon
anchor 30" before it became the preset; row 36 = the pull at 10, the preset of that hour). Real unseen faces' dlib
gender 0.987. Per seed 0 / 1 / 2 / 3:
row                            dlib gender          recall@10            diversity         Frechet
0 prior + pull 30 (preset)     .977 .904 .894 .963  .242 .246 .290 .340  .92 .87 .91 .96   .198 .119 .137 .162
36 prior + pull 10             .929 .873 .942 .808  .252 .273 .348 .210  1.00 .90 .99 .85  .195 .127 .165 .179
37 pull 10, 300 GAN steps      .940 .806 .965 .810  .254 .235 .308 .190  .94 1.00 .98 .91  .239 .207 .173 .230
34 prior alone (no GAN step)   .960 .967 .948 .948  .210 .285 .279 .246  .63 .58 .61 .50   .346 .299 .215 .183
35 prior + GAN, no pull        .885 (seed 0)        .260                 .94               .202
Row 0, seeds 4 / 5: gender .804 (AUC .999: ranked right, but on one side of the judge's threshold) / .925, recall@10
.265 / .317, diversity .84 / .89, Frechet .145 / .168; over seeds 0-5 gender .911, 4 of 6 seeds at >= .90.
Row 16 (+ C weight 0.25) with the prior, seeds 0-5: gender .973 .925 .908 .977 .875 .819 (mean .913, 4 of 6 at
>= .90, as the preset), recall@10 .300 .252 .373 .321 .315 .323 (mean .314 vs the preset's .283), diversity .81,
Frechet .139: no steadier gender, so the preset keeps C weight 1.
Means over seeds 0-3: row 0 gender .935 (AUC .978), 1:2 U / G (dlib) .632 / .486, recall@1/5/10 .029 / .155 /
.280; row 36 .888, .610 / .493; row 37 .880, .611 / .485; row 34 .956, .602 / .492. Row 33 (no prior, no pull: the
preset before the prior) on the same world, seeds 0-3, by ``voiceface train gan`` + ``evaluate gan``: gender .581 /
.852 / .829 / .835 (mean .774), recall@10 .233. The prior alone gets the gender right, but its faces are blurred
means (Frechet up to .35) and on seeds 1 and 3 less diverse than 0.6x the real faces; the GAN steps sharpen them,
the pull keeps them on the voice's gender. Ceilings on this world (bench/gan_ceiling.py --run OUT/row0): the gender
mean face recall@10 .333, 1:2 .713 / .496; the world's true voice parameters by ridge .333, .714 / .521; the F_e
embedding by ridge .310, .679 / .494 (its gender probe on unseen recordings .975).

A longer face prior (issue 13, the same world and protocol; rows 38-43). Nearly every gender miss of row 0 (the
800-step prior then) was a female voice's face judged male (seed 4: female .565, male 1.000). The prior's
reconstructions of real unseen female faces were judged female .281 (male .991; real faces .989 / .985, real faces
blurred by 2 .830 / .979): the blur of an under-trained autoencoder (training L1 still falling at step 800) erases
what dlib reads as female (bench/gan_prior_gender.py --run OUT/seed4/row0; row 42's 2400-step prior: .619 / .979,
reconstruction L1 .138 -> .106). Columns: gender acc, AUC, 1:2 U / G (dlib), recall@10, diversity, Frechet, for
row 0 (the preset of then: an 800-step prior, pull 30) | row 42 (prior 2400 steps, the preset since):
seed 0   .977 .997 .636/.482 .242 .92 .198 | .969 .999 .626/.497 .235 .70 .111
seed 1   .904 .944 .629/.492 .246 .87 .119 | .971 .990 .672/.491 .306 .90 .131
seed 2   .894 .980 .649/.477 .290 .91 .137 | .929 .995 .630/.476 .242 .78 .118
seed 3   .963 .990 .615/.492 .340 .96 .162 | .965 .991 .640/.506 .327 .81 .124
seed 4   .804 .999 .601/.516 .265 .84 .145 | .971 .994 .661/.501 .312 .81 .107
seed 5   .925 .991 .651/.496 .317 .89 .168 | .952 .992 .647/.515 .252 .69 .129
Means: row 0 gender .911 (min .804), AUC .984, 1:2 .630 / .493, recall@10 .283, diversity .90, Frechet .155; row
42 .960 (min .929), .993, .646 / .498, .279, .78, .120. Row 42 costs 630 s of process CPU time per row on one
thread (row 0: 300 s). Other tries on the hard seeds (2 / 4): pull 60 (row 38) .925 / .875, diversity .80 / .73;
pull 100 (39) .960 / .804, .71 / .64; the pull on 4x4-pooled faces (40, stable.recon_pool 4; seed 4) .831, AUC
.931, recall@10 .200, Frechet .217; 2400 prior steps with code noise 0 (43; seed 4) .938, diversity .88, Frechet
.115; the 800-step prior alone (34), seeds 4 / 5, .894 / .973. Row 41 (pooled 8x8) was not run.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import time
from pathlib import Path

import torch

from voiceface import config as cfglib
from voiceface.data.manifest import read_manifest
from voiceface.engine import Run
from voiceface.methods import resolve_data
from voiceface.methods.gan.config import PRESETS
from voiceface.methods.gan.metrics import dlib_face_metrics
from voiceface.methods.gan.train import load_faces64, load_run, split_data, to_unit, train

ev = importlib.import_module("voiceface.methods.gan.evaluate")    # the package re-exports a function of that name

STABLE_OFF = {"loss": "nonsat", "r1_gamma": 0.0, "ema_beta": 0.0, "mismatch_weight": 0.0, "paired_batches": False,
              "augment": "", "recon_weight": 0.0, "gender_weight": 0.0}
ROWS: dict[str, dict] = {
    "stable (cpu preset)": {},
    "- upsampling G (stride-2 ConvT)": {"model": {"gen_upsample": False}},
    "- PixelNorm in G": {"model": {"gen_pixel_norm": False}},
    "- spectral norm": {"model": {"spectral_norm": False}},
    "- lazy R1": {"stable": {"r1_gamma": 0.0}},
    "- generator EMA": {"stable": {"ema_beta": 0.0}},
    "- mismatched pairs": {"stable": {"mismatch_weight": 0.0}},
    "- projection D": {"model": {"projection": False}, "stable": {"mismatch_weight": 0.0}},
    "- minibatch std": {"model": {"mbstd": False}},
    "thesis recipe (Algorithm 1, cpu sizes)": {
        "model": {"gen_upsample": False, "gen_pixel_norm": False, "spectral_norm": False, "mbstd": False,
                  "projection": False}, "stable": STABLE_OFF, "encoder": {"gender_weight": 0.0}},
    "+ C weight 3": {"stable": {"c_weight": 3.0}},
    "+ separate C trunk": {"model": {"share_trunk": False}},
    "+ mismatch weight 1": {"stable": {"mismatch_weight": 1.0}},
    "+ encoder 500 steps": {"encoder": {"pretrain_steps": 500}},
    "+ recon L1 1": {"stable": {"recon_weight": 1.0}},
    "+ recon L1 5": {"stable": {"recon_weight": 5.0}},
    "+ C weight 0.25": {"stable": {"c_weight": 0.25}},
    "+ C weight 0": {"stable": {"c_weight": 0.0}},
    "+ lr decay from 50%": {"lr_decay_start": 0.5},
    "+ EMA 0.999": {"stable": {"ema_beta": 0.999}},
    "- gender term in G (stable.gender_weight 0)": {"stable": {"gender_weight": 0.0}},
    "- encoder gender head (encoder.gender_weight 0)": {"encoder": {"gender_weight": 0.0}},
    "- both gender terms (the preset before issue 13)": {"stable": {"gender_weight": 0.0},
                                                         "encoder": {"gender_weight": 0.0}},
    "+ C label smoothing 0.2": {"stable": {"c_smoothing": 0.2}},
    "gender term in G weight 1": {"stable": {"gender_weight": 1.0}},
    "+ gender augment (translation,color,cutout)": {"stable": {"gender_augment": "translation,color,cutout"}},
    "+ gender projection D": {"model": {"gender_projection": True}},
    "+ gender projection D + gender mismatch 0.25": {"model": {"gender_projection": True},
                                                     "stable": {"gender_mismatch_weight": 0.25}},
    "+ gender augment + gender projection D": {"model": {"gender_projection": True},
                                               "stable": {"gender_augment": "translation,color,cutout"}},
    "+ gender augment (translation,cutout)": {"stable": {"gender_augment": "translation,cutout"}},
    "+ gender augment (translation,color,cutout,noise)": {"stable": {"gender_augment": "translation,color,cutout,noise"}},
    "+ gender augment (translation,color,cutout,blur)": {"stable": {"gender_augment": "translation,color,cutout,blur"}},
    "+ gender augment (all five)": {"stable": {"gender_augment": "translation,color,cutout,blur,noise"}},
    "- face prior and recon anchor (the preset before the prior)": {"stable": {"prior_steps": 0, "recon_weight": 0.0}},
    "- GAN steps (the face prior alone)": {"steps": 0},
    "- recon anchor (face prior + GAN)": {"stable": {"recon_weight": 0.0}},
    "recon anchor 10": {"stable": {"recon_weight": 10.0}},
    "recon anchor 10, GAN 300 steps": {"steps": 300, "stable": {"recon_weight": 10.0}},
    "recon anchor 60": {"stable": {"recon_weight": 60.0}},
    "recon anchor 100": {"stable": {"recon_weight": 100.0}},
    "recon anchor pooled 4x4": {"stable": {"recon_pool": 4}},
    "recon anchor pooled 8x8": {"stable": {"recon_pool": 8}},
    "prior 2400 steps": {"stable": {"prior_steps": 2400}},
    "prior 2400 steps, code noise 0": {"stable": {"prior_steps": 2400, "prior_noise": 0.0}},
}
KEYS = ("gen_gender_dlib_acc", "gen_gender_dlib_auc", "gen_match_v2f_U_dlib", "gen_match_v2f_G_dlib",
        "dlib_recall_at_10", "gen_diversity_ratio", "dlib_frechet")


def score(run_dir: Path, cache: Path) -> dict[str, float]:
    """The test-column metrics of KEYS for a trained run (unseen identities' recordings -> generated faces)."""
    run = Run.open(run_dir)
    model = load_run(run.path)
    manifest = read_manifest(resolve_data(model.data))
    gd = split_data(manifest, model.config)
    feats, items = ev._bank(model, gd.test_voice, manifest, run)
    faces = ev.faces_from_features(model, feats)
    tr, gal = load_faces64(gd.train_face, manifest.root), load_faces64(gd.test_face, manifest.root)
    emb = ev._Embedders(model)
    emb.dlib_cached.load(cache)
    out = ev._matching_metrics(model, {"": (faces, items, to_unit(gal[0]), gal[1])}, model.seed, emb)
    out.update(dlib_face_metrics(
        emb.dlib_desc, faces, [i.identity for i in items], [i.gender for i in items],
        (to_unit(gal[0]), [i.identity for i in gal[1]], [i.gender for i in gal[1]]),
        (to_unit(tr[0]), [i.gender for i in tr[1]]), model.seed, run.path))
    emb.dlib_cached.save(cache)
    return {k: float(out[k]) for k in (*KEYS, "dlib_recall_at_1", "dlib_recall_at_5", "gender_dlib_real_acc",
                                       "dlib_recall_chance_10")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0, help="config seed (F_e, G/D init, batches); seed S != 0 writes "
                    "OUT/seedS/rowN and OUT/ablation_seedS.json, sharing OUT's dlib cache")
    ap.add_argument("--rows", default="", help="comma list of row numbers (0-based); default all")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the preset's time target: 2)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = list(ROWS)
    pick = [names[int(i)] for i in args.rows.split(",")] if args.rows else names
    # seed 0 keeps the original layout; another seed gets its own rows and table (its F_e is its own row 0's)
    rows_dir = out if args.seed == 0 else out / f"seed{args.seed}"
    table_file = out / ("ablation.json" if args.seed == 0 else f"ablation_seed{args.seed}.json")
    table = json.loads(table_file.read_text()) if table_file.is_file() else {}
    for name in pick:
        i = names.index(name)
        cfg = cfglib.replace(PRESETS["cpu"], {"steps": args.steps, **ROWS[name]})   # a row may fix steps
        run_dir = rows_dir / f"row{i}"
        first_enc = rows_dir / "row0" / "encoder"
        if i and "encoder" not in ROWS[name] and first_enc.is_dir() and not (run_dir / "encoder").exists():
            shutil.copytree(first_enc, run_dir / "encoder")
        t0, c0, load0 = time.time(), time.process_time(), os.getloadavg()[0]
        train(args.data, run_dir, seed=args.seed, progress=False, config=cfg)
        row = {"train_s": round(time.time() - t0, 1), "train_cpu_s": round(time.process_time() - c0, 1),
               "load_avg_1min": [round(load0, 2), round(os.getloadavg()[0], 2)], **score(run_dir, out / "dlib_cache.npz")}
        # re-read before adding the row: another process may have added rows of the same seed meanwhile
        table = json.loads(table_file.read_text()) if table_file.is_file() else {}
        table[name] = row
        table_file.write_text(json.dumps(table, indent=1))
        print(name, json.dumps(row), flush=True)
    print(f"| recipe ({args.steps} steps) | " + " | ".join(KEYS) + " |")
    print("|---" * (len(KEYS) + 1) + "|")
    for name, row in table.items():
        print(f"| {name} | " + " | ".join(f"{row[k]:.3f}" for k in KEYS) + " |")


if __name__ == "__main__":
    main()
