"""Configuration of the voice-to-face GAN (Chapter 3, Sec. 3.3 "Training", Table 3.2).

Defaults follow the thesis / the authors' released code: Adam lr 2e-4, betas (0.5, 0.999), minibatch 128,
voice crops of 300-800 frames (3-8 s), 64-d voice embedding, 64x64 RGB faces in [-1, 1]. ``PRESETS`` holds the
named presets (``configs/gan/NAME.yaml`` are the same values, checked by a test): ``default`` (the thesis settings;
note its F_e pretraining is 5,000 steps where the bare ``GANConfig()`` uses 2,000) and ``cpu``, the small preset the
demo trains in a few minutes on one core.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelConfig:
    """Architecture switches (Table 3.2)."""

    embed_dim: int = 64                      # q: voice embedding size fed to the generator
    mel_bins: int = 64                       # input channels of the voice network
    voice_channels: tuple[int, ...] = (256, 384, 576, 864)
    gen_channels: tuple[int, ...] = (1024, 512, 256, 128, 64)
    face_channels: tuple[int, ...] = (32, 64, 128, 256, 512)
    face_kernel: int = 3                     # Table 3.2: 3x3/2,1 (the authors' code used 4x4/2,1)
    face_embed: int = 64                     # trunk output 64x1x1
    share_trunk: bool = True                 # Sec. 3.3: D and C share their convolutional layers


@dataclass(frozen=True)
class EncoderConfig:
    """How the frozen voice embedding F_e is obtained (Sec. 3.2.1: pretrained on speaker identification)."""

    kind: str = "own"                        # own | dimnet | ge2e
    dimnet_run: str = ""                     # run folder of a DIMNet run (kind=dimnet)
    pretrain_steps: int = 2000               # own: speaker-classification steps
    pretrain_batch: int = 64
    pretrain_lr: float = 1e-3


@dataclass(frozen=True)
class DataConfig:
    """Voice crops and splits. Held-out recordings of training identities are chosen by session."""

    min_frames: int = 300                    # 3 s at 100 frames/s (Sec. 3.3)
    max_frames: int = 800                    # 8 s
    test_frames: int = 1000                  # short test recordings are repeated to 10 s (authors' get_fbank)
    train_splits: tuple[str, ...] = ("train",)
    test_splits: tuple[str, ...] = ("test",)
    heldout_sessions: int = 1                # per training identity, the last N sessions (sorted) are held out
    flip_faces: bool = True                  # horizontal flip augmentation of real faces (authors' FaceDataset)


@dataclass(frozen=True)
class GANConfig:
    """Everything ``voiceface train gan`` needs (Algorithm 1)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    data: DataConfig = field(default_factory=DataConfig)
    batch_size: int = 128                    # n = m = 128
    steps: int = 100_000                     # "training is completed at 100K iterations"
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    init_std: float = 0.02                   # DCGAN init N(0, 0.02) of G / D / C ([71]); 0 = PyTorch defaults
    embed_noise: float = 0.05                # perturbation of the normalised embedding (authors' gan_train.py)
    leaky_slope: float = 0.2
    log_every: int = 50
    checkpoint_every: int = 500
    device: str = "auto"
    eval_noise_trials: int = 100             # samples per duration for the D(noise) / D(speech) statistics
    gender_steps: int = 300                  # face gender classifier training steps (evaluation)
    gender_lr: float = 1e-3                  # its Adam learning rate (betas 0.5, 0.999), batch 64
    eval_durations: tuple[float, ...] = (1.0, 2.0, 3.0, 5.0, 10.0)   # Fig. 3.2 / 3.3 input durations (s)
    eval_train_probes: int = 200             # training-set recordings used for the "training set" matching column
    dimnet_i_run: str = ""                   # DIMNet-I run (Table 3.3 row; its face net embeds faces for matching)
    dimnet_g_run: str = ""                   # DIMNet-G run (Table 3.3 row)


PRESETS: dict[str, GANConfig] = {
    "default": GANConfig(encoder=EncoderConfig(kind="own", pretrain_steps=5000)),
    # narrower generator / critics than Table 3.2, batch 32, 400 iterations; unseen identities from val and test
    "cpu": GANConfig(
        model=ModelConfig(gen_channels=(128, 64, 32, 32, 16), face_channels=(16, 16, 32, 32, 64)),
        data=DataConfig(min_frames=100, max_frames=300, test_frames=500, test_splits=("val", "test")),
        encoder=EncoderConfig(kind="own", pretrain_steps=200, pretrain_batch=32),
        batch_size=32, steps=400, log_every=25, checkpoint_every=100, eval_noise_trials=40, gender_steps=400),
}
