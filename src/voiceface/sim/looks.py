"""Sexually dimorphic appearance of the simulated people: hair, facial hair, brows and lip colour.

Real face photos show gender through much more than the craniofacial shape the built-in model varies (the
thesis's face gender classifier reaches ~99 %, Sec. 2.3): hair length and silhouette, beard or stubble shading,
brow thickness, lip colour. A ``Look`` carries these per person, drawn from *overlapping* gender-conditional
distributions (some men wear long hair, some women short; some men are clean-shaven, with only the shadow of a
shaved beard; brows sit lower and flatter in men, higher and more arched in women, with wide overlap), so gender is
a strong but not a trivial cue. Two renderings use it:

* ``apply_look``: per-vertex albedo edits on the model's mean-face regions (scalp hair with a receding or low
  hairline and a fringe, hair down the sides of the head for long hair, sideburns, stubble / beard / moustache
  darkening of the lower face, thicker and darker brows, lip tint).
* ``paint_hair``: long hair behind the head, painted into the photo's background before the face is rendered
  (so the head occludes it): a curtain framing the face down to ``hair_length``, with strand texture and
  lit by the photo's ambient light.

Beyond gender, ``Traits`` carries what tells one person from another in every photo of them (a face
recogniser's cues besides the face's shape): a fixed skin pattern (moles, freckles, mottling, blush, darker lower
lids, age lines), iris colour and lash line, the brows' arch, tilt, height, length and gap, a widow's peak and hair
parting, the hairdo's strand pattern and waviness, the facial-hair style, glasses (``paint_glasses``).

``gender_probe``: the check that this works: a ridge linear classifier on pixels, trained and tested on disjoint
people.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import torch

# hair colours (linear RGB reflectance) and their P(colour | population group)
HAIR_COLOURS = {"black": (0.05, 0.045, 0.04), "dark_brown": (0.12, 0.08, 0.055), "brown": (0.24, 0.16, 0.10),
                "blond": (0.55, 0.43, 0.26), "red": (0.40, 0.17, 0.08)}
_HAIR_P = {"european": (0.10, 0.35, 0.30, 0.20, 0.05), "african": (0.85, 0.15, 0.0, 0.0, 0.0),
           "east_asian": (0.80, 0.20, 0.0, 0.0, 0.0), "south_asian": (0.75, 0.25, 0.0, 0.0, 0.0),
           "latin": (0.45, 0.45, 0.10, 0.0, 0.0)}
GREY = np.array([0.55, 0.54, 0.52])
P_LONG_MALE = 0.05
"""Share of men with long hair (hair_length >= 0.35)."""
P_SHORT_FEMALE = 0.06
"""Share of women with short hair (hair_length <= 0.4)."""


@dataclass(frozen=True)
class Traits:
    """Identity details of a person's appearance, the same in all their photos (what a face recogniser reads
    beyond the face's shape).

    Attributes:
        pattern: integer seed of the person's fixed skin pattern (mole and freckle positions, mottling).
        moles: number of moles / marks (0..5).  freckles: 0..1 freckle density.  mottle: 0..1 uneven skin tone.
        blush: 0..1 cheek colour.  under_eye: 0..1 darker lower lids.  wrinkle: 0..1 (age) forehead and
        nasolabial lines.  iris_rgb: (3,) iris colour.  lash: 0..1 darkness of the lash line (and eye liner).
        brow_arch: 0..1 arch height (mostly higher in women).  brow_tilt: -1..1 (tail down .. up).  brow_lift:
        mm above the usual brow line (women's ~2.4 mm above men's on average, sd 1.5 mm).  brow_len: 0..1 how
        far out the brow tail reaches.  brow_gap: 0..1 gap between the brows.
        widow: 0..1 widow's peak.  part: -1..1 side of the hair parting (|part| < 0.3: none).
        hair_phase: phase of the person's hairdo (strand pattern, ragged edge).  curl: 0..1 waviness.
        moustache, goatee, cheek_beard: 0..1 weights of the facial-hair style's parts (with ``Look.beard``).
        glasses: 0..1 share of the person's photos with their glasses (0 for most).
        glasses_shape: 0 (round) .. 1 (rectangular).  glasses_rgb: (3,) frame colour.
    """

    pattern: int
    moles: int
    freckles: float
    mottle: float
    blush: float
    under_eye: float
    wrinkle: float
    iris_rgb: tuple[float, float, float]
    lash: float
    brow_arch: float
    brow_tilt: float
    brow_lift: float
    brow_len: float
    brow_gap: float
    widow: float
    part: float
    hair_phase: float
    curl: float
    moustache: float
    goatee: float
    cheek_beard: float
    glasses: float
    glasses_shape: float
    glasses_rgb: tuple[float, float, float]


IRIS_COLOURS = {"dark_brown": (0.10, 0.06, 0.035), "brown": (0.22, 0.12, 0.06), "hazel": (0.30, 0.24, 0.10),
                "green": (0.22, 0.30, 0.18), "blue": (0.25, 0.35, 0.50), "grey": (0.36, 0.38, 0.40)}
_IRIS_P = {"european": (0.15, 0.25, 0.15, 0.1, 0.25, 0.1), "african": (0.8, 0.2, 0, 0, 0, 0),
           "east_asian": (0.75, 0.25, 0, 0, 0, 0), "south_asian": (0.6, 0.35, 0.05, 0, 0, 0),
           "latin": (0.4, 0.4, 0.12, 0.04, 0.04, 0)}
FRECKLE_P = {"european": 0.3, "african": 0.03, "east_asian": 0.08, "south_asian": 0.05, "latin": 0.12}
P_GLASSES = 0.25
"""Share of people who wear glasses in some of their photos."""


def sample_traits(rng: np.random.Generator, male: bool, age: float, group: str) -> Traits:
    """Draw a person's identity ``Traits`` (gender shifts brows, lash line and blush; age adds wrinkles)."""
    u = rng.random(6)
    names = list(IRIS_COLOURS)
    p = np.array(_IRIS_P[group])
    iris = np.array(IRIS_COLOURS[names[int(rng.choice(len(names), p=p / p.sum()))]])
    iris = np.clip(iris * np.exp(0.15 * rng.standard_normal(3)), 0.02, 1.0)
    style = rng.dirichlet((0.8, 0.8, 0.8)) * 2.0
    frame = rng.choice([0.05, 0.25, 0.5]) * np.exp(0.2 * rng.standard_normal(3))
    return Traits(
        pattern=int(rng.integers(0, 2 ** 31)), moles=int(rng.choice(6, p=(0.3, 0.25, 0.2, 0.12, 0.08, 0.05))),
        freckles=float(rng.uniform(0.3, 1.0) if u[0] < FRECKLE_P[group] else 0.0),
        mottle=float(rng.uniform(0.0, 1.0)), blush=float(np.clip(rng.normal(0.2 if male else 0.6, 0.2), 0, 1)),
        under_eye=float(rng.uniform(0.0, 1.0)), wrinkle=float(np.clip((age - 30.0) / 40.0, 0, 1) * rng.uniform(0.5, 1)),
        iris_rgb=tuple(float(c) for c in iris),
        lash=float(np.clip(rng.normal(0.3 if male else 0.85, 0.2), 0, 1)),
        brow_arch=float(rng.beta(1.5, 2.5) if male else rng.beta(2.5, 1.5)), brow_tilt=float(rng.uniform(-1, 1)),
        brow_lift=float(rng.normal(-1.2 if male else 1.2, 1.5)),
        brow_len=float(rng.uniform(0, 1)), brow_gap=float(rng.uniform(0, 1)),
        widow=float(rng.uniform(0.3, 1.0) if u[1] < 0.3 else 0.0),
        part=float(rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 1.0) if u[2] < 0.6 else 0.0),
        hair_phase=float(rng.uniform(0, 2 * np.pi)), curl=float(rng.uniform(0, 1) ** 2),
        moustache=float(np.clip(style[0], 0, 1)), goatee=float(np.clip(style[1], 0, 1)),
        cheek_beard=float(np.clip(style[2], 0, 1)),
        glasses=float(1.0 if u[3] < P_GLASSES else 0.0), glasses_shape=float(u[4]),
        glasses_rgb=tuple(float(c) for c in np.clip(frame, 0.02, 0.9)))


@dataclass(frozen=True)
class Look:
    """A person's hair and facial-hair appearance.

    Attributes:
        hair_length: 0 (cropped) .. 1 (well below the shoulders-line of the crop).  hair_volume: 0..1 (width of
        the hair silhouette).  hair_rgb: (3,) reflectance.  recession: how far the front hairline has receded
        at the temples (mm, >= 0; men: a few mm from adulthood, more with age; the centre recedes ~half as
        far).  fringe: 0..1 (bangs lowering the front hairline).  beard: 0..1 facial-hair density (0 = none,
        0.1-0.22 the shadow of a shaved beard, ~0.3-0.6 stubble, 1 full beard).  beard_reach: 0..1 how high
        the beard climbs the cheeks.  brow: 0..1 brow thickness and darkness.  lip_tint: 0..1 lip colour
        (lipstick) strength.
    """

    hair_length: float
    hair_volume: float
    hair_rgb: tuple[float, float, float]
    recession: float
    fringe: float
    beard: float
    beard_reach: float
    brow: float
    lip_tint: float
    traits: Traits | None = None

    def row(self) -> dict:
        """Flat ``look_*`` columns for people.csv (identity traits as ``look_t_*``)."""
        d = asdict(self)
        d.pop("traits")
        rgb = d.pop("hair_rgb")
        out = {f"look_{k}": round(float(v), 4) for k, v in d.items()}
        out.update({f"look_hair_{c}": round(float(v), 4) for c, v in zip("rgb", rgb)})
        if self.traits is not None:
            for k, v in asdict(self.traits).items():
                vals = np.atleast_1d(np.asarray(v, dtype=np.float64))
                names = [k] if vals.size == 1 else [f"{k}_{c}" for c in "rgb"]
                out.update({f"look_t_{n}": round(float(x), 4) for n, x in zip(names, vals)})
        return out


def sample_look(rng: np.random.Generator, gender: str, age: float, group: str) -> Look:
    """Draw a ``Look`` from gender-conditional, overlapping distributions (age greys the hair and recedes men's
    hairlines)."""
    male = gender == "m"
    u = rng.random(8)
    if male:     # mostly short, ~5 % long
        length = rng.uniform(0.0, 0.25) if u[0] > P_LONG_MALE else rng.uniform(0.35, 1.0)
    else:        # mostly long, ~6 % short
        length = rng.uniform(0.5, 1.0) if u[0] > P_SHORT_FEMALE else rng.uniform(0.0, 0.4)
    volume = float(np.clip(rng.normal(0.35 if male else 0.55, 0.2), 0.0, 1.0))
    names = list(HAIR_COLOURS)
    p = np.array(_HAIR_P[group])
    rgb = np.array(HAIR_COLOURS[names[int(rng.choice(len(names), p=p / p.sum()))]])
    rgb = rgb * np.exp(0.25 * rng.standard_normal())
    grey = np.clip((age - 35.0) / 40.0, 0.0, 1.0) * rng.uniform(0.2, 1.0)
    rgb = (1 - grey) * rgb + grey * GREY
    recession = (rng.uniform(3.0, 12.0) + (max(0.0, (age - 25.0) / 45.0) * rng.uniform(0.0, 35.0) if u[1] < 0.6
                                           else 0.0)) if male else 0.0
    fringe = rng.uniform(0.3, 1.0) if u[2] < (0.12 if male else 0.35) else 0.0
    if male:     # ~20 % clean-shaven (a faint shadow of the shaved beard), ~45 % stubble, ~35 % beard
        beard = (rng.uniform(0.1, 0.22) if u[3] < 0.2 else
                 (rng.uniform(0.3, 0.6) if u[3] < 0.65 else rng.uniform(0.6, 1.0)))
    else:
        beard = 0.0
    brow = float(np.clip(rng.normal(0.8 if male else 0.2, 0.15), 0.0, 1.0))
    lip = rng.uniform(0.5, 1.0) if (not male and u[4] < 0.9) else rng.uniform(0.0, 0.15)
    reach = float(rng.uniform(0.0, 1.0))
    return Look(hair_length=float(length), hair_volume=volume, hair_rgb=tuple(float(c) for c in rgb),
                recession=float(recession), fringe=float(fringe), beard=float(beard),
                beard_reach=reach, brow=brow, lip_tint=float(lip), traits=sample_traits(rng, male, age, group))


# ---------------------------------------------------------------------------------------------------------------
# Per-vertex albedo
# ---------------------------------------------------------------------------------------------------------------

def _ramp(v, lo, hi):
    t = np.clip((v - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


@lru_cache(maxsize=1)
def _regions() -> dict[str, np.ndarray]:
    """Vertex geometry of the built-in model's mean face: x, y (mm), theta (angle around the head, 0 = front),
    the model's own hair and brow weights (as its albedo mean paints them), lips, nostrils and a fixed per-vertex
    stubble texture. All (V,)."""
    from ..face3d import builtin

    from .people import face_model

    m = face_model()
    v = m.mean.double().numpy()
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    rows = np.round(m.uv[:, 1].numpy() * 1e4).astype(np.int64)       # one grid row per uv v value
    _, inv = np.unique(rows, return_inverse=True)
    zmax = np.full(inv.max() + 1, -np.inf)
    zmin = np.full(inv.max() + 1, np.inf)
    np.maximum.at(zmax, inv, z)
    np.minimum.at(zmin, inv, z)
    zc = 0.5 * (zmax + zmin)[inv]
    theta = np.arctan2(x, z - zc)
    front = _ramp(np.cos(theta), 0.1, 0.5)
    ax = np.abs(x)
    old_hairline = builtin.Y_TR + 4.0 - 40.0 * (1.0 - np.clip(np.cos(theta), 0.0, 1.0)) ** 1.5
    old_hair = _ramp(y, old_hairline, old_hairline + 14.0)
    brow_y = 52.0 + 6.5 * (1.0 - ((ax - 31.0) / 22.0) ** 2)
    brow_x = _ramp(ax, 10.0, 14.0) * (1.0 - _ramp(ax, 52.0, 56.0)) * front
    alb = m.albedo_mean.double().numpy()
    redness = alb[:, 0] - alb[:, 1]
    lips = np.clip((redness - 0.24) / 0.06, 0, 1) * (np.abs(y - builtin.Y_STO) < 14) * (ax < 35) * front
    nostril = np.exp(-0.5 * (((ax - 6.0) / 2.2) ** 2 + ((y + 0.5) / 1.3) ** 2)) * front
    stubble_tex = np.random.default_rng(7).uniform(0.5, 1.0, len(x))
    old_brow = brow_x * np.exp(-0.5 * ((y - brow_y) / 2.4) ** 2)
    return {"x": x, "ax": ax, "y": y, "theta": theta, "front": front, "old_hair": old_hair, "brow_y": brow_y,
            "brow_x": brow_x, "lips": lips, "nostril": nostril, "stubble_tex": stubble_tex, "old_brow": old_brow,
            **_eye_regions(m, x, y),
            "y_sn": np.float64(builtin.Y_SN), "y_sto": np.float64(builtin.Y_STO), "y_gn": np.float64(builtin.Y_GN),
            "y_tr": np.float64(builtin.Y_TR)}


def face_vertices() -> np.ndarray:
    """Indices of the vertices of the front of the face (forehead to chin, cheek to cheek), (Vf,) int64."""
    r = _regions()
    return np.flatnonzero((r["front"] > 0.7) & (np.abs(r["y"] - 10.0) < 60.0))


def _eye_regions(m, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Eye geometry of the mean face, read off the model's albedo (white sclera, iris, pupil) and its 68 landmarks:
    ``lens`` (V,) eye-opening weight, ``eye_r`` (V,) distance (mm) to the iris centre of the same side, ``eye_dy``
    (V,) height above it, ``lash`` (V,) rim of skin just above the opening (the upper lash line)."""
    alb = m.albedo_mean.double().numpy()
    lm = m.mean.double().numpy()[m.landmarks68.numpy()]
    eye_y = lm[36:48, 1].mean()
    eye_x = np.abs(lm[36:42, 0]).mean()
    near = (np.abs(y - eye_y) < 9.0) & (np.abs(np.abs(x) - eye_x) < 20.0) & (m.mean[:, 2].numpy() > 0)
    white = alb.min(1) > 0.8
    iris = np.abs(alb - np.array([0.33, 0.24, 0.16])).max(1) < 0.04
    pupil = alb.max(1) < 0.08
    lens = near & (white | iris | pupil)
    r = np.full(len(x), np.inf)
    dy = np.zeros(len(x))
    for side in (-1.0, 1.0):
        sel = near & (iris | pupil) & (np.sign(x) == side)
        cx, cy = x[sel].mean(), y[sel].mean()
        this = np.sign(x) == side
        r[this] = np.hypot(x[this] - cx, y[this] - cy)
        dy[this] = y[this] - cy
    pts = np.stack([x, y], -1)
    d_lens = np.full(len(x), np.inf)
    cand = near & ~lens
    d_lens[cand] = np.sqrt(((pts[cand][:, None] - pts[lens][None]) ** 2).sum(-1)).min(1)
    lash = np.exp(-0.5 * (d_lens / 1.6) ** 2) * (dy > -1.0)
    return {"lens": lens.astype(np.float64), "eye_r": r, "eye_dy": dy, "lash": lash}


def hair_weight(look: Look) -> np.ndarray:
    """(V,) scalp-hair weight: hairline at the trichion raised by ``recession`` (most at the temples), lowered by
    ``fringe`` at the front (and by a widow's peak, tilted towards the parting side); longer hair covers the sides
    of the head (temples, ears) further down; a parting shows a line of scalp."""
    r = _regions()
    t = look.traits
    c = np.clip(np.cos(r["theta"]), 0.0, 1.0)
    side = (1.0 - c) ** 1.5
    temples = np.exp(-0.5 * ((r["ax"] - 34.0) / 10.0) ** 2)                  # men recede at the temples first
    front_line = (r["y_tr"] + 4.0 + look.recession * (0.45 + 0.55 * temples)
                  - 38.0 * look.fringe * np.exp(-0.5 * (r["x"] / 45.0) ** 2))
    if t is not None:
        front_line = front_line - 9.0 * t.widow * np.exp(-0.5 * (r["x"] / 6.0) ** 2) + 5.0 * t.part * r["x"] / 45.0
    drop = 40.0 + 95.0 * look.hair_length
    line = front_line - drop * side
    w = _ramp(r["y"], line - 3.0, line + 5.0)
    if t is not None and abs(t.part) >= 0.3:
        gap = np.exp(-0.5 * ((r["x"] - 28.0 * t.part) / 1.5) ** 2) * _ramp(r["y"], line + 4.0, line + 8.0)
        w = w * (1.0 - 0.8 * gap * (r["y"] < r["y_tr"] + 60.0))
    return w


def beard_weight(look: Look) -> np.ndarray:
    """(V,) facial-hair weight: lower face from below the nose to under the chin, along the jaw to sideburns
    (its upper edge on the cheeks climbs with ``beard_reach``), moustache above the upper lip; lips excluded.
    A denser beard (``beard`` > 0.55) follows the person's style: moustache, goatee (chin) and cheek/jaw parts
    weighted by their ``Traits``."""
    r = _regions()
    ax, y, theta = r["ax"], r["y"], r["theta"]
    upper = r["y_sn"] - 14.0 + (8.0 + 22.0 * look.beard_reach) * _ramp(ax, 15.0, 60.0)
    region = (1.0 - _ramp(y, upper - 2.0, upper + 3.0)) * _ramp(y, r["y_gn"] - 30.0, r["y_gn"] - 15.0)
    region *= 1.0 - _ramp(np.abs(theta), 1.45, 1.7)
    moustache = (_ramp(y, r["y_sto"] + 4.0, r["y_sto"] + 7.0) * (1.0 - _ramp(y, r["y_sn"] - 4.0, r["y_sn"] - 1.0))
                 * (1.0 - _ramp(ax, 24.0, 30.0)))
    t = look.traits
    if t is not None and look.beard > 0.55:
        chin = 1.0 - _ramp(ax, 16.0, 24.0)
        region = region * (t.goatee * chin + t.cheek_beard * (1.0 - chin))
        moustache = moustache * max(t.moustache, t.goatee)
    w = np.maximum(region, moustache) * (1.0 - r["lips"]) * (1.0 - r["nostril"])
    return w * r["stubble_tex"]


def brow_weight(look: Look) -> np.ndarray:
    """(V,) brow weight: the model's brow arch, thicker with ``look.brow``; with ``Traits`` the arch, tilt,
    height, length and inner gap are the person's, and the brow tapers towards its tail."""
    r = _regions()
    sd = 2.2 + 2.0 * look.brow
    t = look.traits
    if t is None:
        return r["brow_x"] * np.exp(-0.5 * ((r["y"] - r["brow_y"] + 0.5 * look.brow) / sd) ** 2)
    ax, u = r["ax"], (r["ax"] - 30.0) / 20.0
    centre = (r["brow_y"] - 0.5 * look.brow + t.brow_lift + (t.brow_arch - 0.5) * 5.5 * (1.0 - u ** 2)
              + 4.0 * t.brow_tilt * u)
    sd = (1.4 + 2.0 * look.brow) * (1.0 - 0.45 * _ramp(ax, 30.0, 56.0))
    inner, outer = 9.0 + 8.0 * t.brow_gap, 44.0 + 12.0 * t.brow_len
    extent = _ramp(ax, inner, inner + 4.0) * (1.0 - _ramp(ax, outer - 4.0, outer)) * r["front"]
    return extent * np.exp(-0.5 * ((r["y"] - centre) / sd) ** 2)


def _blobs(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, n: int, sd: tuple[float, float]) -> np.ndarray:
    """(V,) sum of ``n`` random Gaussian bumps (+/-1 amplitudes, sd in mm) over the face region."""
    cx, cy = rng.uniform(-60, 60, n), rng.uniform(-70, 100, n)
    s = rng.uniform(*sd, n)
    amp = rng.uniform(-1, 1, n)
    return (amp * np.exp(-0.5 * ((x[:, None] - cx) ** 2 + (y[:, None] - cy) ** 2) / s ** 2)).sum(1)


def _skin_marks(t: Traits, skin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-vertex multiplicative skin shading (V, 3) from the person's fixed pattern: mottling, blush, darker
    lower lids, age lines, freckles and moles. Returns (factor (V, 3), mark weight (V,) of moles/freckles)."""
    r = _regions()
    x, ax, y, front = r["x"], r["ax"], r["y"], r["front"]
    rng = np.random.default_rng(t.pattern)
    f = np.ones((len(x), 3))
    f *= (1.0 + 0.09 * t.mottle * np.tanh(_blobs(rng, x, y, 10, (10.0, 25.0))))[:, None]
    cheek = np.exp(-0.5 * (((ax - 36.0) / 12.0) ** 2 + ((y - 8.0) / 10.0) ** 2)) * front
    f *= 1.0 + 0.25 * t.blush * cheek[:, None] * np.array([0.5, -0.35, -0.3])
    lower_lid = np.exp(-0.5 * (((r["eye_r"]) / 10.0) ** 2)) * (r["eye_dy"] < -3.0) * (1.0 - r["lens"])
    f *= 1.0 - 0.25 * t.under_eye * lower_lid[:, None] * np.array([0.8, 1.0, 0.7])
    forehead = _ramp(y, 62.0, 68.0) * (1.0 - _ramp(y, 88.0, 95.0)) * (1.0 - _ramp(ax, 30.0, 45.0))
    lines = forehead * np.clip(np.cos(2 * np.pi * (y - 70.0) / 6.5), 0, 1) ** 4
    fold_d = np.abs((ax - 18.0) * 25.0 + (y + 5.0) * 12.0) / np.hypot(25.0, 12.0)      # ala -> mouth corner
    fold = np.exp(-0.5 * (fold_d / 1.5) ** 2) * (y < -3.0) * (y > -32.0) * front
    f *= (1.0 - 0.18 * t.wrinkle * np.maximum(lines, fold))[:, None]
    face = front * (np.abs(y - 10.0) < 75.0) * (1.0 - r["lens"]) * (1.0 - r["lips"])
    fr = (t.freckles * np.exp(-0.5 * ((ax - 14.0) / 16.0) ** 2 - 0.5 * ((y - 8.0) / 12.0) ** 2) * face
          * _ramp(r["eye_r"], 9.0, 12.0))
    spots = fr * (rng.random(len(x)) < 0.35 * fr) * rng.uniform(0.5, 1.0, len(x))
    idx = np.flatnonzero(face > 0.8)
    moles = np.zeros(len(x))
    for v in rng.choice(idx, size=t.moles, replace=False) if t.moles else []:
        moles = np.maximum(moles, np.exp(-0.5 * ((x - x[v]) ** 2 + (y - y[v]) ** 2) / rng.uniform(1.0, 2.2) ** 2))
    mark = np.clip(0.45 * spots + 0.8 * moles, 0.0, 0.85)
    return f, mark


def _hair_texture(t: Traits) -> np.ndarray:
    """(V,) brightness of the person's scalp hair: strands combed from the parting (or straight back), waves
    with ``curl``, highlights from their fixed pattern."""
    r = _regions()
    x, y = r["x"], r["y"]
    rng = np.random.default_rng(t.pattern + 1)
    along = x - 28.0 * t.part
    comb = np.sin(along / (2.0 + 2.0 * t.curl) + 4.0 * t.curl * np.sin(y / 7.0 + t.hair_phase) + t.hair_phase)
    return np.clip(1.0 + 0.16 * comb + 0.14 * np.tanh(_blobs(rng, x, y + 80.0, 8, (8.0, 20.0))), 0.6, 1.4)


def _paint_eyes(a: np.ndarray, t: Traits) -> np.ndarray:
    """Repaint the eyes: off-white sclera shaded towards the corners, the person's iris colour with a darker
    limbal ring, the pupil, and a lash line of the person's darkness. a: (V, 3) -> (V, 3)."""
    r = _regions()
    lens, er = r["lens"][:, None], r["eye_r"][:, None]
    sclera = np.array([0.80, 0.76, 0.72]) * (1.0 - 0.25 * _ramp(er, 6.0, 14.0))
    iris = np.asarray(t.iris_rgb) * (1.0 - 0.5 * _ramp(er, 3.8, 5.3))
    eye = np.where(er < 5.6, iris, sclera)
    eye = np.where(er < 1.9, np.array([0.03, 0.03, 0.03]), eye)
    a = a * (1 - lens) + lens * eye
    lw = (0.35 + 0.6 * t.lash) * r["lash"][:, None]
    return a * (1 - lw) + lw * np.array([0.05, 0.04, 0.04])


def apply_look(albedo: torch.Tensor, look: Look, skin_rgb: np.ndarray) -> torch.Tensor:
    """Paint ``look`` onto a person's per-vertex albedo.

    Args:
        albedo: (V, 3) reflectance in [0, 1] (the person's model albedo).  skin_rgb: (3,) their skin colour.
    Returns:
        (V, 3) float32 reflectance in [0.02, 1].
    """
    r = _regions()
    a = albedo.double().numpy().copy()
    skin = np.asarray(skin_rgb, dtype=np.float64)
    hair_rgb = np.asarray(look.hair_rgb)
    t = look.traits
    # remove the model's generic hair (and brows, when the person has their own), then paint this person's
    a = a * (1 - r["old_hair"][:, None]) + r["old_hair"][:, None] * skin
    if t is not None:
        ob = r["old_brow"][:, None]
        a = a * (1 - ob) + ob * skin
        shade, mark = _skin_marks(t, skin)
        a = a * shade
        a = a * (1 - mark[:, None]) + mark[:, None] * skin * np.array([0.42, 0.30, 0.24])
    h = hair_weight(look)[:, None]
    a = a * (1 - h) + h * hair_rgb * (1.0 if t is None else _hair_texture(t)[:, None])
    b = (0.85 * look.beard ** 0.7) * beard_weight(look)[:, None] * (1 - h)
    a = a * (1 - b) + b * (0.7 * hair_rgb + 0.3 * skin * 0.35)
    bw = np.clip((0.35 + 0.6 * look.brow) * brow_weight(look)[:, None], 0, 1)
    a = a * (1 - bw) + bw * np.minimum(hair_rgb, 0.6 * skin) * 0.8
    if t is not None:
        a = _paint_eyes(a, t)
    lip_rgb = np.array([0.62, 0.12, 0.16])
    if t is not None:       # the person's own lip colour (pinker .. browner)
        lip_rgb = np.clip(lip_rgb * np.exp(0.1 * np.random.default_rng(t.pattern + 2).standard_normal(3)), 0.02, 1)
    nat = 0.6 * r["lips"][:, None]      # untinted lips: close to the skin, a little darker and pinker
    a = a * (1 - nat) + nat * skin * np.array([0.95, 0.72, 0.74])
    lw = look.lip_tint * r["lips"][:, None]
    a = a * (1 - lw) + lw * lip_rgb
    return torch.as_tensor(np.clip(a, 0.02, 1.0), dtype=torch.float32)


# ---------------------------------------------------------------------------------------------------------------
# Long hair behind the head (image space)
# ---------------------------------------------------------------------------------------------------------------

def _plane_coords(poses: np.ndarray, size: int, z: float, y0: float) -> tuple[np.ndarray, np.ndarray]:
    """Model-frame (u, v) mm coordinates of every photo pixel on the frontal plane at depth ``z`` (the affine part
    of each image's viewpoint, Eq. 4.7). poses: (B, 7). Returns u, v: (B, S, S)."""
    from ..face3d import geometry

    b = len(poses)
    pts = torch.tensor([[0.0, y0, z], [10.0, y0, z], [0.0, y0 + 10.0, z]], dtype=torch.float64)
    q = geometry.project(pts.expand(b, 3, 3).contiguous(), torch.as_tensor(poses, dtype=torch.float64))
    q = q[..., :2].numpy()                                                      # (B, 3, 2)
    o, ex, ey = q[:, 0], (q[:, 1] - q[:, 0]) / 10.0, (q[:, 2] - q[:, 0]) / 10.0
    inv = np.linalg.inv(np.stack([ex, ey], -1))                                 # screen -> (u, v)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    d = np.stack([xx, yy], -1)[None] - o[:, None, None]                         # (B, S, S, 2)
    uv = np.einsum("bij,bhwj->bhwi", inv, d)
    return uv[..., 0], uv[..., 1] + y0


def hair_outline(look: Look, u: np.ndarray, v: np.ndarray, phase: float) -> np.ndarray:
    """(B, S, S) 0..1 coverage of the person's hair silhouette in the head's frontal plane (u, v mm): a
    super-elliptic dome over the skull (the head is 74 mm wide each side and 160 mm high), its width, height and
    squareness the person's (``hair_volume``, hair phase), with sides falling to ``y = 40 - 230 * hair_length``
    and a ragged lower edge. Short hair (< 0.3) is a close cap ending at the temples (``y = 50 - 60 *
    hair_length``, a little ragged) whose outline still differs from person to person."""
    t = look.traits
    curl = 0.0 if t is None else t.curl
    short = look.hair_length < 0.3
    half_w = (77.0 + 20.0 * look.hair_volume + 5.0 * curl) if short else (88.0 + 30.0 * look.hair_volume)
    top = (164.0 + 24.0 * look.hair_volume + 6.0 * curl) if short else (165.0 + 25.0 * look.hair_volume)
    square = 2.0 + 1.6 * (0.5 + 0.5 * np.sin(3.0 * phase))                      # 2 round .. 3.6 boxy
    bottom = (50.0 - 60.0 * look.hair_length) if short else (40.0 - 230.0 * look.hair_length)
    ragged = ((8.0 + 8.0 * curl) * np.sin(u / 9.0 + phase) + 5.0 * np.sin(u / 4.0 + 2 * phase)
              ) * (0.4 if short else 1.0)
    flare = half_w * (1.0 + 0.15 * _ramp(-v, -40.0, 150.0))
    au = np.abs(u / flare)
    dome = np.where(v > 40.0, au ** square + np.abs((v - 40.0) / (top - 40.0)) ** square, au ** square)
    inside = (dome < 1.0) & (v > bottom + ragged)
    return np.clip((1.0 - dome) * 8.0, 0, 1) * np.clip((v - bottom - ragged) / 6.0, 0, 1) * inside


def paint_hair(backgrounds: np.ndarray, poses: np.ndarray, lights: np.ndarray, look: Look | None,
               rng: np.random.Generator) -> np.ndarray:
    """Paint the hair behind and around the head into backgrounds, before the face is rendered over them.

    The hair is the person's ``hair_outline`` in the head's frontal plane, projected with each image's viewpoint
    (for long hair a curtain framing the face, for short hair the part of a cap that stands out of the skull),
    with strand texture; its colour is ``hair_rgb`` lit by the image's ambient SH term.

    Args:
        backgrounds: (B, 3, S, S) float in [0, 1].  poses: (B, 7) viewpoints.  lights: (B, 3, 9) SH.
        look: the person's look (None: unchanged).  rng: for the strand texture's phases.
    Returns:
        (B, 3, S, S) backgrounds with hair.
    """
    if look is None or (look.hair_length < 0.3 and look.recession > 22.0):     # bald men: no cap
        return backgrounds
    from ..face3d.geometry import SH_C0

    u, v = _plane_coords(poses, backgrounds.shape[-1], -40.0, 40.0)
    t = look.traits
    phase = rng.uniform(0, 2 * np.pi) if t is None else t.hair_phase          # the person's hairdo
    curl = 0.0 if t is None else t.curl
    edge = hair_outline(look, u, v, phase)
    wave = u + 6.0 * curl * np.sin(v / (6.0 - 3.0 * curl) + phase)
    strands = 0.82 + 0.12 * np.sin(wave / 1.7 + 3 * phase) + 0.08 * np.sin(wave / 0.9 + 5 * phase)
    amb = np.clip(lights[:, :, 0] * SH_C0, 0.3, 1.5)                            # (B, 3)
    colour = np.asarray(look.hair_rgb)[None, :, None, None] * amb[:, :, None, None] * strands[:, None]
    w = edge[:, None]
    return backgrounds * (1 - w) + w * colour


EYE_CENTRE = (31.9, 36.7)
"""Mean face's iris centres (|x|, y) in model mm (its 68 landmarks)."""


def paint_glasses(images: np.ndarray, poses: np.ndarray, look: Look | None, rng: np.random.Generator
                  ) -> np.ndarray:
    """Draw the person's glasses over rendered photos (in the photos where they wear them: a share
    ``traits.glasses``): two super-elliptic rims (round .. rectangular with ``glasses_shape``) around the eyes
    and a bridge, in the frontal plane 15 mm in front of the eyes projected with each photo's viewpoint, in the
    frame colour, the lenses faintly darkening.

    Args:
        images: (B, S, S, 3) float [0, 1] rendered photos.  poses: (B, 7).  look: the person's look.
        rng: which photos show the glasses.
    Returns:
        (B, S, S, 3) photos.
    """
    t = None if look is None else look.traits
    if t is None or t.glasses <= 0.0:
        return images
    wear = rng.random(len(images)) < t.glasses
    if not wear.any():
        return images
    ex, ey = EYE_CENTRE
    u, v = _plane_coords(poses[wear], images.shape[1], 30.0, ey)
    a, b = 21.0 + 3.0 * t.glasses_shape, 17.0 - 3.0 * t.glasses_shape
    p = 2.0 + 4.0 * t.glasses_shape
    cx = ex + 1.0
    du, dv = np.abs(np.abs(u) - cx), np.abs(v - ey - 1.0)
    rad = ((du / a) ** p + (dv / b) ** p) ** (1.0 / p)                          # 1 on the rim
    dist = (rad - 1.0) * min(a, b)                                              # ~mm from the rim
    thick = 1.6 + 1.6 * (0.5 + 0.5 * np.cos(t.pattern % 7))
    rim = np.clip(thick - np.abs(dist), 0.0, 1.0)
    bridge = (np.abs(u) < cx - a + 1.0) * np.clip(thick - np.abs(v - ey - 6.0), 0.0, 1.0)
    w = np.maximum(rim, bridge)[..., None]
    lens = (rad < 1.0)[..., None] * 0.08
    out = images.copy()
    sel = images[wear] * (1.0 - lens)
    out[wear] = sel * (1.0 - w) + w * np.asarray(t.glasses_rgb)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Check: how visible is gender?
# ---------------------------------------------------------------------------------------------------------------

def gender_probe(images: np.ndarray, male: np.ndarray, people: np.ndarray, folds: int = 5, ridge: float = 1.0,
                 seed: int = 0) -> float:
    """Accuracy of a linear gender classifier on raw pixels, on people it never saw (grouped k-fold).

    Ridge regression of +/-1 labels on standardised pixels (solved in its dual form: n images << pixels), one fold
    of people held out at a time; the threshold is 0.

    Args:
        images: (N, ...) pixel arrays (e.g. (N, 64, 64, 3) uint8).  male: (N,) bool.  people: (N,) identity labels.
        folds: number of folds of people.  ridge: penalty, relative to the mean squared norm of an image.
        seed: fold assignment.
    Returns:
        the fraction of images whose gender is predicted correctly, pooled over folds.
    """
    x = images.reshape(len(images), -1).astype(np.float64)
    y = np.where(np.asarray(male, dtype=bool), 1.0, -1.0)
    ids, inv = np.unique(np.asarray(people), return_inverse=True)
    fold = np.random.default_rng(seed).permutation(len(ids)) % folds
    correct = 0
    for k in range(folds):
        test = fold[inv] == k
        if not test.any() or test.all():
            continue
        mu, sd = x[~test].mean(0), x[~test].std(0) + 1e-6
        a, b = (x[~test] - mu) / sd, (x[test] - mu) / sd
        gram = a @ a.T
        lam = ridge * np.trace(gram) / len(a)
        ym = y[~test].mean()
        alpha = np.linalg.solve(gram + lam * np.eye(len(a)), y[~test] - ym)
        pred = b @ (a.T @ alpha) + ym
        correct += int((np.sign(pred) == y[test]).sum())
    return correct / len(x)
