"""The GAN's generated faces carry the speaker's gender, and do not when voices are attached to other people."""
from __future__ import annotations

from voiceface import config as cfglib
from voiceface.data.controls import write_control_manifest
from voiceface.methods.gan.config import PRESETS
from voiceface.methods.gan.evaluate import generated_gender
from voiceface.methods.gan.train import train

SMALL = {"steps": 300, "batch_size": 16, "log_every": 50, "checkpoint_every": 1000,
         "encoder": {"pretrain_steps": 50, "pretrain_batch": 16},
         "model": {"gen_channels": [64, 32, 16, 16, 8], "face_channels": [8, 8, 16, 16, 32]},
         "data": {"min_frames": 100, "max_frames": 200, "test_frames": 200}, "gender_steps": 150,
         "stable": {"prior_steps": 300, "prior_batch": 16}}


def test_gan_generated_gender_follows_voice_and_control_does_not(learn_world, learn_seed, tmp_path):
    """300 GAN steps (own F_e pretrained 50 steps) on the 40 training people; faces generated from the 72
    recordings of the 24 unseen people are scored by a face gender classifier trained on real training faces only
    (the same classifier for both runs: it depends on the real faces and the seed, not on the GAN).
    ``gen_gender_auc``: how well that classifier's female score on the generated face ranks the speaker's gender.

    Control: voices of each training person reattached to another training person (``shuffle_identities``), so
    the generator is taught to draw someone else's face for a voice; the true voice's gender must then not show.

    Measured (on the world before its realism rework; rerun: ``VOICEFACE_LEARN_SEEDS=0,1,2,3 ./run test -k learns
    -rP``), gen_gender_auc true / control: seed 0 0.99 / 0.33, seed 1 0.80 / 0.32, seed 2 0.39 / 0.33 (this seed's
    GAN had not learned yet; 250 steps: 0.58 / 0.64), seed 3 0.84 / 0.63. With the upsampling generator of the cpu
    preset 150 steps were too few (world after the dimorphism change, seed 0: 0.64 / -; the stride-2 ConvT generator
    0.87 / 0.18); 300 steps: 0.94 / 0.13; on the world before the voices' session/trait rework 0.85 / 0.40, and with
    stable.recon_weight=5 0.78 / 0.55 (why the preset then left it off); on today's world (seed 0) 0.752 / 0.252,
    hence the 0.70 floor beside the 0.3 gap to the control; with the preset's gender heads (encoder.gender_weight 1,
    stable.gender_weight 3) 0.841 / 0.291 (103 s); with the face prior (300 autoencoder steps here) and the recon
    pull 30, 0.918 / 0.160 (93 s of CPU). The control may fall below 0.5 (a derangement can flip more genders than
    it keeps). ``gen_gender_acc`` is no use this early: every generated face falls on one side of the classifier."""
    real = tmp_path / "real"
    train(learn_world, real, seed=learn_seed, progress=False, config=cfglib.replace(PRESETS["cpu"], SMALL))
    ctrl = tmp_path / "shuffled"
    data = write_control_manifest(learn_world, "voice", seed=learn_seed, splits=["train"])
    train(data, ctrl, seed=learn_seed, progress=False, config=cfglib.replace(PRESETS["cpu"], SMALL))
    a, b = generated_gender(real, learn_world), generated_gender(ctrl, learn_world)
    print(f"seed {learn_seed}: gen_gender_auc {a['gen_gender_auc']:.3f} / control {b['gen_gender_auc']:.3f}; "
          f"classifier on real faces {a['gender_clf_real_acc']:.3f}")
    assert a["gender_clf_real_acc"] >= 0.7, a                      # the probe itself works on real faces
    assert a["gen_gender_auc"] >= 0.70, a
    assert b["gen_gender_auc"] <= 0.65, b
    assert a["gen_gender_auc"] - b["gen_gender_auc"] >= 0.3
