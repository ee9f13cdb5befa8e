"""SfV's estimators predict the voice-linked AMs of unseen people from their voices, and do not when the voices
are shuffled across identities."""
from __future__ import annotations

import numpy as np

from voiceface import config as cfglib
from voiceface.data.controls import write_control_manifest
from voiceface.methods.sfv.config import PRESETS
from voiceface.methods.sfv.evaluate import linked_am_correlation, load_run, out_of_bag_ams, truth_scores
from voiceface.methods.sfv.linear import decoupled, linear_selection
from voiceface.methods.sfv.train import load_triplets, train

CFG = cfglib.replace(PRESETS["cpu"], {
    "train": {"steps": 300, "select_every": 300, "checkpoint_every": 1000, "log_every": 1000},
    "select": {"repeats": 8}, "data": {"split": [7, 1, 1, 1]},
    "model": {"uncertainty": False, "channels": [8, 12, 18, 27]}})


def _correlation(data, world, out, seed: int) -> float:
    """Train on ``data``; the mean over genders of the linked-AM correlation of out-of-bag predictions from the
    true ``world``'s voices (the control is trained on shuffled voices but tested on true ones)."""
    lo = load_run(train(data, out, config=CFG, seed=seed, progress=False), world)
    pred, covered = out_of_bag_ams(lo)
    assert covered.sum() >= 30, covered.sum()
    return float(np.mean(list(linked_am_correlation(lo.data, pred, covered).values())))


def test_sfv_predicts_linked_ams_and_control_does_not(learn_world, learn_seed, tmp_path):
    """SfV (cpu preset with quarter-width estimators, channels 8-12-18-27; 8 repeats, splits 7/1/1/1 per gender,
    300 steps, final weights, mean-only estimators of Eq. 5.1) on the 64-person world.

    Score: per gender, the Pearson correlation across people between predicted and true AMs, averaged over the AMs
    that world.json's ground truth marks voice-linked for that gender (``linked_ams``), then over genders; the
    predictions are out-of-bag (each person is predicted only by the networks that did not train on them,
    ``out_of_bag_ams``), which covers ~57 of the 64 people. Control: the same training on the world with every
    person's voices reattached to another person (``shuffle_identities(manifest, "voice", ...)``), scored on the
    true voices: the voice no longer tells the face, so the correlation must stay near 0.

    Measured (seeds 0 / 1 / 2 / 3; rerun: ``VOICEFACE_LEARN_SEEDS=0,1,2,3 ./run test -k learns -rP``):
    true 0.143 / 0.052 / 0.055 / 0.153, control -0.112 / -0.028 / -0.036 / 0.053 (gap 0.255 / 0.080 / 0.091 /
    0.100; true > control in every seed); 40-65 s per seed (both trainings) on a loaded 2-core machine.
    The statistic is noisy: ~30 people per gender, so the control alone swings by +-0.1. The narrow, many-repeat
    setting buys its power: the previous one (full cpu widths, 2 repeats, 5/1/1/3, 150 steps; ~35 people covered)
    gave true 0.174 / 0.048 / 0.090 on seeds 0-2 against control 0.086 / 0.046 / 0.033 on this world (seed 1 gap
    0.002), and 4 repeats of it gave true -0.035 / control 0.037 on seed 1. ``test_sfv_ridge_...`` below makes
    the same claim with far more power per CPU second."""
    real = _correlation(learn_world, learn_world, tmp_path / "real", seed=learn_seed)
    ctrl = _correlation(write_control_manifest(learn_world, "voice", seed=learn_seed), learn_world, tmp_path / "ctrl",
                        seed=learn_seed)
    print(f"seed {learn_seed}: linked-AM correlation {real:.3f} / control {ctrl:.3f}")
    assert real > 0.03, real                   # measured min 0.052 over seeds 0-3
    assert abs(ctrl) < 0.15, ctrl               # measured max |control| 0.112
    assert real - ctrl >= 0.05, (real, ctrl)    # measured min gap 0.080


def _ridge_scores(d, seed: int, truth=None) -> tuple[float, float, float]:
    """Algorithm 2 with the ridge estimator (200 repeats, 6/1/2/1 splits per gender) on triplets ``d``: the recall
    over world.json's voice-linked AMs, the fraction of all AMs selected (mean over genders), and the mean over
    genders and linked AMs (``truth``, default ``d.truth``) of the mean D_v2 error reduction 1 - E / E^C (Eq. 5.4)."""
    sel, lay = linear_selection(d, ("m", "f"), repeats=200, split=(6, 1, 2, 1), seed=seed)
    recall = truth_scores(d, sel, lay.genders)["sfv_recall"]
    truth = d.truth if truth is None else truth
    gain = np.mean([np.mean(1 - sel.bounds[g][0].mean[truth[g] == 1]) for g in lay.genders])
    return float(recall), float(np.mean([sel.z(g).mean() for g in lay.genders])), float(gain)


def test_sfv_ridge_controls_select_nothing(learn_world, learn_seed):
    """Algorithm 2 with the ridge estimator of ``linear.py`` (16-band mean log-mel per person, 200 repeats, splits
    6/1/2/1 per gender, alpha 0.05) on the 64-person world. Controls: the world with every person's voices
    reattached to another person (shuffled-voice manifest, truth unchanged) and ``decoupled`` (within-gender
    derangement of faces, truth all 0) must select only alpha-level false selections, and the real world's recall
    must be at least the shuffled-voice one. Under 1 s per fit.

    Measured (seeds 0 / 1 / 2 / 3; rerun: ``VOICEFACE_LEARN_SEEDS=0,1,2,3 ./run test -k learns -rP``) on the world
    with today's stronger speaker traits: recall 0.061 / 0.143 / 0 / 0.041 (was 0.224 / 0.163 / 0.163 / 0.204);
    shuffled-voice recall 0 in all, fraction selected 0 / 0 / 0 / 0.011; ``decoupled`` fraction selected
    0.011 / 0.011 / 0 / 0; mean D_v2 error reduction over the linked AMs -0.180 / -0.132 / -0.187 / -0.138 against
    -0.167 / -0.172 / -0.229 / -0.221 shuffled. With ~32 people per gender (D_v2 of ~6) and 3 short utterances each
    the link is no longer reliably found here (1000 repeats: recall 0.020 / 0.163 / 0.020 / 0.041), so this test
    now guards the false-selection side only; the recall claim is measured on the 240-person small worlds (seed 1:
    recall 0.286 with the run defaults; linear.py) and on synthetic sets (test_sfv_linear.py)."""
    cfg = PRESETS["cpu"]
    d = load_triplets(learn_world, cfg)
    recall, _, gain = _ridge_scores(d, learn_seed)
    shuf_recall, shuf_frac, shuf_gain = _ridge_scores(
        load_triplets(write_control_manifest(learn_world, "voice", seed=learn_seed), cfg), learn_seed)
    _, dec_frac, dec_gain = _ridge_scores(decoupled(d, np.random.default_rng(learn_seed)), learn_seed, d.truth)
    print(f"seed {learn_seed}: ridge recall {recall:.3f} / shuffled-voice recall {shuf_recall:.3f}, selected "
          f"{shuf_frac:.3f} / decoupled selected {dec_frac:.3f}; linked-AM gain {gain:.4f} / shuffled-voice "
          f"{shuf_gain:.4f} / decoupled {dec_gain:.4f}")
    assert shuf_recall <= 0.05 and shuf_frac <= 0.06, (shuf_recall, shuf_frac)   # measured max 0, 0.011
    assert dec_frac <= 0.08, dec_frac                      # measured max 0.011 (alpha = 0.05)
    assert recall >= shuf_recall, (recall, shuf_recall)
