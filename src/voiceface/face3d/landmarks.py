"""Landmark sets used by the 3D face stack.

Two sets of vertex landmarks are carried by every :class:`~voiceface.face3d.model.MorphableModel`:

* ``landmarks68``: the 68 iBUG / 300-W points (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67).
* ``am_landmarks``: the 65 points of the thesis's Fig. 5.2, over which the anthropometric measurements (AMs) of
  Table 5.1 are defined. The figure itself is not reproduced in the text we work from, so the numbering below is
  reconstructed from how Table 5.1 uses the points (which pairs are widths, which are symmetric about the midline,
  which form angle chains); each group is listed with its anatomical reading:

  ====== ================================================================================================
  1-10   eyebrows: 1-5 subject's right brow from outer to inner end, 6-10 left brow from inner to outer
  11-18  right eye: 11 exocanthion, 12-14 upper lid (13 palpebrale superius), 15 endocanthion, 16-18 lower
         lid (17 palpebrale inferius)
  19-26  left eye: 19 endocanthion, 20-22 upper lid (21 ps), 23 exocanthion, 24-26 lower lid (25 pi)
  27-31  nasal midline: 27 nasion, 28 sellion, 29-30 dorsum, 31 pronasale (tip)
  32-38  lower nose: 32 / 38 alare, 33 / 37 subalare, 34 / 36 nostril sill, 35 subnasale
  39-50  outer lip contour: 39 right cheilion, 40-41 upper lip (41 crista philtri), 42 labrale superius,
         43-44, 45 left cheilion, 46-47, 48 labrale inferius, 49-50
  51-54  forehead midline: 51 glabella, 52-53 mid forehead, 54 trichion (top of the face outline)
  55-65  face outline from the right temple down the jaw (60 menton) and up to the left temple
  ====== ================================================================================================

Numbers in the thesis are 1-based; arrays here are 0-based (landmark ``n`` is row ``n - 1``). "Right" means the
subject's right, which is image left (negative x in model space: x to the viewer's right, y up, z to the viewer).
"""
from __future__ import annotations

import numpy as np

NUM_AM_LANDMARKS = 65
NUM_IBUG = 68

AM_LANDMARK_GROUPS: dict[str, tuple[int, int]] = {   # 1-based inclusive ranges
    "brow": (1, 10),
    "eye": (11, 26),
    "nose": (27, 38),
    "mouth": (39, 50),
    "forehead": (51, 54),
    "outline": (55, 65),
}

# Mirror partner of each AM landmark (1-based); midline points map to themselves.
_AM_MIRROR_PAIRS = [
    (1, 10), (2, 9), (3, 8), (4, 7), (5, 6),
    (11, 23), (12, 22), (13, 21), (14, 20), (15, 19), (16, 26), (17, 25), (18, 24),
    (32, 38), (33, 37), (34, 36),
    (39, 45), (40, 44), (41, 43), (46, 50), (47, 49),
    (55, 65), (56, 64), (57, 63), (58, 62), (59, 61),
]
AM_MIDLINE = (27, 28, 29, 30, 31, 35, 42, 48, 51, 52, 53, 54, 60)

_IBUG_MIRROR_PAIRS = (
    [(i, 16 - i) for i in range(8)] + [(17 + i, 26 - i) for i in range(5)]
    + [(31, 35), (32, 34), (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
    + [(48, 54), (49, 53), (50, 52), (59, 55), (58, 56), (60, 64), (61, 63), (67, 65)])
IBUG_MIDLINE = (8, 27, 28, 29, 30, 33, 51, 57, 62, 66)


def _mirror_table(n: int, pairs, one_based: bool) -> np.ndarray:
    m = np.arange(n)
    off = 1 if one_based else 0
    for a, b in pairs:
        m[a - off], m[b - off] = b - off, a - off
    return m


AM_MIRROR = _mirror_table(NUM_AM_LANDMARKS, _AM_MIRROR_PAIRS, True)     # (65,) 0-based partner index
IBUG_MIRROR = _mirror_table(NUM_IBUG, _IBUG_MIRROR_PAIRS, False)          # (68,) 0-based partner index


def am_group(number: int) -> str:
    """Face region ('brow', 'eye', 'nose', 'mouth', 'forehead', 'outline') of 1-based AM landmark ``number``."""
    for name, (lo, hi) in AM_LANDMARK_GROUPS.items():
        if lo <= number <= hi:
            return name
    raise ValueError(f"AM landmark numbers run 1-{NUM_AM_LANDMARKS}, got {number}")


def gather(vertices, index):
    """Landmark positions: vertices (B, V, 3) or (V, 3), index (L,) -> (B, L, 3) or (L, 3) (numpy or torch)."""
    return vertices[..., index, :]
