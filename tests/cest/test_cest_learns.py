"""CEST learns the viewpoint and appearance of unseen faces from their pixels (landmarks, photometric error), and
an untrained model, or the trained one scored against another person's frame, does not."""
from __future__ import annotations

import numpy as np

from voiceface import config as cfglib
from voiceface.methods.cest.config import PRESETS
from voiceface.methods.cest.data import load_sim_clips
from voiceface.methods.cest.evaluate import partner_frames, specificity_errors
from voiceface.methods.cest.train import build_parts, load_trained, train


def test_cest_learns_landmarks_and_appearance_and_controls_do_not(learn_clip_world, learn_seed, tmp_path):
    """CEST (cpu preset, 64x64), 60 steps on 16 people's clips; scored on the 64 frames of the 8 unseen people.

    Per test frame the predictions are scored against the frame itself (``_own``) and against the frame of another
    person it is paired with by a derangement of the test people (``_partner``, ``partner_frames``): a model that
    ignores its input scores own == partner. Controls: the untrained model (same seed, same initial weights) on its
    own frames, and the trained model against the partner frames.

    Measured (seeds 0 / 1 / 2, 60 steps, this world;
    rerun: ``VOICEFACE_LEARN_SEEDS=0,1,2,3 ./run test -k learns -rP``):
    photometric error (0-255) trained own 38.1 / 26.5 / 20.9, partner 63.3 / 59.8 / 53.4, untrained own
    61.5 / 68.0 / 57.5 (untrained partner within 0.3 % of own); landmark error (px) trained own 2.80 / 2.92 / 2.61,
    partner 3.66 / 4.06 / 3.72, untrained own = partner 3.43 (the untrained prediction barely depends on the image).
    Shape identity is NOT learned at this budget: the predicted neutral shape is no closer (similarity-aligned
    per-vertex error) to the person's own true mesh than to the partner's (ratio own / partner 1.00 at 100 steps,
    seed 0: 4.105 vs 4.097 model units; the mean shape scores 3.33 on both), so it is reported, not asserted. Why, and
    the landmark-weighted preset that does learn some shape on the small world: cest/loss.py's module docstring."""
    cfg = cfglib.replace(PRESETS["cpu"], {"optim": {"steps": 60}, "seed": learn_seed, "checkpoint_every": 1000,
                                          "log_every": 1000})
    untrained = build_parts(cfg, "cpu").models["cest"].eval()
    model, _ = load_trained(train(learn_clip_world, tmp_path / "run", config=cfg, progress=False))
    test = load_sim_clips(learn_clip_world, ("test",))
    idx = np.arange(len(test))
    partners = partner_frames(test.person, np.random.default_rng(learn_seed))
    assert (test.person[partners] != test.person).all()
    t = {k: float(v.mean()) for k, v in specificity_errors(model, test, idx, partners).items()}
    u = {k: float(v.mean()) for k, v in specificity_errors(untrained, test, idx, partners).items()}
    print(f"seed {learn_seed}: trained " + ", ".join(f"{k} {v:.3f}" for k, v in t.items())
          + "; untrained " + ", ".join(f"{k} {v:.3f}" for k, v in u.items()))
    # measured ratios over seeds 0-2 (worst in brackets): photometric own / untrained 0.62 / 0.39 / 0.36 (0.62),
    # own / partner 0.60 / 0.44 / 0.39 (0.60); landmarks own / untrained 0.82 / 0.85 / 0.76 (0.85),
    # own / partner 0.77 / 0.72 / 0.70 (0.77); untrained |own / partner - 1| < 0.003 on every key
    assert t["photometric_own"] < 0.75 * u["photometric_own"], (t, u)          # learned appearance and light
    assert t["landmark_px_own"] < 0.92 * u["landmark_px_own"], (t, u)          # learned viewpoint
    assert t["photometric_own"] < 0.75 * t["photometric_partner"], t           # ... of this image, not on average
    assert t["landmark_px_own"] < 0.85 * t["landmark_px_partner"], t
    for key in ("photometric", "landmark_px", "shape"):                        # the untrained control: own ~ partner
        assert abs(u[f"{key}_own"] / u[f"{key}_partner"] - 1.0) < 0.05, (key, u)
