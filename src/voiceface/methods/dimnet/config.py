"""DIMNet settings as frozen dataclasses (Sec. 2.2-2.3, Table 2.2); presets in ``configs/dimnet/*.yaml``.

Defaults are the thesis's: Table 2.2 widths, d = 64, 128x128 faces, crops of 300-800 frames, 50% flips, SGD with
momentum 0.9 and weight decay 0.001, lr 0.1 divided by 10 after 16K and 24K of 28K iterations, minibatches of 256
mixing voices and faces, every covariate weight 1.0. ``PRESETS`` holds the named presets (``configs/dimnet/NAME.yaml``
are the same values, checked by a test): ``default`` (the thesis) and ``cpu``, the narrow variant that trains on
the simulated world's small preset on one CPU core in about 6 minutes (2,000 steps of 32 voices + 32 faces).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import ConfigError

COVARIATE_LETTERS = {"I": "identity", "G": "gender", "N": "nationality"}


@dataclass(frozen=True)
class NetConfig:
    """Embedding networks (Table 2.2): one width per stage (4 stages + a final d-channel stride-2 conv).

    Each stage: conv(3, w)/2 -> residual block [conv(3, w)/1, conv(3, w)/1] (``blocks`` of them) -> conv(3, w)/1,
    every conv followed by BN + ReLU; then conv(3, d)/2 and average pooling (time for voices, space for faces).
    """

    embed_dim: int = 64
    voice_widths: tuple[int, ...] = (256, 384, 576, 864)
    face_widths: tuple[int, ...] = (64, 128, 256, 512)
    blocks: int = 1
    mel_bins: int = 64
    face_size: int = 128


@dataclass(frozen=True)
class OptimConfig:
    """SGD with a step schedule (Sec. 2.3 "Training")."""

    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.001
    milestones: tuple[int, ...] = (16000, 24000)
    gamma: float = 0.1
    steps: int = 28000


@dataclass(frozen=True)
class DataConfig:
    """Minibatch make-up and augmentation (Sec. 2.3 "Preprocessing", "Training"), and the input pipeline.

    ``workers``: DataLoader processes building batches (0: in the training process), ``prefetch`` batches ahead
    each; ``extract_workers``: processes extracting voice features into the cache; ``face_memory_mb``: face banks
    up to this size are decoded once into RAM, larger ones are read from disk per batch."""

    voices_per_batch: int = 128
    faces_per_batch: int = 128
    min_frames: int = 300
    max_frames: int = 800
    flip: bool = True
    train_splits: tuple[str, ...] = ("train",)
    test_splits: tuple[str, ...] = ("test",)
    heldout_fraction: float = 0.1
    workers: int = 0
    prefetch: int = 2
    extract_workers: int = 1
    face_memory_mb: float = 2048.0
    cache_dir: str = ""


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation protocol (Sec. 2.3 "Testing")."""

    n_max: int = 10
    strata: tuple[str, ...] = ("U", "G", "N", "GN")
    seed: int = 0
    mds_identities: int = 10
    device: str = "auto"


@dataclass(frozen=True)
class DIMNetConfig:
    """The whole DIMNet run. ``covariates``: letters of I (identity), G (gender), N (nationality), e.g. "IG";
    ``weights``: lambda_C per letter (Eq. 2.1), empty = 1.0 each."""

    covariates: str = "I"
    weights: tuple[float, ...] = ()
    net: NetConfig = field(default_factory=NetConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"         # fp32 | bf16 | fp16 (CUDA only): autocast of the forward passes
    log_every: int = 50
    checkpoint_every: int = 500

    def covariate_weights(self) -> dict[str, float]:
        """{label name: lambda_C} for the chosen covariates (validated)."""
        letters = self.covariates.upper()
        if not letters or any(c not in COVARIATE_LETTERS for c in letters) or len(set(letters)) != len(letters):
            raise ConfigError(f"config key 'covariates': {self.covariates!r} is not a set of the letters I, G, N")
        if self.weights and len(self.weights) != len(letters):
            raise ConfigError(f"config key 'weights': {len(self.weights)} weights for covariates {letters!r}")
        weights = self.weights or (1.0,) * len(letters)
        return {COVARIATE_LETTERS[c]: float(w) for c, w in zip(letters, weights)}


PRESETS: dict[str, DIMNetConfig] = {
    "default": DIMNetConfig(),
    # narrow networks, 64x64 faces, short crops and runs: for one CPU core on the simulated world
    "cpu": DIMNetConfig(
        net=NetConfig(voice_widths=(32, 48, 64, 96), face_widths=(16, 24, 32, 48), face_size=64),
        optim=OptimConfig(lr=0.1, milestones=(1400, 1800), steps=2000),
        data=DataConfig(voices_per_batch=32, faces_per_batch=32, min_frames=150, max_frames=300),
        log_every=25, checkpoint_every=200),
}
