"""People of the simulated world: covariates, faces, skin, expressions, voices, and the ground truth of the link.

A person has a gender, an age and a nationality (skewed like VoxCeleb1's metadata: most people from one country,
a long tail of others), a population group (from the nationality) that sets the skin tone and mildly shifts the
face, anthropometric face controls drawn from the built-in model's sampler (sex- and age-specific craniofacial
norms, ``voiceface.face3d.builtin``), projected onto the model's identity basis (Eq. 4.6 coefficients), an
individual albedo, an expression repertoire, standard-normal voice traits, and a gender-dependent look (hair,
facial hair, brows, lip colour: ``looks.Look``, painted onto the albedo and behind the head in photos).

The voice carries the person's nationality as an accent (``voices._accent``) and, through ``Preset.age_cue``, the
person's age in the speaking rate (``voices._rate_deviation``): no facial information, so the ground truth below is
unaffected. The voice is linked to three facial features (``voices.LINKED_FEATURES``) through their
*within-covariate* z-scores ``face_z`` (each control minus its gender- and age-conditional mean, over its
conditional sd, from the model's own norms ``builtin.control_stats``), so the link carries facial information
beyond gender and age. ``Population``, a large fixed-seed reference sample of the model's population, computes
the ground truth written to ``world.json``:
for each AM of Table 5.1 and each gender, the R^2 of the AM given the face-dependent voice parameters at the
world's coupling (how much of the AM an ideal reader of the voice could recover), and which AMs are linked.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch

from . import looks, voices

# VoxCeleb1-like skew: ~60 % one nationality, a long tail (shares rounded from the public VoxCeleb1 metadata's
# pattern; "China", "Nigeria", "Brazil", "Japan" widen the tail of population groups).
NATIONALITIES: tuple[tuple[str, float], ...] = (
    ("USA", 0.60), ("UK", 0.16), ("Canada", 0.045), ("Australia", 0.03), ("India", 0.03), ("Ireland", 0.02),
    ("Norway", 0.015), ("Germany", 0.015), ("Mexico", 0.015), ("Italy", 0.012), ("China", 0.012),
    ("Nigeria", 0.01), ("Brazil", 0.008), ("Japan", 0.008),
)
GROUPS = ("european", "african", "east_asian", "south_asian", "latin")
_NAT_GROUPS = {   # P(group | nationality), in GROUPS order
    "USA": (0.70, 0.14, 0.06, 0.02, 0.08), "UK": (0.85, 0.06, 0.03, 0.06, 0.0),
    "Canada": (0.80, 0.04, 0.10, 0.06, 0.0), "Australia": (0.86, 0.02, 0.10, 0.02, 0.0),
    "India": (0.0, 0.0, 0.0, 1.0, 0.0), "Ireland": (0.97, 0.03, 0.0, 0.0, 0.0), "Norway": (0.97, 0.03, 0.0, 0.0, 0.0),
    "Germany": (0.95, 0.03, 0.02, 0.0, 0.0), "Mexico": (0.1, 0.0, 0.0, 0.0, 0.9), "Italy": (0.97, 0.03, 0.0, 0.0, 0.0),
    "China": (0.0, 0.0, 1.0, 0.0, 0.0), "Nigeria": (0.0, 1.0, 0.0, 0.0, 0.0), "Brazil": (0.3, 0.2, 0.02, 0.0, 0.48),
    "Japan": (0.0, 0.0, 1.0, 0.0, 0.0),
}
SKIN_TONES = {    # mean skin albedo (linear RGB in [0, 1]) and individual sd of the log brightness
    "european": ((0.84, 0.64, 0.53), 0.13), "african": ((0.46, 0.31, 0.23), 0.18),
    "east_asian": ((0.84, 0.66, 0.52), 0.10), "south_asian": ((0.64, 0.46, 0.34), 0.14),
    "latin": ((0.74, 0.54, 0.41), 0.13),
}
SKIN_HUE_SD = 0.08
"""Individual sd of each channel's log reflectance around the brightness (pinkish .. olive undertones)."""
# Mild population-group shifts of face controls, in conditional sd units (keys: substrings of control names).
GROUP_FACE_SHIFT = {
    "european": {"nose_protrusion": 0.15, "nose_width": -0.1},
    "african": {"nose_width": 0.4, "nose_protrusion": -0.2, "lip_protrusion": 0.3},
    "east_asian": {"nose_protrusion": -0.3, "face_width": 0.2, "intercanthal_width": 0.2},
    "south_asian": {"nose_width": 0.1},
    "latin": {"face_width": 0.1},
}
FEATURE_CONTROLS = {   # voices.LINKED_FEATURES -> built-in model control name
    "nose_protrusion": "nose_protrusion", "nose_width": "nose_width", "mouth_width": "mouth_width",
}
AGE_RANGE = (18.0, 80.0)
P_MALE = 0.55
N_EXPRESSIONS = 4


# ---------------------------------------------------------------------------------------------------------------
# The face model (the face3d engineer's built-in model and its control sampler)
# ---------------------------------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def face_model():
    """The built-in morphable model (``voiceface.face3d.builtin``), on CPU."""
    from ..face3d import builtin

    return builtin.builtin_model()


def control_names() -> tuple[str, ...]:
    """Names of the built-in model's face controls (mm)."""
    from ..face3d import builtin

    return tuple(builtin.CONTROL_NAMES)


def sample_controls(n: int, gender, age, rng: np.random.Generator) -> np.ndarray:
    """(n, C) face controls from the model's sex- and age-specific sampler (gender, age: scalars or (n,))."""
    from ..face3d import builtin

    return np.asarray(builtin.sample_controls(n, gender, age, rng), dtype=np.float64)


def control_zscores(controls: np.ndarray, gender, age) -> np.ndarray:
    """(n, C) controls -> (n, C) z-scores under the model's gender- and age-conditional norms
    (``builtin.control_stats``): the facial information beyond gender and age."""
    from ..face3d import builtin

    mean, sd = builtin.control_stats(gender, age)
    return (np.atleast_2d(controls) - mean) / sd


@lru_cache(maxsize=1)
def _coeff_map() -> tuple[np.ndarray, np.ndarray]:
    """The built-in model's controls -> identity coefficients map is affine, coeffs = c A + b; (A (C, Ki), b (Ki,))
    read off ``builtin.controls_to_coeffs`` at 0 and at the unit vectors (one call instead of one per person)."""
    from ..face3d import builtin

    n = len(builtin.CONTROL_NAMES)
    out = np.asarray(builtin.controls_to_coeffs(np.vstack([np.zeros((1, n)), np.eye(n)])), dtype=np.float64)
    return out[1:] - out[0], out[0]


def controls_to_coeffs(controls: np.ndarray) -> np.ndarray:
    """(n, C) controls -> (n, Ki) identity coefficients in std units (Eq. 4.6; exact for the built-in model,
    whose identity space is spanned by the control fields)."""
    a, b = _coeff_map()
    return np.atleast_2d(np.asarray(controls, dtype=np.float64)) @ a + b


@lru_cache(maxsize=1)
def _am_rows() -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (65, 3) and scaled identity basis (65*3, Ki) restricted to the 65 AM landmark vertices."""
    m = face_model()
    idx = m.am_landmarks
    rows = (idx[:, None] * 3 + torch.arange(3)).reshape(-1)
    return m.mean[idx].double(), (m.id_basis[rows] * m.id_std).double()


def coeffs_to_ams(coeffs: np.ndarray) -> np.ndarray:
    """(n, Ki) identity coefficients -> (n, 94) AMs of the neutral shapes (Table 5.1), via the 65 AM landmarks
    only (Eq. 4.6 evaluated on those vertices)."""
    from ..face3d.anthropometry import measure

    mean, basis = _am_rows()
    c = torch.as_tensor(np.atleast_2d(coeffs), dtype=torch.float64)
    lm = mean + (c @ basis.T).reshape(len(c), -1, 3)
    return measure(lm).numpy()


# ---------------------------------------------------------------------------------------------------------------
# Population and ground truth
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class Population:
    """A large reference sample of the model's population, per gender, for the ground truth of the link.

    Attributes:
        names: (C,) control names.  linked: (6,) indices of the voice-linked controls (``voices.LINKED_FEATURES``).
        sample: {gender: dict(age (n,), z (n, C) conditional z-scores, ams (n, 94))}.
    """

    names: tuple[str, ...]
    linked: np.ndarray
    sample: dict[str, dict[str, np.ndarray]] = field(repr=False)

    def ground_truth(self, coupling: float) -> dict:
        """Per gender and AM of Table 5.1, how much of the AM the voice carries beyond gender and age.

        ``linked_ams`` / ``unlinked_ams``: AMs with ``r2_voice`` >= ``LINKED_R2`` (strongest first) / < ``UNLINKED_R2``.
        ``r2_voice``: R^2 of the AM given the face-dependent voice parameters (``voices.FACE_LINKED_PARAMS``:
        vocal tract length, nasal pole / zero / second pole / bandwidth, lip rounding) at ``coupling``, both
        residualised on age (quadratic) within gender: the share of the AM's within-gender, within-age variance
        that an ideal analyst who could read those parameters off the voice would explain linearly (an upper bound
        for any estimator from audio). ``r2_face_link``: the same given the six linked face z-scores themselves
        (the link's ceiling at coupling 1). ``r2_age``: R^2 of the AM given age alone. ``corr``: correlation of
        the AM with each linked face feature.
        """
        from ..face3d.anthropometry import AM_NAMES

        out = {}
        rng = np.random.default_rng(POPULATION_SEED + 1)
        for g, smp in self.sample.items():
            n = len(smp["age"])
            z = linked_face_z(smp["z"])
            x = _age_design(smp["age"])
            va = voices.voice_param_arrays(np.full(n, g), smp["age"], z,
                                           rng.standard_normal((n, voices.N_VOICE_NOISE)), coupling)
            params = np.stack([va[f] for f in voices.FACE_LINKED_PARAMS], -1)                # (n, 6)
            ams = _residual(x, smp["ams"])
            var = np.maximum((ams ** 2).mean(0), 1e-12)
            r2_voice = _r2(_residual(x, params), ams, var)
            r2_face = _r2(_residual(x, z), ams, var)
            r2_age = 1.0 - var / np.maximum(smp["ams"].var(0), 1e-12)
            zc = z - z.mean(0)
            corr = (zc.T @ ams / n) / np.sqrt(var) / zc.std(0)[:, None]
            rnd = lambda a: dict(zip(AM_NAMES, np.round(a, 4).tolist()))  # noqa: E731
            order = np.argsort(-r2_voice, kind="stable")
            out[g] = {"linked_ams": [AM_NAMES[i] for i in order if r2_voice[i] >= LINKED_R2],
                      "unlinked_ams": [AM_NAMES[i] for i in range(len(AM_NAMES)) if r2_voice[i] < UNLINKED_R2],
                      "r2_voice": rnd(r2_voice), "r2_face_link": rnd(r2_face), "r2_age": rnd(r2_age),
                      "corr": {f: rnd(corr[k]) for k, f in enumerate(voices.LINKED_FEATURES)}}
        return out


def _residual(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """y minus its least-squares fit on the design x (with intercept in x)."""
    return y - x @ np.linalg.lstsq(x, y, rcond=None)[0]


def _r2(pred: np.ndarray, y: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Adjusted R^2 of each column of centred y (n, A) regressed on centred predictors (n, k)."""
    n, k = pred.shape
    fit = pred @ np.linalg.lstsq(pred, y, rcond=None)[0]
    r2 = 1.0 - ((y - fit) ** 2).mean(0) / var
    return np.clip(1.0 - (1.0 - r2) * (n - 1) / (n - k - 1), 0.0, 1.0)


def _age_design(age: np.ndarray) -> np.ndarray:
    a = (np.asarray(age, dtype=float) - 45.0) / 20.0
    return np.stack([np.ones_like(a), a, a ** 2], -1)                         # (n, 3)


@lru_cache(maxsize=1)
def _specific_map() -> np.ndarray:
    """(C, 3) map from all controls' z-scores to the *specific* parts of the linked controls: each linked z minus
    its regression on all other controls (under the model's factor correlation ``builtin.control_correlation``),
    rescaled to unit variance. The shared factors (overall size, vertical / horizontal proportions) load on most
    AMs; linking the voice to the specific parts keeps the voice-predictable AMs to the nose and mouth ones."""
    from ..face3d import builtin

    r = builtin.control_correlation()
    names, linked = _linked_controls()
    out = np.zeros((len(names), len(linked)))
    for j, k in enumerate(linked):
        rest = np.delete(np.arange(len(names)), k)
        beta = np.linalg.solve(r[np.ix_(rest, rest)], r[rest, k])                    # (C-1,)
        out[k, j] = 1.0
        out[rest, j] = -beta
        out[:, j] /= np.sqrt(1.0 - r[k, rest] @ beta)
    return out


def linked_face_z(z: np.ndarray) -> np.ndarray:
    """(n, C) within-covariate z-scores of all controls -> (n, 3) the voice-linked features (``FEATURE_CONTROLS``,
    specific parts: ``_specific_map``), unit variance and independent of the shared face factors."""
    return np.atleast_2d(z) @ _specific_map()


def _resolve_linked(names: tuple[str, ...]) -> np.ndarray:
    idx = []
    for feat in voices.LINKED_FEATURES:
        want = FEATURE_CONTROLS[feat]
        if want not in names:
            raise RuntimeError(f"the built-in face model has no control '{want}' for '{feat}'")
        idx.append(names.index(want))
    return np.array(idx)


POPULATION_SEED = 20221
LINKED_R2 = 0.1
"""AMs with ``r2_voice`` at least this are listed as voice-linked in the ground truth (strongest first)."""
UNLINKED_R2 = 0.02
"""AMs with ``r2_voice`` below this are listed as unlinked."""
POPULATION_PER_GENDER = 3000


@lru_cache(maxsize=2)
def population(n_per_gender: int = POPULATION_PER_GENDER) -> Population:
    """The reference population (deterministic: fixed seed ``POPULATION_SEED``; a fraction of a second)."""
    names, linked = _linked_controls()
    rng = np.random.default_rng(POPULATION_SEED)
    sample = {}
    for g in "mf":
        age = sample_ages(rng, n_per_gender)
        ctrl = sample_controls(n_per_gender, g, age, rng)
        sample[g] = {"age": age, "z": control_zscores(ctrl, g, age), "ams": coeffs_to_ams(controls_to_coeffs(ctrl))}
    return Population(names, linked, sample)


# ---------------------------------------------------------------------------------------------------------------
# People
# ---------------------------------------------------------------------------------------------------------------

def sample_ages(rng: np.random.Generator, n: int) -> np.ndarray:
    """Adult ages skewed young like a celebrity corpus: 18 + 62 * Beta(2.2, 3.4) (mean ~42)."""
    return AGE_RANGE[0] + (AGE_RANGE[1] - AGE_RANGE[0]) * rng.beta(2.2, 3.4, n)


def sample_nationality(rng: np.random.Generator) -> str:
    p = np.array([w for _, w in NATIONALITIES])
    return NATIONALITIES[int(rng.choice(len(p), p=p / p.sum()))][0]


@dataclass
class Person:
    """One identity of the world.

    Attributes:
        identity: id string (``sim00001``).  gender: 'm' | 'f'.  age: years.  nationality, group: strings.
        controls: (C,) built-in model face controls.  face_z: (6,) within-gender-and-age z-scores of the
        voice-linked controls (``voices.LINKED_FEATURES``).  voice_noise: (``voices.N_VOICE_NOISE``,) N(0, 1).
        id_coeffs: (Ki,) identity coefficients.  skin_rgb: (3,) mean skin albedo.  albedo_coeffs: (Ka,) or (0,).
        expressions: (N_EXPRESSIONS, Ke) expression repertoire (std units).  seed: the person's integer seed.
        look: hair, facial hair, brows, lip colour (``looks.Look``, gender-dependent); None = the model's plain
        albedo.
    """

    identity: str
    gender: str
    age: float
    nationality: str
    group: str
    controls: np.ndarray
    face_z: np.ndarray
    voice_noise: np.ndarray
    id_coeffs: np.ndarray
    skin_rgb: np.ndarray
    albedo_coeffs: np.ndarray
    expressions: np.ndarray
    seed: int
    look: looks.Look | None = None

    def albedo(self) -> torch.Tensor:
        """(V, 3) per-vertex reflectance: the model's mean albedo recoloured to this person's skin, plus their
        albedo-basis variation, clipped to [0.02, 1], with their look painted on (``looks.apply_look``)."""
        m = face_model()
        base = m.albedo_mean.double()
        if m.num_albedo and len(self.albedo_coeffs):
            base = m.albedo(torch.as_tensor(self.albedo_coeffs[None], dtype=torch.float32))[0].double()
        ref = m.albedo_mean.double().median(0).values.clamp_min(1e-3)
        alb = (base * torch.as_tensor(self.skin_rgb, dtype=torch.float64) / ref).clamp(0.02, 1.0).float()
        return alb if self.look is None else looks.apply_look(alb, self.look, self.skin_rgb)

    def neutral_shape(self) -> torch.Tensor:
        """(V, 3) neutral face (Eq. 4.6 with zero expression)."""
        return face_model().shape(torch.as_tensor(self.id_coeffs[None], dtype=torch.float32))[0]

    def voice(self, coupling: float, age_cue: float = 0.0) -> voices.VoiceParams:
        """This person's voice at ``coupling`` and ``age_cue`` (``voices.voice_params_from_person``)."""
        return voices.voice_params_from_person(self, coupling, age_cue)


def _albedo_names() -> list[str]:
    from ..face3d import builtin

    return list(builtin.ALBEDO_NAMES)


def _control_sd(gender: str, age: float) -> np.ndarray:
    from ..face3d import builtin

    return builtin.control_stats(gender, age)[1][0]


@lru_cache(maxsize=1)
def _linked_controls() -> tuple[tuple[str, ...], np.ndarray]:
    names = control_names()
    return names, _resolve_linked(names)


def assign_genders(n: int, seed) -> list[str]:
    """Genders of a world's n people: exactly round(P_MALE * n) men, in a seeded random order (a stratified draw,
    so that small worlds keep the population's gender balance)."""
    male = np.zeros(n, dtype=bool)
    male[np.random.default_rng(np.random.SeedSequence([int(seed), 11])).permutation(n)[:round(P_MALE * n)]] = True
    return ["m" if m else "f" for m in male]


def make_person(identity: str, seed: np.random.SeedSequence | int, gender: str | None = None) -> Person:
    """Draw one person deterministically from ``seed`` (an int or a ``numpy.random.SeedSequence``); ``gender``
    ('m' | 'f') fixes the gender instead of drawing it (P(male) = ``P_MALE``)."""
    names, linked = _linked_controls()
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    rng = np.random.default_rng(ss)
    drawn = "m" if rng.random() < P_MALE else "f"
    gender = drawn if gender is None else gender
    age = float(sample_ages(rng, 1)[0])
    nationality = sample_nationality(rng)
    gp = np.array(_NAT_GROUPS[nationality])
    group = GROUPS[int(rng.choice(len(GROUPS), p=gp / gp.sum()))]
    ctrl = sample_controls(1, gender, age, rng)[0]
    shift = np.zeros(len(names))
    for key, v in GROUP_FACE_SHIFT[group].items():
        shift[names.index(key)] += v
    ctrl = ctrl + shift * _control_sd(gender, age)
    z = control_zscores(ctrl, gender, age)[0]
    m = face_model()
    tone, sd = SKIN_TONES[group]
    skin = np.asarray(tone) * np.exp(sd * rng.standard_normal() + SKIN_HUE_SD * rng.standard_normal(3))
    alb = rng.standard_normal(m.num_albedo) * 0.8 if m.num_albedo else np.zeros(0)
    names_a = _albedo_names()[:m.num_albedo]
    if "skin_lightness" in names_a:
        alb[names_a.index("skin_lightness")] = 0.0     # skin_rgb sets the skin lightness instead
    # expressions: a personal expressiveness scales zero-mean draws; the first is always neutral-ish
    ke = m.num_expression
    expr = rng.standard_normal((N_EXPRESSIONS, ke)) * rng.uniform(0.5, 1.3) if ke else np.zeros((N_EXPRESSIONS, 0))
    if ke:
        expr[0] *= 0.15
    voice_noise = rng.standard_normal(voices.N_VOICE_NOISE)
    look = looks.sample_look(rng, gender, age, group)
    return Person(identity=identity, gender=gender, age=age, nationality=nationality, group=group, controls=ctrl,
                  face_z=linked_face_z(z)[0], voice_noise=voice_noise,
                  id_coeffs=controls_to_coeffs(ctrl[None])[0], skin_rgb=np.clip(skin, 0.03, 1.0),
                  albedo_coeffs=alb, expressions=expr, seed=int(ss.generate_state(1)[0]), look=look)


def person_row(p: Person, coupling: float, age_cue: float = 0.0) -> dict:
    """Flat people.csv row: covariates, skin, voice parameters (``voice_*``), face controls (``ctrl_*``)."""
    row = {"identity": p.identity, "gender": p.gender, "age": round(p.age, 2), "nationality": p.nationality,
           "group": p.group, "skin_r": round(float(p.skin_rgb[0]), 4), "skin_g": round(float(p.skin_rgb[1]), 4),
           "skin_b": round(float(p.skin_rgb[2]), 4)}
    row.update({f"voice_{k}": round(v, 5) for k, v in p.voice(coupling, age_cue).to_dict().items()})
    row.update({f"facez_{f}": round(float(v), 5) for f, v in zip(voices.LINKED_FEATURES, p.face_z)})
    row.update({f"ctrl_{n}": round(float(v), 5) for n, v in zip(control_names(), p.controls)})
    if p.look is not None:
        row.update(p.look.row())
    return row
