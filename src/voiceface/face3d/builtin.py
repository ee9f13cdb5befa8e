"""The built-in morphable model: a procedurally generated head driven by anthropometric controls (no download).

RESEARCH STAND-IN, NOT A SCAN-DERIVED MODEL. It exists so that every method runs without a licensed model file.
Its shapes are smooth analytic surfaces; its statistics come from textbook craniofacial norms, not from 3D scans.

How it is made (all deterministic, a few seconds, cached in ``$VOICEFACE_CACHE`` or ``~/.cache/voiceface``):

1. Template. A closed-around head surface on a (row, column) grid: each row is a horizontal superellipse
   cross-section (half width, front depth and back depth given as smooth profiles of the height y; a dome closes
   the top with one pole vertex, the neck is left open), columns run around the head and are denser at the front.
   A frontal relief (a sum of smooth bumps in z, faded out towards the sides) shapes the eye sockets, eyeballs and
   lids, brow ridges, the nose (dorsum, tip, alae, nostrils), lips with a stomion crease and philtrum, cheeks and chin.
   Per-vertex UVs are the grid parameters. Landmarks (68 iBUG, 65 AM of Fig. 5.2) are the grid vertices nearest to
   anatomical target positions given in the same parametrisation (mirror pairs are mirrored grid columns).
2. Controls. Each named control (``CONTROL_NAMES``, in mm) is a smooth, localised displacement field on the
   template, linear in the control value; distance controls are calibrated so that their defining landmark
   distance (e.g. nose width = al-al) changes by exactly 1 mm per mm. Shape = template + sum_c (c - c_template) D_c.
   24 residual controls (smooth bumps, SD 1 mm) add variation that no named measurement captures.
3. Population. Controls are drawn from sex-specific means and SDs (``control_stats``) of young adults, shifted with
   age, with a factor-model correlation (a shared size factor, a vertical and a horizontal factor, a lip factor).
   Distance means/SDs are rounded after Farkas, L.G. (1994) "Anthropometry of the Head and Face", 2nd ed., Raven
   Press (North-American Caucasian adults, 18-25 y); they are approximate, not a verbatim transcription. Relief
   amplitudes (brow ridge, chin, cheek, lip, dorsum), the age slopes and the correlations are plausible choices of
   ours, not published values.
4. Model. A PCA of 2000 sampled heads (computed exactly in control space, since shapes are linear in the controls)
   gives the identity basis; named expression fields (``EXPRESSION_NAMES``, one coefficient each, not mixed by a
   PCA; one SD of ``jaw_open`` rotates the jaw by about 0.1 rad, of ``smile`` lifts the mouth corners by about 3 mm)
   give the expression basis; an albedo mean with eyes, lips, brows and hair and a few colour directions
   (``ALBEDO_NAMES``: skin tone, redness, ...) give the albedo model.

For the simulated world: draw people with :func:`sample_controls` (ground truth in named, interpretable units),
turn them into vertices with :func:`controls_to_shape` or into the model's identity coefficients with
:func:`controls_to_coeffs` (exact: the identity basis spans the control fields).

Units: millimetres; x to the viewer's right (subject's left), y up, z towards the viewer; the face is centred near
the origin.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.interpolate import PchipInterpolator

from .landmarks import AM_MIRROR, IBUG_MIRROR
from .model import MorphableModel

BUILDER_VERSION = 1
N_ROWS, N_COLS = 88, 101          # grid rows (bottom to top) and columns (theta -pi..pi, the seam duplicated)
N_POPULATION = 2000               # heads sampled for the PCA
POPULATION_SEED = 20221          # fixed: the built-in model is the same everywhere

# --------------------------------------------------------------------------------------------------------------
# population statistics (see module doc for sources)

# name: (unit, male mean, male sd, female mean, female sd, change per decade of age after 25)
_CONTROL_STATS: dict[str, tuple[str, float, float, float, float, float]] = {
    "head_width":             ("mm", 151.1, 5.8, 144.0, 5.3, 0.0),     # eu-eu
    "head_length":            ("mm", 197.0, 7.2, 187.0, 6.6, 0.0),     # g-op
    "face_width":             ("mm", 137.0, 5.0, 130.0, 4.6, 0.3),     # zy-zy
    "mandible_width":         ("mm", 99.0, 6.0, 92.0, 5.5, 0.5),       # go-go
    "forehead_height":        ("mm", 62.0, 7.0, 60.0, 6.5, 0.8),       # tr-n
    "face_height":            ("mm", 121.3, 6.5, 112.0, 5.5, 0.5),     # n-gn
    "nose_height":            ("mm", 54.8, 3.3, 50.6, 3.1, 0.8),       # n-sn
    "nose_width":             ("mm", 34.9, 2.1, 31.4, 2.0, 0.6),       # al-al
    "nose_protrusion":        ("mm", 19.8, 2.0, 19.0, 1.8, 0.3),       # sn-prn
    "mouth_width":            ("mm", 54.5, 3.5, 50.2, 3.2, 0.4),       # ch-ch
    "upper_lip_height":       ("mm", 22.3, 2.4, 20.1, 2.0, 0.5),       # sn-sto
    "upper_vermilion_height": ("mm", 8.9, 1.6, 8.4, 1.5, -0.5),        # ls-sto
    "lower_vermilion_height": ("mm", 9.6, 1.6, 9.1, 1.5, -0.5),        # sto-li
    "eye_fissure_width":      ("mm", 31.3, 1.3, 30.7, 1.2, 0.0),       # ex-en
    "eye_fissure_height":     ("mm", 10.8, 1.1, 10.9, 1.1, -0.3),      # ps-pi
    "intercanthal_width":     ("mm", 33.3, 2.7, 31.8, 2.3, 0.0),       # en-en
    "brow_ridge":             ("mm", 4.5, 1.2, 2.5, 1.0, 0.0),         # relief amplitudes from here on
    "chin_protrusion":        ("mm", 4.5, 1.5, 3.5, 1.3, 0.0),
    "cheek_prominence":       ("mm", 5.0, 1.5, 5.5, 1.5, -0.3),
    "lip_protrusion":         ("mm", 3.5, 1.2, 3.5, 1.2, -0.2),
    "nasal_dorsum":           ("mm", 4.5, 1.5, 3.8, 1.3, 0.0),
}
N_RESIDUAL = 24
RESIDUAL_SD = 1.0
NAMED_CONTROLS = list(_CONTROL_STATS)
CONTROL_NAMES: list[str] = NAMED_CONTROLS + [f"residual_{i:02d}" for i in range(N_RESIDUAL)]
CONTROL_UNITS: list[str] = [_CONTROL_STATS[n][0] for n in NAMED_CONTROLS] + ["mm"] * N_RESIDUAL

# factor loadings (correlation structure): size, vertical, horizontal, lips
_LOADINGS = {
    "head_width": (0.45, 0.0, 0.35, 0.0), "head_length": (0.45, 0.1, 0.0, 0.0),
    "face_width": (0.45, 0.0, 0.5, 0.0), "mandible_width": (0.4, 0.0, 0.45, 0.0),
    "forehead_height": (0.3, 0.25, 0.0, 0.0), "face_height": (0.45, 0.5, 0.0, 0.0),
    "nose_height": (0.4, 0.4, 0.0, 0.0), "nose_width": (0.35, 0.0, 0.25, 0.0),
    "nose_protrusion": (0.3, 0.15, 0.0, 0.0), "mouth_width": (0.35, 0.0, 0.25, 0.1),
    "upper_lip_height": (0.3, 0.3, 0.0, 0.0), "upper_vermilion_height": (0.1, 0.0, 0.0, 0.6),
    "lower_vermilion_height": (0.1, 0.0, 0.0, 0.6), "eye_fissure_width": (0.35, 0.0, 0.2, 0.0),
    "eye_fissure_height": (0.1, 0.0, 0.0, 0.0), "intercanthal_width": (0.3, 0.0, 0.3, 0.0),
    "brow_ridge": (0.2, 0.0, 0.0, 0.0), "chin_protrusion": (0.15, 0.1, 0.0, 0.0),
    "cheek_prominence": (0.0, 0.0, 0.2, 0.0), "lip_protrusion": (0.0, 0.0, 0.0, 0.4),
    "nasal_dorsum": (0.2, 0.0, 0.0, 0.0),
}

EXPRESSION_NAMES = ["jaw_open", "smile", "lip_pucker", "brow_raise", "brow_furrow", "jaw_sideways", "cheek_puff"]
ALBEDO_NAMES = ["skin_lightness", "redness", "yellowness", "lip_colour", "cheek_redness", "hair_darkness",
                "iris_colour"]


def control_stats(gender, age) -> tuple[np.ndarray, np.ndarray]:
    """Means and SDs of all controls for each person: gender (n,) of 'm'/'f' (or a single str), age (n,) years
    (or a scalar) -> (means (n, C), sds (n, C)). Named controls use the sex-specific young-adult norms shifted by
    the per-decade age slope after 25; residual controls have mean 0 and SD ``RESIDUAL_SD``."""
    g = np.atleast_1d(np.asarray(gender, dtype=str))
    a = np.atleast_1d(np.asarray(age, dtype=np.float64))
    n = max(g.size, a.size)
    g, a = np.broadcast_to(g, (n,)), np.broadcast_to(a, (n,))
    bad = ~np.isin(np.char.lower(g), ["m", "f"])
    if bad.any():
        raise ValueError(f"gender must be 'm' or 'f', got {g[bad][0]!r}")
    male = np.char.lower(g) == "m"
    st = np.array([_CONTROL_STATS[k][1:] for k in NAMED_CONTROLS])          # (Cn, 5)
    mean = np.where(male[:, None], st[:, 0], st[:, 2]) + np.clip(a[:, None] - 25.0, 0, None) / 10.0 * st[:, 4]
    sd = np.where(male[:, None], st[:, 1], st[:, 3])
    mean = np.concatenate([mean, np.zeros((n, N_RESIDUAL))], axis=1)
    sd = np.concatenate([sd, np.full((n, N_RESIDUAL), RESIDUAL_SD)], axis=1)
    return mean, sd


def control_correlation() -> np.ndarray:
    """(C, C) correlation of the controls: a factor model R = L L^T + diag(1 - |L|^2) (residuals independent)."""
    lam = np.zeros((len(CONTROL_NAMES), 4))
    for i, name in enumerate(NAMED_CONTROLS):
        lam[i] = _LOADINGS[name]
    r = lam @ lam.T
    np.fill_diagonal(r, 1.0)
    return r


def sample_controls(n: int, gender, age, rng: np.random.Generator | int) -> np.ndarray:
    """Draw ``n`` people's controls (n, C) (``CONTROL_NAMES`` order, mm) for gender ('m'/'f', scalar or (n,))
    and age (years, scalar or (n,)) with the correlation of :func:`control_correlation`."""
    rng = np.random.default_rng(rng)
    g = np.broadcast_to(np.asarray(gender, dtype=str), (n,))
    a = np.broadcast_to(np.asarray(age, dtype=np.float64), (n,))
    mean, sd = control_stats(g, a)
    chol = np.linalg.cholesky(control_correlation())
    z = rng.standard_normal((n, len(CONTROL_NAMES))) @ chol.T
    return mean + sd * z


# --------------------------------------------------------------------------------------------------------------
# smooth building blocks

def _gauss(x, y, cx, cy, sx, sy):
    return np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))


def _smoothstep(t):
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _ramp(v, lo, hi):
    """Smooth 0 -> 1 as v goes lo -> hi (C1, linear-ish in between)."""
    return _smoothstep((v - lo) / (hi - lo))


def _lin(v, lo, hi):
    """Piecewise-linear 0 -> 1 as v goes lo -> hi (clamped)."""
    return np.clip((v - lo) / (hi - lo), 0.0, 1.0)


def _pchip(points):
    """Monotone cubic through (x, y) points, held constant outside their range."""
    p = np.asarray(sorted(points), dtype=np.float64)
    f = PchipInterpolator(p[:, 0], p[:, 1])
    lo, hi = p[0, 0], p[-1, 0]
    return lambda v: f(np.clip(v, lo, hi))


# design-frame anatomy of the template (mm; moved to the face-centred frame at the end)
Y_N, Y_SE, Y_SN, Y_STO, Y_GN, Y_TR, Y_EYE, Y_BROW = 50.0, 42.0, -2.0, -23.0, -70.0, 110.0, 40.5, 56.0
Y_BOT, Y_DOME, Y_TOP = -100.0, 100.0, 162.0
EN_X, EX_X, AL_X, CH_X = 16.5, 47.5, 17.5, 26.0
H_UP, H_LO = 9.0, 9.0                       # vermilion heights
EYE_CX, EYE_HALF_W, EYE_HALF_H = 0.5 * (EN_X + EX_X), 0.5 * (EX_X - EN_X), 5.2

_FRONT = _pchip([(-100, 40), (-88, 47), (-80, 62), (-74, 77), (-70, 85), (-62, 93), (-55, 95), (-45, 91),
                 (-32, 95), (-23, 96), (-14, 97), (-2, 96), (10, 95), (25, 93), (42, 91), (50, 93), (58, 97),
                 (70, 96), (90, 92), (110, 88), (162, 80)])
_WIDTH = _pchip([(-100, 47), (-88, 45), (-78, 40), (-70, 26), (-62, 36), (-52, 45), (-40, 50), (-20, 57),
                 (0, 64), (20, 69), (40, 72), (60, 75), (100, 76), (162, 76)])
_BACK = _pchip([(-100, 45), (-70, 50), (-40, 62), (0, 85), (40, 98), (80, 100), (100, 98), (162, 95)])
_EXPO = _pchip([(-100, 2.0), (-70, 2.0), (-40, 2.3), (0, 2.5), (60, 2.5), (100, 2.2), (162, 2.0)])
_DORSUM = _pchip([(60, 0), (50, 2.5), (42, 4.5), (30, 9), (18, 16), (10, 22.5), (6, 25.5), (3, 25), (0, 18),
                  (-2, 6), (-5, 0)])
_NOSE_HALF_W = _pchip([(60, 9), (45, 8), (30, 9), (15, 11), (8, 13), (3, 14), (-5, 12)])


def _dome(y):
    return np.sqrt(np.clip(1.0 - (np.clip(y - Y_DOME, 0, None) / (Y_TOP - Y_DOME)) ** 2, 0.0, 1.0))


def _base(theta, y):
    """Base head surface (no relief): theta (...), y (...) -> x, z (...)."""
    n = _EXPO(y)
    p = 2.0 / n
    d = _dome(y)
    s, c = np.sin(theta), np.cos(theta)
    x = _WIDTH(y) * d * np.sign(s) * np.abs(s) ** p
    depth = np.where(c >= 0, _FRONT(y), _BACK(y)) * d
    z = np.sign(c) * depth * np.abs(c) ** p
    return x, z


def _front_weight(theta):
    return _ramp(np.cos(theta), 0.1, 0.5)


def _lip_masks(x, y):
    """Soft masks (...) of the upper and lower vermilion and of the mouth's extent in x."""
    u = np.clip(np.abs(x) / CH_X, 0.0, 1.0)
    prof = np.sqrt(np.clip(1.0 - u ** 2, 0.0, 1.0)) ** 0.7
    bow = 1.0 - 0.12 * np.exp(-0.5 * (x / 3.0) ** 2)
    top = Y_STO + H_UP * prof * bow
    bot = Y_STO - H_LO * prof
    edge = 0.8
    upper = _ramp(y, Y_STO - 0.3, Y_STO + 0.3) * (1.0 - _ramp(y, top - edge, top + edge))
    lower = (1.0 - _ramp(y, Y_STO - 0.3, Y_STO + 0.3)) * _ramp(y, bot - edge, bot + edge)
    inside = 1.0 - _ramp(np.abs(x), CH_X - 1.0, CH_X + 1.5)
    return upper * inside, lower * inside, inside


def _eye_lens(x, y):
    """Soft almond mask of the palpebral fissure for both eyes (...)."""
    dx = (np.abs(x) - EYE_CX) / EYE_HALF_W
    prof = np.clip(1.0 - dx ** 2, 0.0, 1.0) ** 0.8
    dy = y - Y_EYE
    up = EYE_HALF_H * prof
    lo = 0.85 * EYE_HALF_H * prof
    return (1.0 - _ramp(dy, up - 0.8, up + 0.8)) * _ramp(dy, -lo - 0.8, -lo + 0.8) * (prof > 0)


# relief components, each (x, y) -> dz for unit amplitude (or the template amplitude where noted)
def _relief_nose(x, y):
    """Nose body (dorsum profile times a cross-section bump) and alae, in mm."""
    w = np.clip(_NOSE_HALF_W(y), 1.0, None)
    u = np.clip(x / w, -1.0, 1.0)
    return _DORSUM(y) * (1.0 - u ** 2) ** 2.2 * (np.abs(x) < w) + 7.0 * _gauss(np.abs(x), y, 13.0, 2.0, 4.5, 3.8)


def _relief_fixed(x, y):
    """Relief that does not vary between people (eyes, nose, lips, creases), in mm."""
    ax = np.abs(x)
    dz = -9.0 * _gauss(ax, y, EYE_CX, Y_EYE + 0.5, 15.0, 10.0)                     # eye sockets
    dz += 8.0 * _gauss(ax, y, EYE_CX, Y_EYE, 12.0, 7.5)                             # eyeball + lids
    dz -= 1.6 * _eye_lens(x, y)                                                     # lid margins stand proud
    dz += _relief_nose(x, y)                                                        # nose body and alae
    dz -= 2.5 * _gauss(ax, y, 6.0, -0.5, 2.5, 1.6)                                  # nostrils
    dz -= 1.0 * _gauss(ax, y, 17.0, 4.0, 1.5, 5.0)                                  # alar crease
    up, lo, inside = _lip_masks(x, y)
    dz += 2.2 * up + 2.6 * lo                                                       # vermilion
    dz += 4.0 * _gauss(x, y, 0.0, -18.0, 24.0, 18.0)                                # muzzle
    dz -= 1.4 * np.exp(-0.5 * ((y - Y_STO) / 0.7) ** 2) * inside                    # stomion crease
    dz -= 0.8 * _gauss(x, y, 0.0, -8.5, 2.5, 4.0)                                   # philtrum
    dz += 2.0 * _gauss(x, y, 0.0, 57.0, 9.0, 6.0)                                   # glabella
    return dz


def _relief_brow(x, y):
    return _gauss(np.abs(x), y, 30.0, Y_BROW, 17.0, 6.0)


def _relief_chin(x, y):
    return _gauss(x, y, 0.0, -57.0, 12.0, 9.0)


def _relief_cheek(x, y):
    return _gauss(np.abs(x), y, 38.0, 12.0, 16.0, 14.0)


def _relief_lip(x, y):
    up, lo, _ = _lip_masks(x, y)
    return 0.3 * _gauss(x, y, 0.0, Y_STO, 26.0, 11.0) + 0.7 * (up + 0.8 * lo)


def _relief_dorsum(x, y):
    w = np.clip(_NOSE_HALF_W(y), 1.0, None)
    u = np.clip(x / w, -1.0, 1.0)
    return (1.0 - u ** 2) ** 2 * (np.abs(x) < w) * _ramp(y, 5.0, 20.0) * (1.0 - _ramp(y, 48.0, 60.0))


_RELIEF_CONTROLS = {"brow_ridge": _relief_brow, "chin_protrusion": _relief_chin, "cheek_prominence": _relief_cheek,
                    "lip_protrusion": _relief_lip, "nasal_dorsum": _relief_dorsum}


def _relief_template_amplitudes() -> dict[str, float]:
    """Template relief amplitudes: the mean of the male and female means."""
    return {k: 0.5 * (_CONTROL_STATS[k][1] + _CONTROL_STATS[k][3]) for k in _RELIEF_CONTROLS}


# --------------------------------------------------------------------------------------------------------------
# grid

def _column_angles() -> np.ndarray:
    u = np.linspace(-1.0, 1.0, N_COLS)
    u = 0.5 * (u - u[::-1])                       # exactly antisymmetric
    alpha = 0.42
    return np.pi * u * (alpha + (1.0 - alpha) * u ** 2)


def _row_heights() -> np.ndarray:
    """Row heights y (N_ROWS,) spaced by arclength along the midline profile, denser over the face."""
    y = np.linspace(Y_BOT, Y_TOP - 0.3, 6000)
    z = _FRONT(y) * _dome(y) + _relief_fixed(np.zeros_like(y), y)
    seg = np.hypot(np.diff(y), np.diff(z))
    ym = 0.5 * (y[1:] + y[:-1])
    density = 0.35 + 0.65 * _ramp(ym, -95, -75) * (1.0 - _ramp(ym, 65, 85))
    density += 1.0 * _gauss(0.0, ym, 0.0, Y_EYE, 1.0, 7.0) + 1.4 * _gauss(0.0, ym, 0.0, Y_STO, 1.0, 8.0)
    s = np.concatenate([[0.0], np.cumsum(seg * density)])
    rows = np.interp(np.linspace(0.0, s[-1], N_ROWS), s, y)
    # put the stomion crease exactly half-way between two rows (the lips part there when the jaw opens)
    r = int(np.searchsorted(rows, Y_STO))
    delta = Y_STO - 0.5 * (rows[r - 1] + rows[r])
    return rows + delta * np.exp(-0.5 * ((rows - Y_STO) / 6.0) ** 2)


@dataclass
class _Template:
    vertices: np.ndarray      # (V, 3) design frame
    theta: np.ndarray         # (V,)
    base_xy: np.ndarray       # (V, 2) base surface x, y (relief coordinates)
    front: np.ndarray         # (V,) frontal weight
    triangles: np.ndarray     # (F, 3)
    uv: np.ndarray            # (V, 2)
    rows_y: np.ndarray        # (R,)
    cols_theta: np.ndarray    # (C,)


def _build_template() -> _Template:
    th = _column_angles()
    ys = _row_heights()
    T, Y = np.meshgrid(th, ys)                                   # (R, C)
    X, Z = _base(T, Y)
    wf = _front_weight(T)
    relief = _relief_fixed(X, Y)
    for name, amp in _relief_template_amplitudes().items():
        relief = relief + amp * _RELIEF_CONTROLS[name](X, Y)
    Z = Z + wf * relief
    verts = np.stack([X, Y, Z], axis=-1).reshape(-1, 3)
    pole = np.array([[0.0, Y_TOP, 0.0]])
    verts = np.concatenate([verts, pole], axis=0)
    R, C = N_ROWS, N_COLS
    idx = np.arange(R * C).reshape(R, C)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, :-1], idx[1:, 1:]
    # outward orientation: rows go up, columns go towards +x at the front
    quads = np.concatenate([np.stack([a, b, d], -1).reshape(-1, 3), np.stack([a, d, c], -1).reshape(-1, 3)])
    top = idx[-1]
    fan = np.stack([top[:-1], top[1:], np.full(C - 1, R * C)], -1)
    tris = np.concatenate([quads, fan]).astype(np.int64)
    su = (np.arange(C) / (C - 1.0))
    sv = (np.arange(R) / (R - 1.0)) * 0.98
    U, Vv = np.meshgrid(su, sv)
    uv = np.concatenate([np.stack([U, Vv], -1).reshape(-1, 2), [[0.5, 1.0]]]).astype(np.float32)
    theta = np.concatenate([T.reshape(-1), [0.0]])
    base_xy = np.concatenate([np.stack([X, Y], -1).reshape(-1, 2), [[0.0, Y_TOP]]])
    front = np.concatenate([wf.reshape(-1), [0.0]])
    return _Template(verts, theta, base_xy, front, tris, uv, ys, th)


# --------------------------------------------------------------------------------------------------------------
# landmarks from the parametrisation

def _grid_index(tpl: _Template, y, x=None, theta=None) -> np.ndarray:
    """Vertex indices (L,) of the grid vertices nearest to targets: the row nearest to y (L,), then in that row the
    column nearest to base x (L,) on the front half, or nearest to angle theta (L,)."""
    y = np.asarray(y, dtype=np.float64)
    rows = np.abs(tpl.rows_y[None, :] - y[:, None]).argmin(axis=1)                      # (L,)
    if theta is not None:
        cols = np.abs(tpl.cols_theta[None, :] - np.asarray(theta, float)[:, None]).argmin(axis=1)
    else:
        bx = tpl.base_xy[:-1, 0].reshape(N_ROWS, N_COLS)[rows]                          # (L, C)
        front = np.abs(tpl.cols_theta) <= np.pi / 2
        dist = np.where(front[None, :], np.abs(bx - np.asarray(x, float)[:, None]), np.inf)
        cols = dist.argmin(axis=1)
    return rows * N_COLS + cols


def _mirror_vertex(v: np.ndarray) -> np.ndarray:
    r, c = np.divmod(v, N_COLS)
    return r * N_COLS + (N_COLS - 1 - c)


def _outline_targets(alpha_deg):
    """Face-outline points for angles alpha (deg from the top, clockwise on the subject's right side):
    height on an ellipse around the face, column angle from the temple (58 deg) to the jaw line (74 deg)."""
    a = np.deg2rad(np.asarray(alpha_deg, dtype=np.float64))
    y = 20.0 + 90.0 * np.cos(a)
    th = -np.deg2rad(58.0 + 16.0 * _lin(np.rad2deg(a), 30.0, 120.0))
    return y, th


def _am_landmarks(tpl: _Template) -> np.ndarray:
    """The 65 AM landmarks (Fig. 5.2 numbering, see ``landmarks``) as vertex indices (65,)."""
    t = {}   # 1-based number -> (x, y) on the subject's right / midline
    brow = [(-52, 51), (-42, 56.5), (-31, 58.5), (-21, 58), (-13, 55)]
    for i, p in enumerate(brow):
        t[1 + i] = p
    cx, w, h = -EYE_CX, EYE_HALF_W, EYE_HALF_H
    eye = [(-EX_X, Y_EYE), (cx - 0.6 * w, Y_EYE + 0.8 * h), (cx, Y_EYE + h), (cx + 0.6 * w, Y_EYE + 0.8 * h),
           (-EN_X, Y_EYE), (cx + 0.6 * w, Y_EYE - 0.7 * h), (cx, Y_EYE - 0.85 * h), (cx - 0.6 * w, Y_EYE - 0.7 * h)]
    for i, p in enumerate(eye):
        t[11 + i] = p
    for i, yy in enumerate([Y_N, Y_SE, 30.0, 17.0, 5.0]):
        t[27 + i] = (0.0, yy)
    t.update({32: (-AL_X, 3.0), 33: (-13.0, -0.5), 34: (-6.0, -1.5), 35: (0.0, Y_SN)})
    lip_top, lip_bot = Y_STO + H_UP, Y_STO - H_LO
    t.update({39: (-CH_X, Y_STO), 40: (-17.0, Y_STO + 0.62 * H_UP), 41: (-5.5, lip_top + 0.3),
              42: (0.0, Y_STO + 0.88 * H_UP - 0.2),
              46: (17.0, Y_STO - 0.65 * H_LO), 47: (8.0, Y_STO - 0.93 * H_LO), 48: (0.0, lip_bot)})
    t.update({51: (0.0, 57.0), 52: (0.0, 75.0), 53: (0.0, 92.0), 54: (0.0, Y_TR)})
    nums_xy = sorted(t)
    idx = np.full(65, -1, dtype=np.int64)
    xy = np.array([t[n] for n in nums_xy], dtype=np.float64)
    idx[np.array(nums_xy) - 1] = _grid_index(tpl, xy[:, 1], x=xy[:, 0])
    ya, tha = _outline_targets([30, 60, 90, 120, 150])          # 55-59, subject's right side
    idx[54:59] = _grid_index(tpl, ya, theta=tha)
    idx[59] = _grid_index(tpl, [Y_GN], x=[0.0])[0]               # 60 menton
    # remaining left-side points are mirrors of their right partners
    missing = np.where(idx < 0)[0]
    idx[missing] = _mirror_vertex(idx[AM_MIRROR[missing]])
    assert (idx >= 0).all()
    return idx


def _ibug_landmarks(tpl: _Template, am: np.ndarray) -> np.ndarray:
    """The 68 iBUG landmarks (68,), sharing vertices with the AM set where the points coincide."""
    idx = np.full(68, -1, dtype=np.int64)
    alpha = np.linspace(80.0, 180.0, 9)[:8]
    ya, tha = _outline_targets(alpha)
    idx[0:8] = _grid_index(tpl, ya, theta=tha)                  # jaw, subject's right
    idx[8] = am[59]                                              # menton
    idx[17:22] = am[0:5]                                         # right brow outer -> inner
    idx[27:31] = _grid_index(tpl, [Y_SE, 30.0, 17.0, 5.0], x=[0.0] * 4)
    idx[31:34] = _grid_index(tpl, [0.5, -1.0, Y_SN], x=[-9.0, -4.5, 0.0])
    idx[36:42] = am[[10, 11, 13, 14, 15, 17]]                    # ex, upper x2, en, lower x2 (inner, outer)
    idx[48:52] = am[[38, 39, 40, 41]]
    idx[57] = am[47]
    idx[58:60] = am[[48, 49]]
    # inner lip on the rows either side of the stomion crease
    r = np.abs(tpl.rows_y - Y_STO).argmin()
    above, below = (r + 1, r) if tpl.rows_y[r] < Y_STO else (r, r - 1)
    cols = np.abs(tpl.base_xy[:-1, 0].reshape(N_ROWS, N_COLS)[above][None, :]
                  - np.array([[-CH_X + 3.0], [-10.0], [0.0]])).argmin(axis=1)
    idx[60:63] = above * N_COLS + cols
    idx[66:68] = below * N_COLS + cols[[2, 1]]
    missing = np.where(idx < 0)[0]
    idx[missing] = _mirror_vertex(idx[IBUG_MIRROR[missing]])
    assert (idx >= 0).all()
    return idx


# --------------------------------------------------------------------------------------------------------------
# control fields

def _named_points(tpl: _Template, am: np.ndarray) -> dict[str, int]:
    p = {"en_r": am[14], "en_l": am[18], "ex_r": am[10], "ex_l": am[22], "ps_r": am[12], "pi_r": am[16],
         "al_r": am[31], "al_l": am[37], "prn": am[30], "sn": am[34], "n": am[26], "ch_r": am[38], "ch_l": am[44],
         "ls": am[41], "li": am[47], "gn": am[59], "tr": am[53]}
    r = np.abs(tpl.rows_y - Y_STO).argmin()
    p["sto"] = int(r * N_COLS + N_COLS // 2)
    eu = _grid_index(tpl, [75.0], theta=[-np.pi / 2])[0]
    zy = _grid_index(tpl, [22.0], theta=[-np.deg2rad(80.0)])[0]
    go = _grid_index(tpl, [-45.0], theta=[-np.deg2rad(85.0)])[0]
    p.update(eu_r=eu, eu_l=_mirror_vertex(eu), zy_r=zy, zy_l=_mirror_vertex(zy), go_r=go, go_l=_mirror_vertex(go),
             g=am[50], op=_grid_index(tpl, [80.0], theta=[np.pi])[0])
    return {k: int(v) for k, v in p.items()}


# control -> (measurement kind, point a, point b); kinds: x | y | z | d (euclidean)
_MEASURES = {
    "head_width": ("x", "eu_r", "eu_l"), "head_length": ("z", "op", "g"), "face_width": ("x", "zy_r", "zy_l"),
    "mandible_width": ("x", "go_r", "go_l"), "forehead_height": ("y", "n", "tr"), "face_height": ("y", "gn", "n"),
    "nose_height": ("y", "sn", "n"), "nose_width": ("x", "al_r", "al_l"), "nose_protrusion": ("d", "sn", "prn"),
    "mouth_width": ("x", "ch_r", "ch_l"), "upper_lip_height": ("y", "sto", "sn"),
    "upper_vermilion_height": ("y", "sto", "ls"), "lower_vermilion_height": ("y", "li", "sto"),
    "eye_fissure_width": ("x", "ex_r", "en_r"), "eye_fissure_height": ("y", "pi_r", "ps_r"),
    "intercanthal_width": ("x", "en_r", "en_l"),
}


def _measure(verts: np.ndarray, kind: str, a: int, b: int) -> np.ndarray:
    """verts (..., V, 3) -> (...) measurement of one control."""
    d = verts[..., b, :] - verts[..., a, :]
    if kind == "d":
        return np.linalg.norm(d, axis=-1)
    return np.abs(d[..., "xyz".index(kind)])


def _control_fields(tpl: _Template, pts: dict[str, int]) -> np.ndarray:
    """Unit displacement fields (C, V, 3) for all controls, distance controls calibrated to 1 mm / mm."""
    v = tpl.vertices
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    ax, sgn = np.abs(x), np.sign(x)
    wf = tpl.front
    P = {k: v[i] for k, i in pts.items()}
    y_sto, y_sn, y_n, y_gn = P["sto"][1], P["sn"][1], P["n"][1], P["gn"][1]
    f = {name: np.zeros_like(v) for name in CONTROL_NAMES}
    f["head_width"][:, 0] = 0.5 * sgn * _ramp(ax, 55.0, 72.0) * _ramp(y, 10.0, 50.0)
    f["head_length"][:, 2] = np.minimum(z, 0.0) / abs(P["op"][2])
    f["face_width"][:, 0] = 0.5 * sgn * _ramp(ax, 50.0, abs(P["zy_r"][0])) * _gauss(0, y, 0, P["zy_r"][1], 1, 22.0)
    f["mandible_width"][:, 0] = (0.5 * sgn * _ramp(ax, 28.0, abs(P["go_r"][0]))
                                 * _gauss(0, y, 0, P["go_r"][1], 1, 16.0) * (y < y_sn + 10))
    f["forehead_height"][:, 1] = _lin(y, y_n, P["tr"][1])
    lower = _lin(y_sto - y, 0.0, y_sto - y_gn)                    # 0 above the stomion, 1 below the menton
    f["face_height"][:, 1] = -lower
    f["nose_height"][:, 1] = -_lin(y_n - y, 0.0, y_n - y_sn) + lower
    f["upper_lip_height"][:, 1] = -_lin(y_sn - y, 0.0, y_sn - y_sto) + lower
    f["nose_width"][:, 0] = (0.5 * x / abs(P["al_r"][0]) * (1.0 - _ramp(ax, abs(P["al_r"][0]), abs(P["al_r"][0]) + 9))
                             * _gauss(0, y, 0, P["al_r"][1], 1, 9.0))
    nose = _relief_nose(tpl.base_xy[:, 0], tpl.base_xy[:, 1]) * wf
    f["nose_protrusion"][:, 2] = nose / max(nose[pts["prn"]], 1e-6)
    f["mouth_width"][:, 0] = (0.5 * x / abs(P["ch_r"][0]) * (1.0 - _ramp(ax, abs(P["ch_r"][0]), abs(P["ch_r"][0]) + 12))
                              * _gauss(0, y, 0, y_sto, 1, 9.0))
    mouth_x = 1.0 - _ramp(ax, abs(P["ch_r"][0]) - 2, abs(P["ch_r"][0]) + 10)
    y_ls, y_li = P["ls"][1], P["li"][1]
    tent_up = np.where(y <= y_ls, _lin(y, y_sto, y_ls), 1.0 - _lin(y, y_ls, y_sn))
    f["upper_vermilion_height"][:, 1] = tent_up * mouth_x
    tent_lo = np.where(y >= y_li, _lin(y_sto - y, 0.0, y_sto - y_li), 1.0 - _lin(y_li - y, 0.0, 12.0))
    f["lower_vermilion_height"][:, 1] = -tent_lo * mouth_x
    en_x, ex_x, ye = abs(P["en_r"][0]), abs(P["ex_r"][0]), P["en_r"][1]
    eye_y = _gauss(0, y, 0, ye, 1, 7.0)
    f["eye_fissure_width"][:, 0] = sgn * _lin(ax, en_x, ex_x) * (1.0 - _ramp(ax, ex_x, ex_x + 12.0)) * eye_y
    ycen, h = 0.5 * (P["ps_r"][1] + P["pi_r"][1]), 0.5 * (P["ps_r"][1] - P["pi_r"][1])
    eye_x = _ramp(ax, en_x - 4.0, en_x + 2.0) * (1.0 - _ramp(ax, ex_x - 2.0, ex_x + 4.0))
    f["eye_fissure_height"][:, 1] = (0.5 * np.clip((y - ycen) / h, -1.0, 1.0)
                                     * (1.0 - _ramp(np.abs(y - ycen), h, h + 8.0)) * eye_x)
    f["intercanthal_width"][:, 0] = (0.5 * sgn * _lin(ax, 0.0, en_x) * (1.0 - _ramp(ax, ex_x + 4.0, ex_x + 20.0))
                                     * _gauss(0, y, 0, ye, 1, 12.0))
    bx, by = tpl.base_xy[:, 0], tpl.base_xy[:, 1]
    for name, fn in _RELIEF_CONTROLS.items():
        f[name][:, 2] = wf * fn(bx, by)
    centres = [(cx, cy) for cy in (85.0, 55.0, 28.0, 0.0, -28.0, -55.0) for cx in (-42.0, -14.0, 14.0, 42.0)]
    for i, (cx, cy) in enumerate(centres):
        f[f"residual_{i:02d}"][:, 2] = wf * _gauss(bx, by, cx, cy, 16.0, 16.0)
    fields = np.stack([f[n] for n in CONTROL_NAMES])                                # (C, V, 3)
    for i, name in enumerate(CONTROL_NAMES):                                        # calibrate to 1 mm / mm
        if name in _MEASURES:
            kind, a, b = _MEASURES[name]
            eps = 0.5
            dm = (_measure(v + eps * fields[i], kind, pts[a], pts[b])
                  - _measure(v - eps * fields[i], kind, pts[a], pts[b])) / (2 * eps)
            if abs(dm) < 1e-3:
                raise RuntimeError(f"built-in model: control {name} does not move its measurement")
            fields[i] /= dm
    return fields


def _template_controls(tpl: _Template, pts: dict[str, int]) -> np.ndarray:
    """Control values (C,) of the template itself."""
    amps = _relief_template_amplitudes()
    out = np.zeros(len(CONTROL_NAMES))
    for i, name in enumerate(CONTROL_NAMES):
        if name in _MEASURES:
            kind, a, b = _MEASURES[name]
            out[i] = _measure(tpl.vertices, kind, pts[a], pts[b])
        elif name in amps:
            out[i] = amps[name]
    return out


# --------------------------------------------------------------------------------------------------------------
# expressions and albedo

def _expression_fields(tpl: _Template, pts: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Expression displacement fields (Ke, V, 3) for unit amplitude and their amplitude SDs (Ke,)."""
    v = tpl.vertices
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    ax, sgn = np.abs(x), np.sign(x)
    y_sto = v[pts["sto"], 1]
    ch = abs(v[pts["ch_r"], 0])
    mouth_x = 1.0 - _ramp(ax, ch, ch + 12.0)
    r = np.abs(tpl.rows_y - Y_STO).argmin()
    y_mid = 0.5 * (tpl.rows_y[r] + tpl.rows_y[r + 1 if tpl.rows_y[r] < Y_STO else r - 1])
    sharp = 1.0 - _ramp(y, y_mid - 0.05, y_mid + 0.05)
    soft = 1.0 - _ramp(y, y_sto - 25.0, y_sto + 15.0)
    jaw = (mouth_x * sharp + (1.0 - mouth_x) * soft) * _ramp(z, -10.0, 25.0) * (1.0 - _ramp(y_sto - y, 60.0, 85.0))
    e = {n: np.zeros_like(v) for n in EXPRESSION_NAMES}
    yp, zp, delta = 28.0, -5.0, 0.1
    e["jaw_open"][:, 1] = -delta * (z - zp) * jaw
    e["jaw_open"][:, 2] = delta * (y - yp) * jaw
    corner = _gauss(ax, y, ch, y_sto, 10.0, 10.0)
    cheek = _gauss(ax, y, 35.0, 10.0, 14.0, 12.0)
    e["smile"][:, 0] = 3.0 * sgn * corner
    e["smile"][:, 1] = 3.0 * corner + 2.0 * cheek
    e["smile"][:, 2] = -2.5 * corner + 1.5 * cheek
    pucker = _gauss(x, y, 0.0, y_sto, 18.0, 9.0)
    e["lip_pucker"][:, 0] = -0.25 * x * pucker
    e["lip_pucker"][:, 2] = 4.0 * pucker
    e["brow_raise"][:, 1] = 5.0 * _gauss(x, y, 0.0, Y_BROW, 45.0, 10.0) + 2.0 * _gauss(x, y, 0.0, 80.0, 45.0, 20.0)
    inner = _gauss(ax, y, 18.0, Y_BROW - 1.0, 10.0, 7.0)
    e["brow_furrow"][:, 0] = -2.0 * sgn * inner
    e["brow_furrow"][:, 1] = -2.5 * inner
    e["brow_furrow"][:, 2] = 1.0 * _gauss(x, y, 0.0, 57.0, 8.0, 6.0)
    e["jaw_sideways"][:, 0] = 4.0 * soft * _ramp(z, -10.0, 25.0) * (1.0 - _ramp(y_sto - y, 60.0, 85.0))
    e["cheek_puff"][:, 2] = 4.0 * _gauss(ax, y, 35.0, -12.0, 12.0, 12.0) * tpl.front
    sds = np.array([1.0, 1.0, 0.8, 1.0, 1.0, 0.6, 0.6])
    return np.stack([e[n] for n in EXPRESSION_NAMES]), sds


def _albedo(tpl: _Template) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Albedo mean (V, 3), directions (Ka, V, 3) and SDs (Ka,)."""
    bx, by = tpl.base_xy[:, 0], tpl.base_xy[:, 1]
    ax = np.abs(bx)
    wf = tpl.front
    skin = np.array([0.80, 0.62, 0.52])
    up, lo, _ = _lip_masks(bx, by)
    lips = np.clip(up + lo, 0, 1) * wf
    lens = _eye_lens(bx, by) * wf
    r_eye = np.hypot(ax - EYE_CX, by - Y_EYE)
    iris = lens * (1.0 - _ramp(r_eye, 4.8, 5.8))
    pupil = lens * (1.0 - _ramp(r_eye, 1.6, 2.4))
    brow_y = 52.0 + 6.5 * (1.0 - ((ax - 31.0) / 22.0) ** 2)
    brow = wf * _ramp(ax, 10.0, 14.0) * (1.0 - _ramp(ax, 52.0, 56.0)) * np.exp(-0.5 * ((by - brow_y) / 2.4) ** 2)
    nostril = wf * _gauss(ax, by, 6.0, -0.5, 2.2, 1.3)
    mouth_line = (wf * np.clip(1.5 * np.exp(-0.5 * ((by - Y_STO) / 0.9) ** 2), 0, 1)
                  * (1.0 - _ramp(ax, CH_X - 2.0, CH_X + 1.0)))
    hairline = Y_TR + 4.0 - 40.0 * (1.0 - np.clip(np.cos(tpl.theta), 0.0, 1.0)) ** 1.5
    hair = _ramp(by, hairline, hairline + 14.0)
    cheek = _gauss(ax, by, 38.0, 10.0, 14.0, 12.0) * wf
    mean = np.broadcast_to(skin, tpl.vertices.shape).copy()
    mean += cheek[:, None] * np.array([0.04, -0.03, -0.03])
    mean = mean * (1 - lips[:, None]) + lips[:, None] * np.array([0.70, 0.38, 0.38])
    mean = mean * (1 - lens[:, None]) + lens[:, None] * np.array([0.92, 0.90, 0.88])
    mean = mean * (1 - iris[:, None]) + iris[:, None] * np.array([0.33, 0.24, 0.16])
    mean = mean * (1 - pupil[:, None]) + pupil[:, None] * np.array([0.05, 0.04, 0.04])
    mean = mean * (1 - brow[:, None]) + brow[:, None] * np.array([0.30, 0.22, 0.17])
    mean = mean * (1 - nostril[:, None]) + nostril[:, None] * np.array([0.30, 0.18, 0.15])
    mean = mean * (1 - mouth_line[:, None]) + mouth_line[:, None] * np.array([0.28, 0.10, 0.10])
    mean = mean * (1 - hair[:, None]) + hair[:, None] * np.array([0.22, 0.16, 0.11])
    skin_w = (1 - lens) * (1 - hair) * (1 - brow)
    dirs = np.stack([
        skin_w[:, None] * np.array([0.22, 0.20, 0.19]),
        skin_w[:, None] * np.array([1.0, -0.3, -0.5]),
        skin_w[:, None] * np.array([0.3, 0.3, -0.7]),
        lips[:, None] * np.array([0.6, -0.4, -0.3]),
        cheek[:, None] * np.array([1.0, -0.5, -0.5]),
        np.clip(hair + brow, 0, 1)[:, None] * np.array([1.0, 1.0, 1.0]),
        iris[:, None] * (1 - pupil[:, None]) * np.array([0.5, 0.4, 0.2]),
    ])
    sds = np.array([0.5, 0.04, 0.04, 0.06, 0.05, 0.1, 0.25])
    return mean.astype(np.float32), dirs, sds


# --------------------------------------------------------------------------------------------------------------
# assembly, cache

@dataclass(frozen=True)
class BuiltinGenerator:
    """The control-level generator behind the built-in model (what the simulated world draws people with).

    ``template`` (V, 3): the head at ``template_controls`` (C,); ``fields`` (C, V*3): displacement per unit of each
    control; ``controls_to_shape``: controls (n, C) -> shapes (n, V, 3) = template + (c - template_controls) fields.
    """
    template: np.ndarray
    template_controls: np.ndarray
    fields: np.ndarray

    def controls_to_shape(self, controls) -> np.ndarray:
        """controls (n, C) or (C,) in ``CONTROL_NAMES`` order -> vertices (n, V, 3) float32 (mm)."""
        c = np.atleast_2d(np.asarray(controls, dtype=np.float64))
        if c.shape[1] != len(CONTROL_NAMES):
            raise ValueError(f"expected controls (n, {len(CONTROL_NAMES)}), got {c.shape}")
        off = (c - self.template_controls) @ self.fields
        return (self.template.reshape(1, -1) + off).reshape(c.shape[0], -1, 3).astype(np.float32)


def cache_dir() -> Path:
    """Where the built-in model is cached: ``$VOICEFACE_CACHE`` or ``~/.cache/voiceface``."""
    root = os.environ.get("VOICEFACE_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "voiceface"


def _cache_key() -> str:
    spec = json.dumps({"v": BUILDER_VERSION, "grid": [N_ROWS, N_COLS], "n": N_POPULATION, "seed": POPULATION_SEED,
                       "stats": _CONTROL_STATS, "load": _LOADINGS, "res": [N_RESIDUAL, RESIDUAL_SD]}, sort_keys=True)
    source = Path(__file__).read_bytes()                      # any change to the generator invalidates the cache
    return hashlib.sha256(spec.encode() + source).hexdigest()[:12]


def build_arrays() -> dict[str, np.ndarray]:
    """Build the built-in model and its generator from scratch (no cache): a dict of arrays."""
    tpl = _build_template()
    am = _am_landmarks(tpl)
    ibug = _ibug_landmarks(tpl, am)
    pts = _named_points(tpl, am)
    fields = _control_fields(tpl, pts)                                             # (C, V, 3)
    c_tpl = _template_controls(tpl, pts)
    exp_fields, exp_sd = _expression_fields(tpl, pts)
    alb_mean, alb_dirs, alb_sd = _albedo(tpl)
    # centre the face: origin at the centroid of the 68 landmarks
    shift = tpl.vertices[ibug].mean(axis=0)
    template = tpl.vertices - shift
    nv = template.shape[0]
    F = fields.reshape(len(CONTROL_NAMES), nv * 3)
    # population PCA, exactly in control space: cov(shapes) = F^T S F with S the controls' sample covariance
    rng = np.random.default_rng(POPULATION_SEED)
    half = N_POPULATION // 2
    gender = np.array(["m"] * half + ["f"] * (N_POPULATION - half))
    age = rng.uniform(18.0, 75.0, N_POPULATION)
    ctrl = sample_controls(N_POPULATION, gender, age, rng)
    cmean = ctrl.mean(axis=0)
    cmean[len(NAMED_CONTROLS):] = 0.0            # residuals: their expected value, so the mean face is symmetric
    cov = np.cov(ctrl, rowvar=False)
    w, q = np.linalg.eigh(cov)
    half_cov = q * np.sqrt(np.clip(w, 0.0, None))                                  # S = L L^T
    _, s, vt = np.linalg.svd(half_cov.T @ F, full_matrices=False)                  # (C, 3V) = U S V^T
    keep = s > 1e-6 * s[0]
    basis = vt[keep].T                                                             # (3V, K) orthonormal
    sign = np.sign(basis[np.abs(basis).argmax(axis=0), np.arange(basis.shape[1])])  # deterministic signs
    basis = basis * sign
    mean = template.reshape(-1) + (cmean - c_tpl) @ F
    ex = exp_fields.reshape(len(EXPRESSION_NAMES), nv * 3)
    ex_norm = np.linalg.norm(ex, axis=1)
    al = alb_dirs.reshape(len(ALBEDO_NAMES), nv * 3)
    al_norm = np.linalg.norm(al, axis=1)
    return dict(
        mean=mean.reshape(nv, 3).astype(np.float32), id_basis=basis.astype(np.float32),
        id_std=s[keep].astype(np.float32),
        exp_basis=(ex / ex_norm[:, None]).T.astype(np.float32), exp_std=(ex_norm * exp_sd).astype(np.float32),
        albedo_mean=alb_mean, albedo_basis=(al / al_norm[:, None]).T.astype(np.float32),
        albedo_std=(al_norm * alb_sd).astype(np.float32),
        triangles=tpl.triangles, uv=tpl.uv, landmarks68=ibug, am_landmarks=am,
        template=template.astype(np.float64), template_controls=c_tpl, fields=F, population_control_mean=cmean)


@lru_cache(maxsize=2)
def _load_cached(path_str: str, key: str) -> dict[str, np.ndarray]:
    path = Path(path_str)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["key"]) == key:
                    return {k: z[k] for k in z.files if k != "key"}
        except (OSError, ValueError, KeyError):
            pass                                                                   # rebuild a corrupt cache
    arrays = build_arrays()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        with open(tmp, "wb") as f:
            np.savez(f, key=np.array(key), **arrays)
        os.replace(tmp, path)
        for stale in path.parent.glob("face3d-builtin-v*.npz"):                   # older generator versions
            if stale != path:
                stale.unlink(missing_ok=True)
    except OSError:
        pass                                                                       # read-only cache: still usable
    return arrays


def _arrays(cache: bool = True) -> dict[str, np.ndarray]:
    key = _cache_key()
    if not cache:
        return build_arrays()
    return _load_cached(str(cache_dir() / f"face3d-builtin-v{BUILDER_VERSION}-{key}.npz"), key)


def builtin_model(cache: bool = True) -> MorphableModel:
    """The built-in morphable model (a research stand-in; see module doc). Deterministic; cached on disk."""
    a = {k: np.array(v) for k, v in _arrays(cache).items()}
    return MorphableModel(a["mean"], a["id_basis"], a["id_std"], a["triangles"], uv=a["uv"],
                          landmarks68=a["landmarks68"], am_landmarks=a["am_landmarks"], exp_basis=a["exp_basis"],
                          exp_std=a["exp_std"], albedo_mean=a["albedo_mean"], albedo_basis=a["albedo_basis"],
                          albedo_std=a["albedo_std"], name="builtin", units="mm", exp_names=EXPRESSION_NAMES)


def generator(cache: bool = True) -> BuiltinGenerator:
    """The control-level generator of the built-in model (same arrays and cache as :func:`builtin_model`)."""
    a = _arrays(cache)
    return BuiltinGenerator(a["template"], a["template_controls"], a["fields"])


def controls_to_shape(controls) -> np.ndarray:
    """controls (n, C) -> built-in model vertices (n, V, 3) (mm); see :class:`BuiltinGenerator`."""
    return generator().controls_to_shape(controls)


def controls_to_coeffs(controls) -> np.ndarray:
    """controls (n, C) -> the built-in model's identity coefficients (n, Ki) in std units (exact: the model's
    identity space is the span of the control fields)."""
    a = _arrays()
    c = np.atleast_2d(np.asarray(controls, dtype=np.float64))
    off = (c - a["template_controls"]) @ a["fields"] + (a["template"].reshape(-1) - a["mean"].reshape(-1))
    return ((off @ a["id_basis"]) / a["id_std"]).astype(np.float32)
