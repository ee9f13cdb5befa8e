"""Voice-to-face GAN (Chapter 3): F_e (frozen voice embedding) -> F_g (generator), trained against a
discriminator F_d and an identity classifier F_c by Algorithm 1."""
from __future__ import annotations

from .. import Method
from .evaluate import demo, evaluate
from .train import train

METHOD = Method("gan", "generate 64x64 faces from voice with a GAN (Chapter 3, Algorithm 1)", train, evaluate, demo)

__all__ = ["METHOD", "demo", "evaluate", "train"]
