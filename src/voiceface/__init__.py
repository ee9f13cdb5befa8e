"""voiceface: reconstructing faces from voices (Y. Wen, CMU 2022), as a PyTorch toolkit.

Public API (see README): data manifests, the audio and face front ends, the 3D face stack, the simulated world and
the four methods (DIMNet, GAN, CEST, SfV), each trainable and evaluable from Python and from the ``voiceface`` CLI.
"""
__version__ = "0.1.0"

from .data.manifest import Item, Manifest, read_manifest, write_manifest
from .engine.runs import Run
from .errors import ConfigError, InputError, VoicefaceError

__all__ = ["ConfigError", "InputError", "Item", "Manifest", "Run", "VoicefaceError", "__version__",
           "read_manifest", "write_manifest"]
