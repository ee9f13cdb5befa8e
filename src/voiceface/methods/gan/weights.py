"""Compatibility with the authors' released checkpoints (``voice_embedding.pth``, ``generator.pth``).

Those files are plain ``state_dict``s of an ``nn.Sequential`` called ``model``: keys ``model.<i>.weight``,
``model.<i>.bias`` and, for BatchNorm layers, ``model.<i>.running_mean/running_var/num_batches_tracked``. Our
``VoiceEmbedNet`` / ``Generator`` (Table 3.2) keep the same layer indices under ``net``, so import = rename
``model.`` -> ``net.`` after checking every key and shape; the architecture (channels) is read from the shapes.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch

from ...engine import load_checkpoint, save_checkpoint
from ...errors import InputError
from .model import Generator, VoiceEmbedNet

KINDS = ("voice", "generator")
# model name inside a voiceface checkpoint for each kind
MODEL_NAME = {"voice": "voice", "generator": "generator"}


def _read_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt / non-torch files
        raise InputError(path, f"not a readable PyTorch state dict ({e.__class__.__name__})") from None
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(path, "not a plain state dict of tensors (expected keys model.<i>.weight ...)")
    return {str(k).removeprefix("module."): v for k, v in state.items()}


def _weight(state: Mapping[str, torch.Tensor], key: str, ndim: int, source) -> torch.Tensor:
    if key not in state:
        raise InputError(source, f"missing key '{key}' (not a checkpoint of this layout)")
    w = state[key]
    if w.dim() != ndim:
        raise InputError(source, f"key '{key}' has shape {tuple(w.shape)}, expected a {ndim}-d tensor")
    return w


def architecture(kind: str, state: Mapping[str, torch.Tensor], source: Any = None) -> dict[str, Any]:
    """Channels of an authors'-layout state dict: voice {mel_bins, channels, embed_dim}; generator {embed_dim, channels}."""
    if kind == "voice":
        convs = [_weight(state, f"model.{3 * i}.weight", 3, source) for i in range(5)]   # (out, in, 3)
        return {"mel_bins": int(convs[0].shape[1]), "channels": [int(w.shape[0]) for w in convs[:4]],
                "embed_dim": int(convs[4].shape[0])}
    if kind == "generator":
        convs = [_weight(state, f"model.{2 * i}.weight", 4, source) for i in range(6)]   # (in, out, k, k)
        return {"embed_dim": int(convs[0].shape[0]), "channels": [int(w.shape[1]) for w in convs[:5]],
                "out_channels": int(convs[5].shape[1])}
    raise InputError(source, f"unknown kind '{kind}' (one of {', '.join(KINDS)})")


def build(kind: str, arch: Mapping[str, Any]) -> torch.nn.Module:
    """An untrained module of ``kind`` with the architecture ``arch`` (as returned by ``architecture``)."""
    if kind == "voice":
        return VoiceEmbedNet(arch["mel_bins"], arch["channels"], arch["embed_dim"])
    return Generator(arch["embed_dim"], arch["channels"], arch.get("out_channels", 3))


def load_authors_state(module: torch.nn.Module, state: Mapping[str, torch.Tensor], source: Any = None) -> None:
    """Copy an authors'-layout state dict into ``module`` (a VoiceEmbedNet or Generator), checking every key.

    Raises ``InputError`` naming the first missing, unexpected or wrongly shaped key.
    """
    ours = module.state_dict()
    mapped = {}
    for key, value in state.items():
        if not key.startswith("model."):
            raise InputError(source, f"unexpected key '{key}' (expected model.<i>.<param>)")
        new = "net." + key[len("model."):]
        if new not in ours:
            raise InputError(source, f"unexpected key '{key}' for this network")
        if tuple(ours[new].shape) != tuple(value.shape):
            raise InputError(source, f"key '{key}' has shape {tuple(value.shape)}, expected {tuple(ours[new].shape)}")
        mapped[new] = value.to(ours[new].dtype)
    missing = [k for k in ours if k not in mapped]
    if missing:
        raise InputError(source, f"missing key '{'model.' + missing[0][len('net.'):]}'")
    module.load_state_dict(mapped)


def export_authors_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The inverse of ``load_authors_state``: our module's weights under the authors' ``model.<i>`` keys."""
    return {"model." + k[len("net."):]: v.clone() for k, v in module.state_dict().items()}


def import_authors(kind: str, file: str | os.PathLike) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Read an authors' checkpoint of ``kind`` (voice | generator); return our module (eval mode) and its arch."""
    if kind not in KINDS:
        raise InputError(file, f"unknown kind '{kind}' (one of {', '.join(KINDS)})")
    state = _read_state(file)
    arch = architecture(kind, state, file)
    module = build(kind, arch)
    load_authors_state(module, state, file)
    return module.eval(), arch


def import_to_checkpoint(kind: str, file: str | os.PathLike, out: str | os.PathLike) -> tuple[Path, dict[str, Any]]:
    """``voiceface weights import``: convert an authors' checkpoint into a voiceface checkpoint at ``out``.

    Returns the written path and the architecture read from the file."""
    module, arch = import_authors(kind, file)
    save_checkpoint(out, method="gan", config={"imported": {kind: {"source": os.fspath(file), **arch}}}, step=0,
                    models={MODEL_NAME[kind]: module})
    return Path(out), arch


def load_imported(path: str | os.PathLike) -> dict[str, torch.nn.Module]:
    """Modules (eval mode) of a checkpoint written by ``import_to_checkpoint``: {"voice": ..., "generator": ...}."""
    ckpt = load_checkpoint(path)
    imported = ckpt["config"].get("imported")
    if not imported:
        raise InputError(path, "not an imported-weights checkpoint (use a run folder instead)")
    out = {}
    for kind, arch in imported.items():
        module = build(kind, arch)
        module.load_state_dict(ckpt["models"][MODEL_NAME[kind]])
        out[MODEL_NAME[kind]] = module.eval()
    return out
