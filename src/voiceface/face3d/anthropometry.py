"""Anthropometric measurements (AMs) of Table 5.1 over the 65 landmarks of Fig. 5.2 (see ``landmarks``).

Three kinds, named as in the thesis (landmark numbers are 1-based):

* distance ``"11-15"``: Euclidean distance between landmarks 11 and 15, in model units (mm for the built-in model);
* proportion ``"32-38 / 28-31"``: ratio of two distances (scale invariant);
* angle ``"57-58-59"``: the angle at the middle landmark between the arms to the outer two, in degrees.

Table 5.1 lists 96 entries, but two distances appear twice ("49-47" and "42-48"); they are kept once, so there are
94 distinct AMs: 48 distances, 28 proportions and 18 angles, in the table's reading order within each kind.
Every AM is invariant to rigid motion; proportions and angles are also invariant to uniform scaling.
``measure`` is batched and differentiable (angles use ``atan2(|u x v|, u . v)``, whose gradient stays finite).
"""
from __future__ import annotations

import numpy as np
import torch

from .landmarks import NUM_AM_LANDMARKS, am_group

# Table 5.1, reading order (row by row) within each kind.
_DISTANCES = """
11-15 19-23 15-19 11-23 5-6 1-10 3-8 59-61 58-62 57-63 56-64 55-65 32-38 33-37 34-36
49-47 41-43 55-54 54-65 39-45 49-47 40-44 42-48 13-17 21-25 60-28 60-31 60-35 60-51 60-52
60-54 28-31 27-51 31-35 31-52 31-53 31-54 35-51 42-48 52-53 53-54 51-54 55-56 56-57 57-58
58-59 61-62 62-63 63-64 64-65
"""
_PROPORTIONS = """
32-38/28-31 33-37/28-31 58-62/28-31 57-63/28-31 56-64/28-31 55-65/28-31 39-45/28-31 32-38/60-54 33-37/60-54
58-62/60-54 57-63/60-54 56-64/60-54 55-65/60-54 39-45/60-54 59-61/58-62 58-62/57-63 57-63/56-64 56-64/55-65
58-62/32-38 57-63/32-38 56-64/32-38 59-61/32-38 55-65/32-38 39-45/32-38 60-54/28-31 52-53/53-54 51-52/51-54
28-31/28-54
"""
_ANGLES = """
57-58-59 56-57-58 55-56-57 54-55-56 65-54-55 64-65-54 63-64-65 62-63-64 61-62-63 32-30-38
32-31-38 28-31-35 52-53-54 28-31-32 38-31-28 38-51-32 64-54-56 30-31-35
"""


def _unique(tokens: list[str]) -> list[str]:
    seen, out = set(), []
    for t in tokens:
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def _pair(tok: str) -> tuple[int, int]:
    a, b = tok.split("-")
    return int(a), int(b)


_D = _unique(_DISTANCES.split())
_P = _unique(_PROPORTIONS.split())
_A = _unique(_ANGLES.split())

AM_NAMES: list[str] = _D + [p.replace("/", " / ") for p in _P] + _A
AM_KINDS: list[str] = ["distance"] * len(_D) + ["proportion"] * len(_P) + ["angle"] * len(_A)
AM_LANDMARKS: list[tuple[int, ...]] = (
    [_pair(t) for t in _D]
    + [_pair(p.split("/")[0]) + _pair(p.split("/")[1]) for p in _P]
    + [tuple(int(x) for x in t.split("-")) for t in _A])
"""1-based landmark numbers each AM uses: (a, b), (a, b, c, d) for (a-b)/(c-d), or (a, vertex, c) for angles."""


def _region(numbers) -> str:
    groups = {am_group(n) for n in numbers}
    return groups.pop() if len(groups) == 1 else "face"


AM_REGIONS: list[str] = [
    _region(lm[:2]) if kind == "proportion" else _region(lm) for lm, kind in zip(AM_LANDMARKS, AM_KINDS)]
"""Face region of each AM for plots: the region shared by all its landmarks (for proportions: by the numerator's),
else 'face'. Regions: brow, eye, nose, mouth, forehead, outline, face."""

NUM_AMS = len(AM_NAMES)
assert NUM_AMS == 94 and all(1 <= n <= NUM_AM_LANDMARKS for lm in AM_LANDMARKS for n in lm)

_PAIR_LIST = _unique([f"{lm[i]}-{lm[i + 1]}" for lm, k in zip(AM_LANDMARKS, AM_KINDS) if k != "angle"
                      for i in range(0, len(lm), 2)])
_PAIR_INDEX = {p: i for i, p in enumerate(_PAIR_LIST)}
_PAIRS0 = np.array([_pair(p) for p in _PAIR_LIST], dtype=np.int64) - 1                      # (P, 2) 0-based
_DIST_COLS = np.array([_PAIR_INDEX[f"{a}-{b}"] for (a, b) in AM_LANDMARKS[:len(_D)]])        # (48,)
_PROP_NUM = np.array([_PAIR_INDEX[f"{lm[0]}-{lm[1]}"] for lm in AM_LANDMARKS[len(_D):len(_D) + len(_P)]])
_PROP_DEN = np.array([_PAIR_INDEX[f"{lm[2]}-{lm[3]}"] for lm in AM_LANDMARKS[len(_D):len(_D) + len(_P)]])
_ANG0 = np.array(AM_LANDMARKS[len(_D) + len(_P):], dtype=np.int64) - 1                     # (18, 3) 0-based


def am_index(names) -> np.ndarray:
    """Column indices of the AMs called ``names`` (e.g. ``["32-38", "28-31-35"]``; spaces around '/' optional)."""
    lookup = {n.replace(" ", ""): i for i, n in enumerate(AM_NAMES)}
    try:
        return np.array([lookup[str(n).replace(" ", "")] for n in names], dtype=np.int64)
    except KeyError as e:
        raise ValueError(f"unknown AM {e.args[0]!r}; names look like '11-15', '32-38 / 28-31', '57-58-59'") from None


def kind_mask(kind: str) -> np.ndarray:
    """Boolean (A,) mask of the AMs of one kind ('distance', 'proportion' or 'angle')."""
    return np.array([k == kind for k in AM_KINDS])


def measure(landmarks: torch.Tensor) -> torch.Tensor:
    """All AMs of Table 5.1: landmarks (B, 65, 3) (or (65, 3)) -> (B, 94) (or (94,)), columns in ``AM_NAMES`` order.

    Distances are in the landmarks' units, proportions are ratios, angles are in degrees. Differentiable.
    """
    lm = torch.as_tensor(landmarks)
    if lm.shape[-2:] != (NUM_AM_LANDMARKS, 3):
        raise ValueError(f"landmarks must be (..., {NUM_AM_LANDMARKS}, 3), got {tuple(lm.shape)}")
    dev = lm.device
    p = torch.as_tensor(_PAIRS0, device=dev)
    d = (lm[..., p[:, 0], :] - lm[..., p[:, 1], :]).norm(dim=-1)                                # (B, P)
    dist = d[..., torch.as_tensor(_DIST_COLS, device=dev)]
    prop = d[..., torch.as_tensor(_PROP_NUM, device=dev)] / d[..., torch.as_tensor(_PROP_DEN, device=dev)]
    a = torch.as_tensor(_ANG0, device=dev)
    u = lm[..., a[:, 0], :] - lm[..., a[:, 1], :]                                              # (B, 18, 3)
    v = lm[..., a[:, 2], :] - lm[..., a[:, 1], :]
    ang = torch.rad2deg(torch.atan2(torch.linalg.cross(u, v).norm(dim=-1), (u * v).sum(-1)))
    return torch.cat([dist, prop, ang], dim=-1)


def am_from_shape(model, shapes: torch.Tensor) -> torch.Tensor:
    """AMs of shapes (B, V, 3) (or (V, 3)) of ``model`` (anything with ``am_landmarks`` (65,)) -> (B, 94)."""
    idx = torch.as_tensor(model.am_landmarks, device=torch.as_tensor(shapes).device)
    if idx.numel() != NUM_AM_LANDMARKS:
        raise ValueError("this model has no AM landmark indices (load it with a landmark file)")
    return measure(torch.as_tensor(shapes)[..., idx, :])
