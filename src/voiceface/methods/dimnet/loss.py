"""DIMNet loss with the modality switch (Eq. 2.1, 2.3; Sec. 2.2.2-2.2.3).

``DIMNetLoss(voice_net, face_net, heads, weights)`` has two phases:

* ``loss("voice", x, labels)``: x (B, 64, T) log-mel crops -> F_v -> every H_C -> sum_C lambda_C CE(H_C, C(v));
* ``loss("face", x, labels)``: x (B, 3, S, S) faces -> F_f -> every H_C -> sum_C lambda_C CE(H_C, C(f)).

Only the phase's own embedding network enters its graph, so gradients of the voice phase reach the voice network
and the classifiers only, and those of the face phase the face network and the classifiers only (the disjoint
updates of Sec. 2.2.2). Labels of -1 (a value unseen in training) are ignored.
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

PHASES = ("voice", "face")


class DIMNetLoss:
    """Weighted sum of per-covariate cross-entropies for one modality at a time (Eq. 2.1)."""

    phases = PHASES

    def __init__(self, voice_net: nn.Module, face_net: nn.Module, heads: nn.Module, weights: Mapping[str, float]):
        self.nets = {"voice": voice_net, "face": face_net}
        self.heads = heads
        self.weights = dict(weights)

    def __call__(self, phase: str, x: torch.Tensor, labels: Mapping[str, torch.Tensor]
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss (scalar) and logged scalars ``{phase}/loss_{C}``, ``{phase}/acc_{C}``.

        x: (B, 64, T) for "voice", (B, 3, S, S) for "face"; labels[C]: (B,) int64 class indices.
        """
        if phase not in self.nets:
            raise ValueError(f"unknown DIMNet loss phase {phase!r} (phases: {', '.join(PHASES)})")
        emb = self.nets[phase](x)                       # (B, d)
        logits = self.heads(emb)                        # {C: (B, n_C)}
        total = emb.new_zeros(())
        logs: dict[str, float] = {}
        for name, w in self.weights.items():
            y = labels[name]                            # (B,)
            ce = F.cross_entropy(logits[name], y, ignore_index=-1)
            total = total + w * ce
            logs[f"{phase}/loss_{name}"] = float(ce.detach())
            ok = y >= 0
            logs[f"{phase}/acc_{name}"] = float((logits[name].argmax(1)[ok] == y[ok]).float().mean()) if ok.any() \
                else float("nan")
        logs[f"{phase}/loss"] = float(total.detach())
        return total, logs

    def mixed(self, voices: torch.Tensor, faces: torch.Tensor, voice_labels: Mapping[str, torch.Tensor],
              face_labels: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Both phases on one mixed minibatch (Sec. 2.2.3): voice loss + face loss, the classifiers run once.

        voices (Bv, 64, T), faces (Bf, 3, S, S); labels (Bv,) / (Bf,). Equal to ``voice + face`` phase losses;
        the heads see the concatenated (Bv + Bf, d) embeddings in one call (DDP-friendly), and each embedding
        network still gets gradients only from its own modality's rows.
        """
        ev = self.nets["voice"](voices)                 # (Bv, d)
        ef = self.nets["face"](faces)                   # (Bf, d)
        logits = self.heads(torch.cat([ev, ef]))        # {C: (Bv + Bf, n_C)}
        nv = ev.shape[0]
        total = ev.new_zeros(())
        logs: dict[str, float] = {}
        for phase, rows, labels in (("voice", slice(0, nv), voice_labels), ("face", slice(nv, None), face_labels)):
            part = ev.new_zeros(())
            for name, w in self.weights.items():
                y = labels[name]
                lg = logits[name][rows]
                ce = F.cross_entropy(lg, y, ignore_index=-1)
                part = part + w * ce
                ok = y >= 0
                logs[f"{phase}/loss_{name}"] = float(ce.detach())
                logs[f"{phase}/acc_{name}"] = float((lg.argmax(1)[ok] == y[ok]).float().mean()) if ok.any() \
                    else float("nan")
            logs[f"{phase}/loss"] = float(part.detach())
            total = total + part
        return total, logs
