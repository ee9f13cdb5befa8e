"""voiceface: reconstructing faces from voices (Y. Wen, CMU 2022), as a PyTorch toolkit.

The public API::

    import voiceface as vf
    world = vf.load_world(vf.build_world("worlds/tiny", preset="tiny"))   # the simulated world
    feats = vf.extract_features("a.wav")                                   # (T, 64) VAD + log-mel + CMVN
    emb = vf.embed_voices("runs/dimnet", ["a.wav"])                        # DIMNet (Ch. 2)
    faces = vf.generate_faces("runs/gan", ["a.wav"])                       # GAN (Ch. 3), (N, 3, 64, 64)
    vf.reconstruct_faces("runs/cest", ["photo.jpg"], "out/")               # CEST (Ch. 4)
    vf.shapes_from_voices("runs/sfv", ["a.wav"], ["f"], "out/")            # SfV (Ch. 5)

Training and evaluation go through ``voiceface.methods.registry()`` (or ``voiceface train / evaluate``).
"""
__version__ = "0.1.0"

from .api import embed_voices, generate_faces, reconstruct_faces, shapes_from_voices
from .audio import extract_features, load_audio
from .data.manifest import Item, Manifest, read_manifest, write_manifest
from .engine.runs import Run
from .errors import ConfigError, InputError, VoicefaceError
from .face3d import load_model
from .sim import build_world, load_world

__all__ = ["ConfigError", "InputError", "Item", "Manifest", "Run", "VoicefaceError", "__version__", "build_world",
           "embed_voices", "extract_features", "generate_faces", "load_audio", "load_model", "load_world",
           "read_manifest", "reconstruct_faces", "shapes_from_voices", "write_manifest"]
