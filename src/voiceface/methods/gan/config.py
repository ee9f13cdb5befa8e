"""Configuration of the voice-to-face GAN (Chapter 3, Sec. 3.3 "Training", Table 3.2).

Defaults follow the thesis / the authors' released code: Adam lr 2e-4, betas (0.5, 0.999), minibatch 128, voice crops
of 300-800 frames (3-8 s), 64-d voice embedding, 64x64 RGB faces in [-1, 1]. ``PRESETS`` holds the named presets
(``configs/gan/NAME.yaml`` are the same values, checked by a test): ``thesis`` (Algorithm 1 exactly, the thesis
settings; note its F_e pretraining is 5,000 steps where the bare ``GANConfig()`` uses 2,000) and ``cpu``, the small
preset the demo trains in minutes on one CPU with the stable recipe (``StableConfig``: spectral norm, hinge loss +
lazy R1, generator EMA, projection discriminator on the voice embedding, minibatch std, DiffAugment,
gender heads in F_e's pretraining and on F_c with a gender term in G's loss, a face prior (a face autoencoder whose
decoder is F_g, and a ridge map from voice embeddings to identity mean codes in front of it) and an L1 pull of the
generated face towards a real face of the voice's identity).

The bare ``GANConfig()`` (every ``stable`` switch off) is Algorithm 1; each stable part is a separate switch.
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
    gen_pixel_norm: bool = False             # stable: PixelNorm after each hidden layer of the generator
    gen_upsample: bool = False               # stable: nearest x2 upsampling + 3x3 conv instead of stride-2 ConvT, tanh
    spectral_norm: bool = False              # stable: spectral normalisation of every conv / linear of D and C
    mbstd: bool = False                      # stable: minibatch-std feature appended before D's head
    mbstd_group: int = 4                     # group size of the minibatch std (a divisor of the batch is used)
    projection: bool = False                 # stable: projection discriminator D(f, e) = psi(h) + <W e, h>
    gender_projection: bool = False          # + s * <w, h> with s = +1 male / -1 female / 0 unknown: real faces with
                                             # their identity's gender, G's faces with their voice's (issue 13)
    prior_channels: tuple[int, ...] = (16, 32, 64, 128, 256)   # the face prior's encoder (stable.prior_steps > 0)


@dataclass(frozen=True)
class EncoderConfig:
    """How the frozen voice embedding F_e is obtained (Sec. 3.2.1: pretrained on speaker identification)."""

    kind: str = "own"                        # own | dimnet | ge2e
    dimnet_run: str = ""                     # run folder of a DIMNet run (kind=dimnet)
    pretrain_steps: int = 2000               # own: speaker-classification steps
    pretrain_batch: int = 64
    pretrain_lr: float = 1e-3
    gender_weight: float = 0.0               # own: + this weight * the cross-entropy of a linear gender head on the
                                             # pooled embedding (a DIMNet covariate; 0 = speaker identity alone)


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
    workers: int = 0                         # DataLoader processes building training batches (0: this process)
    prefetch: int = 2                        # batches built ahead per worker
    voice_memory_mb: float = 1024.0          # cached voice features kept in RAM (the rest read per batch)
    face_memory_mb: float = 2048.0           # face banks up to this size are decoded once, larger read per batch


@dataclass(frozen=True)
class StableConfig:
    """Training switches of the stable recipe (all off = Algorithm 1; architecture switches live in ``ModelConfig``).

    Adversarial loss: ``nonsat`` (Algorithm 1's cross-entropy: D minimises softplus(-D(real)) + softplus(D(fake)),
    G minimises softplus(-D(fake))) or ``hinge`` (D: relu(1 - D(real)) + relu(1 + D(fake)); G: -D(fake)).
    """

    loss: str = "nonsat"                     # nonsat | hinge
    r1_gamma: float = 0.0                    # R1 penalty gamma/2 * E||grad_f D(f)||^2 on real faces (0 = off)
    r1_every: int = 16                       # lazy regularisation: every N steps, scaled by N
    ema_beta: float = 0.0                    # generator EMA decay per step (0 = off), ramped min(beta, (1+t)/(10+t))
    mismatch_weight: float = 0.0             # projection D: real faces with another identity's voice as negatives
    paired_batches: bool = False             # real face j is of the identity of voice j (needed by projection)
    augment: str = ""                        # DiffAugment policy: comma list of translation, color, cutout
    c_smoothing: float = 0.0                 # label smoothing of F_c's identity cross-entropy on real faces (C step)
    c_weight: float = 1.0                    # weight of F_c's identity loss in the generator step
    recon_weight: float = 0.0                # G step: weight of mean |F_g(e_j) - f_j|, f_j a real face of voice j's
                                             # identity (paired batches; 0 = off)
    recon_pool: int = 1                      # the pull compares both faces average-pooled by this factor: > 1 leaves
                                             # detail finer than recon_pool pixels to the adversarial terms
    gender_weight: float = 0.0               # a gender head on F_c's trunk, trained on real faces' gender in the C
                                             # step; G step: + this weight * its cross-entropy on F_g(e_i) with voice
                                             # i's gender (a DIMNet covariate; 0 = off, no head)
    gender_augment: str = ""                 # DiffAugment policy of the gender head's input alone (real faces in the
                                             # C step, G's faces in the G step; needs gender_weight; issue 13)
    gender_mismatch_weight: float = 0.0      # gender projection D: real faces with the opposite gender as negatives
    prior_steps: int = 0                     # the face prior: steps of a face autoencoder (FaceEncoder + F_g's decoder)
                                             # on real training faces before the GAN; then F_g's input map (voice
                                             # embedding -> code) starts as the ridge regression of each training
                                             # identity's mean code on its recordings' embeddings (0 = off)
    prior_batch: int = 32                    # faces per autoencoder step
    prior_lr: float = 1e-3                   # its Adam learning rate (betas 0.5, 0.999)
    prior_noise: float = 0.05                # code perturbation while training the decoder (then re-normalised)
    prior_ridge: float = 1.0                 # ridge penalty of the voice-to-code map
    sample_every: int = 0                    # write RUN/samples/step_N.png every N steps (0 = never)
    sample_probes: int = 8                   # unseen identities in the sample grid (generated + a real face each)


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
    lr_decay_start: float = 1.0              # from this fraction of ``steps`` on, every lr decays linearly to 0 at the
                                             # last step (1.0 = constant lr, Algorithm 1)
    init_std: float = 0.02                   # DCGAN init N(0, 0.02) of G / D / C ([71]); 0 = PyTorch defaults
    embed_noise: float = 0.05                # perturbation of the normalised embedding (authors' gan_train.py)
    leaky_slope: float = 0.2
    log_every: int = 50
    checkpoint_every: int = 500
    device: str = "auto"
    precision: str = "fp32"                  # fp32 | bf16 (autocast); fp16 is refused (no loss scaling here)
    seed: int = 0                            # initialisation, batches and evaluation draws
    eval_noise_trials: int = 100             # samples per duration for the D(noise) / D(speech) statistics
    gender_steps: int = 300                  # face gender classifier training steps (evaluation)
    gender_lr: float = 1e-3                  # its Adam learning rate (betas 0.5, 0.999), batch 64
    eval_durations: tuple[float, ...] = (1.0, 2.0, 3.0, 5.0, 10.0)   # Fig. 3.2 / 3.3 input durations (s)
    eval_train_probes: int = 200             # training-set recordings used for the "training set" matching column
    dimnet_i_run: str = ""                   # DIMNet-I run (Table 3.3 row; its face net embeds faces for matching)
    dimnet_g_run: str = ""                   # DIMNet-G run (Table 3.3 row)
    stable: StableConfig = field(default_factory=StableConfig)


PRESETS: dict[str, GANConfig] = {
    "thesis": GANConfig(encoder=EncoderConfig(kind="own", pretrain_steps=5000)),
    # narrower generator / critics than Table 3.2, batch 32; unseen identities from val and test; the stable recipe
    # without DiffAugment: at 800 CPU iterations translation augmentation slowed learning (small world, seed 0:
    # generated-face gender 77.5% with it, 80.6% without). The generator upsamples (nearest x2 + 3x3 conv, tanh):
    # with stride-2 transposed convs 800 steps gave checkerboard textures, with upsampling face layouts by step 400.
    # The face prior (issue 13): F_g first decodes real faces' codes (a face autoencoder, 2400 steps), and a ridge
    # map from the voice embedding to the identity's mean code feeds it; the GAN then refines that generator, held
    # near the voice's faces by the L1 pull to a real face of the voice's identity (recon_weight 30). Without the
    # prior, the GAN drew noisy faces whose gender dlib missed on many seeds. Demo world (age_cue 1), dlib gender of
    # generated faces, seeds 0-3: without prior and pull 0.581 / 0.852 / 0.829 / 0.835 (mean 0.774); an 800-step
    # prior + pull 10 0.929 / 0.873 / 0.942 / 0.808 (0.888); an 800-step prior + pull 30 0.977 / 0.904 / 0.894 /
    # 0.963, seeds 4 / 5 0.804 / 0.925 (0.911 over six seeds); seed 0: the 800-step prior without the GAN 0.960
    # (Frechet 0.346, diversity 0.63), with the GAN but without the pull 0.885 (bench/ablate_gan.py rows 0 and
    # 33-37 --seed S, measured when the prior had 800 steps). Nearly every miss was a female voice's face judged male
    # (seed 4: female 0.565, male 1.000): the 800-step autoencoder's blur erases what dlib reads as female (its
    # reconstructions of real unseen female faces: 0.281 judged female; 2400 steps: 0.619; bench/gan_prior_gender.py).
    # With 2400 prior steps (row 42, the preset): 0.969 / 0.971 / 0.929 / 0.965 / 0.971 / 0.952 over seeds 0-5 (mean
    # 0.960; recall@10 0.279, Frechet 0.120 against 0.155, diversity 0.78 against 0.90), for twice the CPU time. Before
    # the prior the pull alone was no gain (small world seed 0, recon_weight 5: 0.675 -> 0.708, one seed's noise).
    # Gender, a covariate DIMNet uses, is taught twice (issue 13): a gender head in F_e's pretraining
    # (encoder.gender_weight 1) and a gender head on F_c's trunk whose cross-entropy on G's faces, with the voice's
    # gender, joins G's loss (stable.gender_weight 3). Small world seed 0, 600 steps, dlib gender of generated faces
    # 0.706 -> 0.838 (AUC 0.765 -> 0.940); each alone: G term 1 0.758, encoder head 0.669 (bench/ablate_gan.py).
    # 600 steps, not 1500: with the gender terms gender peaks early (1500 steps: 0.733 / AUC 0.873, 1:2 0.571 / 0.494,
    # Frechet 0.135 against 0.232 at 600: later faces look more real but lose gender), and 600 cost 2.5x less.
    # Lazy R1 stays (issue 13): without it, seeds 0-4 of /tmp/demo4's small world at 600 steps gave dlib gender of
    # generated faces 0.883 / 0.890 / 0.875 / 0.758 / 0.692 against the preset's 0.802 / 0.919 / 0.644 / 0.852 / 0.600
    # (mean 0.820 vs 0.763, three seeds up, two down: not a clear win; bench/ablate_gan.py).
    "cpu": GANConfig(
        model=ModelConfig(gen_channels=(128, 64, 32, 32, 16), face_channels=(16, 16, 32, 32, 64),
                          gen_pixel_norm=True, gen_upsample=True, spectral_norm=True, mbstd=True, projection=True),
        data=DataConfig(min_frames=100, max_frames=300, test_frames=500, test_splits=("val", "test")),
        encoder=EncoderConfig(kind="own", pretrain_steps=200, pretrain_batch=32, gender_weight=1.0),
        batch_size=32, steps=600, log_every=25, checkpoint_every=250, eval_noise_trials=40, gender_steps=400,
        stable=StableConfig(loss="nonsat", r1_gamma=1.0, r1_every=16, ema_beta=0.99, mismatch_weight=0.25,
                            paired_batches=True, augment="", gender_weight=3.0, sample_every=100, prior_steps=2400,
                            recon_weight=30.0)),
}
