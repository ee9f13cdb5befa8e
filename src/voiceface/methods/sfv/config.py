"""SfV settings (Chapter 5): frozen dataclasses; ``PRESETS`` holds ``paper`` (the defaults) and ``cpu``.

Defaults follow Sec. 5.3: 64-band log-mel, Table 5.2 channels 64-96-144-216, SGD (momentum 0.9, lr 0.1, weight decay
5e-4), minibatch 64, 5k iterations, 6-8 s training crops, 7/1/1/1 splits, N = 100 repeats, alpha = 0.05, top-10 AMs
for the Eq. 5.7 fit. The ``cpu`` preset scales repeats, steps, batch and crop lengths down for a laptop.
``configs/sfv/NAME.yaml`` are the same values as ``PRESETS[NAME]`` (checked by a test).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelConfig:
    n_mels: int = 64
    channels: tuple[int, ...] = (64, 96, 144, 216)   # Table 5.2 backbone widths
    per_am: bool = False          # False: one network for all AMs (footnote 2); True: one network per AM
    uncertainty: bool = True      # True: mean + variance heads, Eq. 5.2; False: mean head only, Eq. 5.1


@dataclass(frozen=True)
class DataConfig:
    genders: tuple[str, ...] = ("m", "f")   # experiments per gender (Sec. 5.3)
    split: tuple[int, int, int, int] = (7, 1, 1, 1)   # D_t / D_v1 / D_v2 / D_e
    crop_min_s: float = 6.0      # random training crops of crop_min_s..crop_max_s (Sec. 5.3)
    crop_max_s: float = 8.0
    segment_s: float = 7.0       # testing: whole recordings cut into segments of this length, fused by Eq. 5.3
    max_test_s: float = 60.0     # cap on the audio read per test recording (memory)
    frames_per_s: int = 100      # log-mel hop 10 ms
    feature_norm: str = "global"   # per-bin mean/variance normalisation: "global" (over all recordings of the set,
                                   # keeping each voice's average spectral envelope) or "utterance" (per recording)
    workers: int = 0             # DataLoader processes building training batches (0: in the training process)
    prefetch: int = 2            # batches built ahead per worker


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 5000
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    grad_clip: float = 5.0       # per-repeat gradient norm clip (stabilises lr 0.1 with the NLL loss)
    select_every: int = 250      # estimator selection on D_v1 every this many steps (Algorithm 2, line 5)
    log_every: int = 50
    checkpoint_every: int = 250


@dataclass(frozen=True)
class SelectConfig:
    repeats: int = 100           # N repeated random splits (Algorithm 2)
    alpha: float = 0.05          # significance level of the one-sided t bound (Eq. 5.5)
    filter_fracs: tuple[float, ...] = (0.0, 0.25, 0.5)   # most-uncertain voices filtered out (Fig. 5.3, 5.8)
    top_k: int = 10              # AMs used in the Eq. 5.7 fit, ranked by 1 - CI_u


@dataclass(frozen=True)
class FitConfig:
    components: int = 40         # eigenfaces kept (at most |training shapes| - 1)
    lam: float = 0.05            # lambda of Eq. 5.7 (on coefficients in units of their std) when lam_grid is empty
    # Eq. 5.7's lambda chosen per gender on validation people (out-of-sample predicted AMs of the non-D_e people,
    # evaluate.choose_fit_lam) from this grid; the largest values return the mean shape. () = always ``lam``.
    lam_grid: tuple[float, ...] = (0.05, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 1000.0)
    steps: int = 300
    lr: float = 0.05
    v2v_ridge: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1000.0)   # voice-to-vertex ridge grid (chosen on D_v1)


@dataclass(frozen=True)
class SfVConfig:
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    select: SelectConfig = SelectConfig()
    fit: FitConfig = FitConfig()
    seed: int = 0                # layout of splits, initialisation and batches
    device: str = "auto"         # auto: CUDA when present, else CPU
    precision: str = "fp32"      # fp32 | bf16 | fp16 (CUDA only): autocast of the forward passes


PRESETS: dict[str, SfVConfig] = {
    "paper": SfVConfig(),
    "cpu": SfVConfig(
        model=ModelConfig(channels=(32, 48, 72, 108)),
        data=DataConfig(crop_min_s=2.0, crop_max_s=3.0, segment_s=3.0, max_test_s=20.0),
        train=TrainConfig(steps=300, batch_size=16, select_every=50, log_every=25, checkpoint_every=100),
        select=SelectConfig(repeats=10),
        fit=FitConfig(components=20, steps=200)),
    # More statistical power per CPU minute: quarter-cost estimators (half widths: 0.15 vs 0.53 GFLOP per step and
    # repeat, bench/bm_sfv.py) buy 3x the repeats for about the same time, and a doubled D_v2 (6/1/2/1) halves the
    # variance of each repeat's error ratio; the t bound of Eq. 5.5 narrows with both.
    "cpu_power": SfVConfig(
        model=ModelConfig(channels=(16, 24, 36, 54)),
        data=DataConfig(split=(6, 1, 2, 1), crop_min_s=2.0, crop_max_s=3.0, segment_s=3.0, max_test_s=20.0),
        train=TrainConfig(steps=300, batch_size=16, select_every=50, log_every=25, checkpoint_every=100),
        select=SelectConfig(repeats=30),
        fit=FitConfig(components=20, steps=200)),
}
