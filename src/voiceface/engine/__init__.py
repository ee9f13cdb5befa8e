"""Training engine: the shared loop, atomic self-describing checkpoints, run folders and DDP helpers."""
from .checkpoint import load_checkpoint, save_checkpoint
from .loop import Parts, announce, fit, restore
from .runs import Run, read_json, write_json

__all__ = ["Parts", "Run", "announce", "fit", "load_checkpoint", "read_json", "restore", "save_checkpoint", "write_json"]
