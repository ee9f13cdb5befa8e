"""A source-filter speech synthesiser for the simulated world, with an explicit, documented link to the face.

Why: the thesis's methods (Ch. 2-5) learn voice -> face associations from paired corpora; in the simulated world we
*know* which facial parameters the voice carries (Sec. 5.2.2's question "which AMs are predictable from voice" has a
ground truth). This module produces babbled speech (no words) whose acoustics follow from a person's covariates and
face, by the classic source-filter model of speech production:

* **Source**: a Rosenberg glottal pulse train (its time derivative, which folds in lip radiation) driven by an F0
  contour with the speaker's phrase declination, pitch accents on stressed syllables and phrase-final fall or rise;
  cycle-to-cycle jitter (period) and shimmer (amplitude); aspiration noise gated by the glottal flow (breathiness);
  vocal fry (irregular, alternating low-F0 pulses) at phrase ends.
* **Vocal tract**: five cascaded formant resonators (second-order digital resonators, Klatt 1980) whose frequencies
  are the phone's vowel targets scaled by the speaker's vocal tract length L (a uniform tube closed at the glottis has
  F_n = (2n - 1) c / 4L, so all formants scale as 1/L), times the speaker's formant dispersion offsets; rounded phones
  lower F1-F3 by the speaker's lip rounding range.
* **Nasal branch**: a pole-zero pair (nasal resonance and anti-resonance) plus a second nasal pole, switched in fully
  for nasal consonants and partly for vowels next to them (and slightly everywhere, the speaker's nasality).
* **Phones**: vowels, approximants, nasals, fricatives (shaped noise), stops (closure, burst, aspiration) in random
  (C)(C)V(C) syllables grouped into phrases separated by pauses; coarticulation by smoothing the target tracks.
* **Session**: level, channel colour (random smooth EQ with band limits), room reverberation (exponentially decaying
  noise impulse response, random RT60) and background noise (pink-ish) at a chosen SNR.

Vectorised per utterance: sources are generated at the sample rate with numpy, the time-varying filters are applied
as per-frame complex frequency responses in the STFT domain (``scipy.signal.stft``/``istft``, 32 ms windows,
8 ms hop), so there is no Python loop over samples or frames; the only loop is over phones when building targets.

The face -> voice link (``voice_params_from_person``), with z-scores of facial controls taken *within* the person's
gender and age (covariate-conditional) and reduced to their *specific* parts (each control's z minus its regression
on all other controls, rescaled: ``voiceface.sim.people.linked_face_z``), so the voice carries no shared face factor
such as overall size, and ``coupling`` c in [0, 1]::

    F0 level, range, contour habits   <- gender, age, nationality (+ identity traits)  [no facial information]
    vocal tract L                     <- gender, age (+ identity traits)   [no facial information]
    accent                            <- nationality: vowel formant table, vowel preferences, rate, pauses,
                                         F0 range, declination, final movement, accent peak  [no facial information]
    ageing                            <- age: F0 (women lower, men over 60 higher), longer tract (lower formants),
                                         jitter, shimmer, breathiness, creak, darker source, vocal tremor, slower
                                         rate, longer pauses                                 [no facial information]
    speaking-rate habit               <- identity, and age by ``age_cue``     [no facial information]
    nasal pole/zero/bandwidth         <- nose protrusion (women only), nose width  [+ identity noise]
    lip rounding                      <- mouth width                               [+ identity noise]
    effect sizes per gender: LINK_GAIN (women's nose and mouth reach the voice more strongly, as in the thesis)
    identity traits (no face info): formant dispersion, a per-vowel formant table and a vowel-space expansion,
    formant bandwidths, F5, piriform and subglottal resonances, tilt, open quotient, glottal pulse skew (speed
    quotient), breathiness, vocal fry, jitter, shimmer, nasality, rate, vowel share, pause habit, preferred vowels,
    declination, final rise/fall, accent timing, a smooth long-term spectral envelope offset above 2 kHz
    (nasal and lip effects, face-linked and identity parts alike, are scaled by NASAL_CUE_SCALE / LIP_CUE_SCALE so
    they stay audible beside the identity traits; the scaling leaves each parameter's face share unchanged)

    each face z used by the voice is  z_eff = c * z + sqrt(1 - c^2) * e,  e ~ N(0, 1) independent of the face,

so at c = 0 the voice depends on gender and age only (the face-derived parts are their covariate-conditional means
plus independent noise of the same variance) and at c = 1 the link is as strong as the mapping allows. The effect
sizes (per sd of each z) are in ``_face_linked_params``. The identity traits are strong enough that a pretrained
speaker encoder (GE2E) recognises a voice across recording sessions.
"""
from __future__ import annotations

import os
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

SAMPLE_RATE = 16000
SPEED_OF_SOUND_CM = 35000.0
"""Speed of sound in warm, humid air (cm/s)."""

NPERSEG = 512
HOP = 128
_NFREQ = NPERSEG // 2 + 1
_FREQS = np.fft.rfftfreq(NPERSEG, 1.0 / SAMPLE_RATE)            # (257,)
_ZINV = np.exp(-2j * np.pi * _FREQS / SAMPLE_RATE).astype(np.complex64)   # (257,) z^-1 on the unit circle
_ZINV2 = _ZINV ** 2

LINKED_FEATURES = ("nose_protrusion", "nose_width", "mouth_width")
"""Facial features (within-covariate z-scores, specific parts: see ``voiceface.sim.people.FEATURE_CONTROLS``) the
voice depends on, in the order of ``VoiceParams.face_z``."""

# Standard-normal draws a person carries for the voice (``Person.voice_noise``); indices into that vector.
N_VOICE_NOISE = 28
_NOISE = {
    "f0": 0, "vtl": 1, "tilt": 2, "rate": 3, "f0_range": 4, "jitter": 5, "shimmer": 6, "breath": 7,
    "disp1": 8, "disp2": 9, "disp3": 10, "disp4": 11, "nasality": 12, "oq": 13,
    # 14..16: independent replacements e for the three linked face z-scores (used when coupling < 1)
    "replace": 14,
    # 20..24: identity-specific (non-facial) parts of the nasal and lip parameters (internal nasal cavity, habits)
    "pole_id": 20, "zero_id": 21, "pole2_id": 22, "bw_id": 23, "lip_id": 24,
}
_TRAIT_DIMS = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 18, 19, 25, 26, 27])
"""The purely identity-level draws (never face-linked, never a face replacement) that seed the extended traits."""
N_TRAITS = 57
_TRAIT_MIX = np.linalg.qr(np.random.default_rng(20230517).standard_normal((N_TRAITS, N_TRAITS)))[0][:, :len(_TRAIT_DIMS)]
_TRAIT_MIX = _TRAIT_MIX / np.linalg.norm(_TRAIT_MIX, axis=1, keepdims=True)
"""(N_TRAITS, 19) fixed mixing (constant seed): extended identity traits = unit-variance linear mixes of the
identity draws, so a person's many habits (vowel-space table, prosody habits, ...) follow from ``voice_noise``."""
N_ENVELOPE = 6
_ENV_MIX = np.random.default_rng(20240611).standard_normal((N_ENVELOPE, len(_TRAIT_DIMS)))
_ENV_MIX = _ENV_MIX / np.linalg.norm(_ENV_MIX, axis=1, keepdims=True)
"""(N_ENVELOPE, 19) fixed mixing (constant seed) of the identity draws into the coefficients of the speaker's
long-term spectral envelope offset (``VoiceParams.envelope_db``); a separate matrix so the older traits keep their
values."""
ENVELOPE_SD_DB = 6.0
"""Sd (dB) of each envelope coefficient (cosine basis over log frequency, ``_envelope_gain``)."""
ENV_LO_HZ = 2000.0
"""Lower edge (Hz) of the speaker's spectral envelope offset (``_envelope_gain``)."""
N_EXTRA = 6
_EXTRA_MIX = np.random.default_rng(20261130).standard_normal((N_EXTRA, len(_TRAIT_DIMS)))
_EXTRA_MIX = _EXTRA_MIX / np.linalg.norm(_EXTRA_MIX, axis=1, keepdims=True)
"""(N_EXTRA, 19) fixed mixing (constant seed) of the identity draws into further habits: glottal speed quotient,
vowel-space expansion of F1 and of F2, (unused), vocal tremor rate and extent (see ``_identity_params``); numpy
fills the matrix row by row, so adding rows keeps the earlier ones."""
NASAL_CUE_SCALE = 1.8
LIP_CUE_SCALE = 1.4
"""Multipliers of all log-frequency effects on the nasal resonances and of the lip-rounding effects (face-linked and
identity parts alike, so the share of each parameter's variance that comes from the face, hence the ground truth,
is unchanged): keeps the nasal/lip cues audible beside the stronger identity traits."""
ACCENT_SEED = 61
"""Seed base of the per-nationality accents (``_accent_arrays``): seeded by ``ACCENT_SEED`` and the CRC32 of the
nationality's name, so an accent does not depend on which other nationalities exist."""
LINK_GAIN = {"m": (0.0, 0.8, 0.8), "f": (0.45, 0.9, 0.9)}
"""Gender-dependent strength of the face link per linked feature (``LINKED_FEATURES`` order; multiplies the per-sd
effect sizes in ``_face_linked_params``): women's nose and mouth are more predictable from voice, as the thesis
finds; men's nose protrusion does not reach the voice."""
FACE_LINKED_PARAMS = ("nasal_pole_hz", "nasal_zero_hz", "nasal_pole2_hz", "nasal_bw_hz", "lip_rounding")
"""The ``VoiceParams`` fields that depend on the face (and, except lip rounding, also on non-facial traits)."""

# ---------------------------------------------------------------------------------------------------------------
# Phone inventory. Vowel formant targets (Hz) F1-F4 for a reference vocal tract of 17.5 cm (adult male averages
# in the style of Peterson & Barney 1952 / Hillenbrand et al. 1995); other tract lengths scale them by 17.5 / L.
# ---------------------------------------------------------------------------------------------------------------
REF_VTL_CM = 17.5
_VOWELS = {          # F1,   F2,   F3,   F4, rounded
    "i": (270, 2290, 3010, 3700, 0.0),
    "I": (390, 1990, 2550, 3600, 0.0),
    "e": (420, 2050, 2650, 3600, 0.0),
    "E": (530, 1840, 2480, 3500, 0.0),
    "ae": (660, 1720, 2410, 3500, 0.0),
    "a": (730, 1090, 2440, 3400, 0.0),
    "O": (570, 840, 2410, 3300, 1.0),
    "o": (450, 800, 2600, 3400, 1.0),
    "U": (440, 1020, 2240, 3300, 1.0),
    "u": (300, 870, 2240, 3300, 1.0),
    "@": (500, 1500, 2500, 3500, 0.0),
}
_APPROX = {          # approximants: vowel-like, weaker
    "l": (360, 1300, 2700, 3600, 0.0),
    "r": (350, 1200, 1650, 3300, 0.5),
    "w": (300, 700, 2200, 3300, 1.0),
    "j": (280, 2200, 3000, 3700, 0.0),
}
_NASALS = {          # oral formants during the murmur (damped), oral anti-resonance of the closed mouth branch
    "m": (260, 1100, 2300, 3400, 0.0, 1000.0),
    "n": (260, 1600, 2600, 3500, 0.0, 1600.0),
    "N": (260, 2000, 2700, 3500, 0.0, 2800.0),
}
_FRICATIVES = {      # centre (Hz), bandwidth (Hz), level (linear), voiced
    "s": (5800.0, 3000.0, 0.55, False),
    "S": (3200.0, 2200.0, 0.55, False),
    "f": (4500.0, 7000.0, 0.15, False),
    "T": (5000.0, 6000.0, 0.12, False),
    "z": (5800.0, 3000.0, 0.30, True),
    "v": (4500.0, 7000.0, 0.10, True),
    "h": (0.0, 0.0, 0.0, False),          # aspiration through the vocal tract of the next vowel
}
_STOPS = {           # burst centre (Hz), burst bandwidth, voiced
    "p": (900.0, 2500.0, False), "t": (4200.0, 3500.0, False), "k": (2200.0, 1800.0, False),
    "b": (900.0, 2500.0, True), "d": (4200.0, 3500.0, True), "g": (2200.0, 1800.0, True),
}
_ONSETS = ["p", "t", "k", "b", "d", "g", "m", "n", "s", "S", "f", "T", "z", "v", "h", "l", "r", "w", "j"]
_ONSET_P = np.array([6, 9, 7, 5, 6, 3, 6, 6, 8, 3, 4, 2, 3, 3, 4, 6, 6, 4, 2], dtype=float)
_CODAS = ["n", "m", "N", "s", "t", "k", "l", "r", "d", "z", "f"]
_CODA_P = np.array([7, 4, 2, 7, 7, 4, 5, 5, 3, 4, 2], dtype=float)
_VOWEL_NAMES = list(_VOWELS)
_VOWEL_P = np.array([8, 9, 6, 7, 6, 8, 4, 5, 3, 4, 10], dtype=float)


@dataclass(frozen=True)
class VoiceParams:
    """One speaker's voice (identity level). All the synthesiser needs; built by ``voice_params_from_person``.

    Attributes:
        f0_hz: median fundamental frequency (Hz).
        f0_range_st: standard size of pitch accents (semitones).
        vtl_cm: vocal tract length (cm); formants scale as ``REF_VTL_CM / vtl_cm``.
        formant_offsets: (4,) multiplicative offsets of F1-F4 (formant dispersion, identity trait, no face info).
        nasal_pole_hz: first nasal resonance (Hz).
        nasal_zero_hz: nasal anti-resonance (Hz).
        nasal_pole2_hz: second nasal resonance (Hz).
        nasal_bw_hz: bandwidth of the nasal resonances (Hz).
        nasality: baseline velopharyngeal coupling of vowels in [0, 1].
        lip_rounding: fraction by which fully rounded phones lower F1-F3 (from mouth width).
        tilt_db_oct: extra spectral tilt of the source (dB/octave, negative = darker).
        rate_syl_s: speaking rate (syllables per second).
        jitter: cycle-to-cycle relative period perturbation (sd).
        shimmer: cycle-to-cycle relative amplitude perturbation (sd).
        breathiness: aspiration noise level relative to voicing.
        open_quotient: glottal open quotient in (0.3, 0.9).
        face_z: (3,) effective face z-scores used (``LINKED_FEATURES`` order), for the record.
        formant_bw_scale: multiplier of the formant bandwidths (wall losses, glottal damping).
        f5_offset: multiplier of the fifth formant (hypopharynx / laryngeal cavity, a stable speaker cue).
        piriform_hz, piriform_depth: anti-resonance of the piriform fossae (Hz) and its depth in [0, 1].
        subglottal_hz, subglottal_depth: (3,) subglottal resonances (Hz), coupled to the tract as fixed pole-zero
            pairs of the given strength in [0, 1].
        vowel_offsets: (33,) per-vowel multipliers of F1-F3 (the speaker's own vowel space; vowel-major order of
            the phone inventory's vowels).
        vowel_pref: (11,) log-weight offsets of the vowels' frequencies (an accent's preferred vowels).
        decl_st_s: F0 declination within a phrase (semitones per second, negative = falling).
        final_st: phrase-final F0 movement (semitones; negative = fall, positive = rise).
        accent_peak: position of the pitch-accent peak within the stressed vowel (-1 early .. 1 late).
        creak: strength of phrase-final vocal fry in [0, 1].
        pause_scale: multiplier of pause durations.  vowel_share: vowel share of a syllable's duration.
        envelope_db: (N_ENVELOPE,) coefficients (dB) of the speaker's smooth long-term spectral envelope offset
            (resonance and voice-quality habits; cosine basis over log frequency ``ENV_LO_HZ`` - 8 kHz).
        speed_quotient: opening phase's share of the open phase of the glottal pulse (pulse skew; the rest is
            the closing phase, whose speed sets the source's high-frequency energy).
        tremor_hz, tremor_st: rate (Hz) and extent (semitones, peak) of the speaker's vocal tremor, a slow
            periodic wobble of F0 and loudness that grows with age.
    """

    f0_hz: float
    f0_range_st: float
    vtl_cm: float
    formant_offsets: tuple[float, float, float, float]
    nasal_pole_hz: float
    nasal_zero_hz: float
    nasal_pole2_hz: float
    nasal_bw_hz: float
    nasality: float
    lip_rounding: float
    tilt_db_oct: float
    rate_syl_s: float
    jitter: float
    shimmer: float
    breathiness: float
    open_quotient: float
    face_z: tuple[float, ...] = field(default=(0.0,) * len(LINKED_FEATURES))
    formant_bw_scale: float = 1.0
    f5_offset: float = 1.0
    piriform_hz: float = 4800.0
    piriform_depth: float = 0.0
    subglottal_hz: tuple[float, ...] = field(default=(600.0, 1450.0, 2300.0))
    subglottal_depth: float = 0.0
    vowel_offsets: tuple[float, ...] = field(default=(1.0,) * 33)
    vowel_pref: tuple[float, ...] = field(default=(0.0,) * 11)
    decl_st_s: float = -1.8
    final_st: float = -2.5
    accent_peak: float = 0.0
    creak: float = 0.0
    pause_scale: float = 1.0
    vowel_share: float = 0.45
    envelope_db: tuple[float, ...] = field(default=(0.0,) * N_ENVELOPE)
    speed_quotient: float = 0.75
    tremor_hz: float = 5.0
    tremor_st: float = 0.0

    def to_dict(self) -> dict[str, float]:
        """Flat dict for tables (people.csv): tuples become ``name_i`` columns."""
        out: dict[str, float] = {}
        for k, v in asdict(self).items():
            if isinstance(v, (tuple, list)):
                names = LINKED_FEATURES if k == "face_z" else range(1, len(v) + 1)
                out.update({f"{k}_{n}": float(x) for n, x in zip(names, v)})
            else:
                out[k] = float(v)
        return out


@dataclass(frozen=True)
class SessionParams:
    """One recording session's channel: level, colour, room, noise.

    Attributes:
        level_dbfs: RMS level of the speech (dBFS).
        snr_db: speech-to-background-noise ratio (dB).
        rt60_s: reverberation time (s); 0 = dry.
        wet: reverberant energy relative to the direct path.
        eq_db: (8,) channel EQ gains (dB) at log-spaced frequencies 100 Hz - 7 kHz (smoothly interpolated).
        highpass_hz, lowpass_hz: band limits of the channel.
        noise_tilt: background noise spectral slope (0 white, 1 pink, 2 brown).
    """

    level_dbfs: float = -26.0
    snr_db: float = 30.0
    rt60_s: float = 0.0
    wet: float = 0.0
    eq_db: tuple[float, ...] = (0.0,) * 8
    highpass_hz: float = 60.0
    lowpass_hz: float = 7600.0
    noise_tilt: float = 1.0


def sample_session(rng: np.random.Generator, snr_db: tuple[float, float] = (15.0, 40.0),
                   rt60_s: tuple[float, float] = (0.0, 0.6), eq_sd_db: float = 1.0) -> SessionParams:
    """Draw a random recording session (uniform SNR and RT60 in the given ranges, Gaussian EQ gains).

    As in interview-style recordings (VoxCeleb): a near microphone (reverberant energy 0.6-6 % of the direct path,
    i.e. a direct-to-reverberant ratio of 12-22 dB) and ambient noise whose spectrum falls by 4.5-7.5 dB per octave
    (``noise_tilt`` 1.5-2.5, room and traffic noise as in the NC curves), not white noise."""
    rt60 = float(rng.uniform(*rt60_s))
    return SessionParams(
        level_dbfs=float(rng.uniform(-32.0, -20.0)),
        snr_db=float(rng.uniform(*snr_db)),
        rt60_s=rt60,
        wet=float(rng.uniform(0.006, 0.06)) if rt60 > 0.05 else 0.0,
        eq_db=tuple(float(g) for g in rng.normal(0.0, eq_sd_db, 8)),
        highpass_hz=float(rng.uniform(40.0, 150.0)),
        lowpass_hz=float(rng.uniform(6000.0, 7900.0)),
        noise_tilt=float(rng.uniform(1.5, 2.5)),
    )


# ---------------------------------------------------------------------------------------------------------------
# The face -> voice link
# ---------------------------------------------------------------------------------------------------------------

def f0_mean_hz(gender, age):
    """Population median F0 given gender ('m'|'f', or an array of them) and age (years): ~118 Hz for young men,
    ~210 Hz for young women; women's F0 falls with age after 30 (~35 Hz by 70), men's falls by ~9 Hz to 55 and
    rises after 60 (~+28 Hz by 80), the pattern of the cross-sectional studies of adult F0."""
    female = np.asarray(gender) == "f"
    age = np.asarray(age, dtype=np.float64)
    male_f0 = 118.0 - 0.3 * np.clip(age - 25.0, 0.0, 30.0) + 1.4 * np.maximum(age - 60.0, 0.0)
    out = np.where(female, 210.0 - 0.9 * np.maximum(age - 30.0, 0.0), male_f0)
    return float(out) if out.ndim == 0 else out


def vtl_mean_cm(gender, age):
    """Population mean vocal tract length (cm) given gender and age (~17.0 cm men, ~14.6 cm women at 35; growth
    with age as the larynx descends, ~+6 % by 80, so older voices have lower formants)."""
    base = np.where(np.asarray(gender) == "m", 17.0, 14.6)
    out = base * (1.0 + 0.0013 * (np.asarray(age, dtype=np.float64) - 35.0))
    return float(out) if out.ndim == 0 else out


def voice_params_from_person(person, coupling: float = 1.0, age_cue: float = 0.0) -> VoiceParams:
    """The documented face -> voice mapping (module docstring), deterministic given the person.

    Args:
        person: any object with ``gender`` ('m'|'f'), ``age`` (years), ``face_z`` (6,) within-covariate z-scores of
            ``LINKED_FEATURES`` and ``voice_noise`` (``N_VOICE_NOISE``,) independent standard normal draws (the
            person's voice identity; ``voiceface.sim.people.Person`` has them); an optional ``nationality`` adds
            that nationality's accent (``_accent``).
        coupling: c in [0, 1]; each face z-score the voice uses is ``c z + sqrt(1 - c^2) e`` with ``e`` from the
            person's ``voice_noise`` (independent of the face), so marginal distributions do not depend on c.
        age_cue: a in [0, 1], how closely the speaking rate follows age (``_rate_deviation``; 1 in the world
            presets, 0 here by default).
    Returns:
        ``VoiceParams``.
    """
    z = np.asarray(person.face_z, dtype=np.float64)
    e = np.asarray(person.voice_noise, dtype=np.float64)
    if z.shape != (len(LINKED_FEATURES),) or e.shape != (N_VOICE_NOISE,):
        raise ValueError(f"person needs face_z ({len(LINKED_FEATURES)},) and voice_noise ({N_VOICE_NOISE},)")
    nat = getattr(person, "nationality", None)
    a = voice_param_arrays(np.array([person.gender]), np.array([float(person.age)]), z[None], e[None], coupling,
                           None if nat is None else np.array([nat]), age_cue)
    return VoiceParams(**{k: (tuple(float(x) for x in v[0]) if v.ndim == 2 else float(v[0])) for k, v in a.items()})


def voice_param_arrays(gender: np.ndarray, age: np.ndarray, face_z: np.ndarray, voice_noise: np.ndarray,
                       coupling: float, nationality: np.ndarray | None = None, age_cue: float = 0.0
                       ) -> dict[str, np.ndarray]:
    """``voice_params_from_person`` for n people at once: gender (n,) 'm'|'f', age (n,), face_z (n, 3),
    voice_noise (n, N_VOICE_NOISE), nationality (n,) names or None (no accent), age_cue in [0, 1] ->
    {VoiceParams field: (n,) or (n, k) array}."""
    for name, v in (("coupling", coupling), ("age_cue", age_cue)):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {v}")
    e = np.asarray(voice_noise, dtype=np.float64).T                               # (N_VOICE_NOISE, n)
    k = len(LINKED_FEATURES)
    r = _NOISE["replace"]
    ze = coupling * np.asarray(face_z, dtype=np.float64).T + np.sqrt(max(1.0 - coupling ** 2, 0.0)) * e[r:r + k]
    female = (np.asarray(gender) == "f").astype(np.float64)
    out = _face_linked_params(ze, e, female)
    out.update(_identity_params(gender, age, e, female, age_cue))
    _apply_accent(out, nationality)
    out["face_z"] = ze.T
    return out


def _face_linked_params(ze: np.ndarray, e: np.ndarray, female: np.ndarray) -> dict[str, np.ndarray]:
    """Nasal branch and lip rounding from the linked face z-scores ze (3, n) (``LINKED_FEATURES`` order) and the
    identity draws e (N_VOICE_NOISE, n), with the gender-dependent link strengths ``LINK_GAIN``."""
    gain = np.where(female[:, None] > 0, np.asarray(LINK_GAIN["f"]), np.asarray(LINK_GAIN["m"])).T     # (3, n)
    npr, nw, mw = ze * gain
    # a more protruding nose (longer nasal passage) lowers the nasal resonances, wider nostrils move the
    # anti-resonance and second resonance up and broaden the resonances (more open, more damped); the internal
    # nasal cavity adds identity-specific variation
    k = NASAL_CUE_SCALE
    pole = 280.0 * np.exp(k * (-0.14 * npr + 0.1 * e[_NOISE["pole_id"]]))
    pole2 = 1050.0 * np.exp(k * (-0.09 * npr + 0.09 * nw + 0.1 * e[_NOISE["pole2_id"]]))
    zero = 720.0 * np.exp(k * (0.22 * nw + 0.18 * e[_NOISE["zero_id"]]))
    bw = 110.0 * np.exp(k * (0.22 * nw + 0.22 * e[_NOISE["bw_id"]]))
    # lip rounding range: a wider mouth rounds/protrudes further, lowering rounded phones' formants more
    rounding = np.clip(0.16 + LIP_CUE_SCALE * (0.06 * mw + 0.05 * e[_NOISE["lip_id"]]), 0.0, 0.45)
    return {"nasal_pole_hz": pole, "nasal_zero_hz": zero, "nasal_pole2_hz": pole2, "nasal_bw_hz": bw,
            "lip_rounding": rounding}


def _identity_params(gender, age, e: np.ndarray, female: np.ndarray, age_cue: float = 0.0
                     ) -> dict[str, np.ndarray]:
    """Everything but the face link and the accent: gender, age and the person's identity draws e (N_VOICE_NOISE, n),
    expanded by ``_TRAIT_MIX`` into N_TRAITS unit-variance habits t (N_TRAITS, n) and by ``_EXTRA_MIX`` into
    N_EXTRA more x (N_EXTRA, n); ageing by ``_age_factors``, the rate's habit by ``_rate_deviation``. No facial
    information."""
    t = _TRAIT_MIX @ e[_TRAIT_DIMS]                                                 # (N_TRAITS, n)
    x = _EXTRA_MIX @ e[_TRAIT_DIMS]                                                 # (N_EXTRA, n)
    lognorm = lambda mean, sd, v: mean * np.exp(sd * v)  # noqa: E731
    ag = _age_factors(age)
    # the speaker's vowel space: per-vowel idiosyncrasies and an expansion (or centralisation) of F1 and F2 about
    # the central vowel, (n, 11, 3) -> (n, 33)
    ref = np.array([v[:3] for v in _VOWELS.values()], dtype=np.float64)            # (11, 3)
    spread = np.log(ref / np.asarray(_VOWELS["@"][:3], dtype=np.float64))          # (11, 3)
    expand = np.stack([0.18 * x[1], 0.18 * x[2], np.zeros_like(x[1])], -1)          # (n, 3)
    vow = np.exp(0.1 * t[:33].T + (expand[:, None, :] * spread[None]).reshape(-1, 33))
    return {
        # between-speaker F0 sd within a gender and age: ~0.16 (log) for men, ~0.12 for women (about 20 and 25 Hz)
        "f0_hz": f0_mean_hz(gender, age) * np.exp((0.16 - 0.04 * female) * e[_NOISE["f0"]]),
        "f0_range_st": np.clip(2.5 + 1.4 * e[_NOISE["f0_range"]] + 0.8 * female, 0.8, 6.5),
        "vtl_cm": vtl_mean_cm(gender, age) * (1.0 + 0.08 * e[_NOISE["vtl"]]),
        "formant_offsets": np.stack([1.0 + 0.12 * e[_NOISE[f"disp{i}"]] for i in range(1, 5)], -1).clip(0.6, 1.4),
        "nasality": np.clip(0.15 + 0.08 * e[_NOISE["nasality"]] + 0.05 * female, 0.02, 0.45),
        "tilt_db_oct": -1.0 * female + 5.0 * e[_NOISE["tilt"]] - ag["tilt"],
        "rate_syl_s": np.clip(lognorm(4.6, 0.22, _rate_deviation(e[_NOISE["rate"]], age, age_cue)) * ag["rate"],
                              2.6, 7.0),
        "jitter": np.clip(lognorm(0.008, 0.45, e[_NOISE["jitter"]]) * ag["jitter"], 0.002, 0.05),
        "shimmer": np.clip(lognorm(0.05, 0.4, e[_NOISE["shimmer"]]) * ag["shimmer"], 0.01, 0.22),
        "breathiness": np.clip(lognorm(0.07, 0.6, e[_NOISE["breath"]]) * (1.0 + 0.5 * female) * ag["breath"],
                               0.01, 0.6),
        "open_quotient": np.clip(0.6 + 0.11 * e[_NOISE["oq"]] + 0.06 * female, 0.3, 0.9),
        "speed_quotient": np.clip(0.75 + 0.07 * x[0], 0.55, 0.9),
        "tremor_hz": np.clip(lognorm(5.2, 0.12, x[4]), 3.5, 8.0),
        "tremor_st": np.clip((0.06 + ag["tremor"]) * np.exp(0.45 * x[5]), 0.0, 1.5),
        "formant_bw_scale": lognorm(1.0, 0.4, t[33]),
        "f5_offset": lognorm(1.0, 0.08, t[34]),
        "subglottal_hz": (np.array([600.0, 1450.0, 2300.0])[:, None] * (1.0 + 0.12 * female)
                          * np.exp(0.1 * t[54:57])).T,
        "subglottal_depth": np.clip(0.5 + 0.2 * t[55], 0.1, 0.9),
        "piriform_hz": lognorm(4800.0, 0.08, t[35]) * np.where(female, 1.12, 1.0),
        "piriform_depth": np.clip(0.55 + 0.2 * t[36], 0.0, 0.95),
        "vowel_offsets": vow,
        "vowel_pref": 0.7 * t[37:48].T,
        "decl_st_s": -1.8 + 1.1 * t[48],
        "final_st": -2.0 + 2.8 * t[49],
        "accent_peak": np.clip(0.7 * t[50], -1.0, 1.0),
        "creak": np.clip(0.3 * t[51] + 0.1 + ag["creak"], 0.0, 1.0),
        "pause_scale": lognorm(1.0, 0.42, t[52]) * ag["pause"],
        "vowel_share": np.clip(0.45 + 0.084 * t[53], 0.3, 0.6),
        # long-term average speech spectra differ between talkers by a few dB per third-octave band (between-talker
        # sd ~3-6 dB, largest above 2 kHz: Byrne et al. 1994, J. Acoust. Soc. Am. 96, 2108), from voice quality,
        # the "speaker's formant" near 3-4 kHz and resonance habits: a smooth per-speaker envelope offset, fixed
        # over sessions, above ENV_LO_HZ (2 kHz) only: a full-band envelope hides the nasal/lip cues
        # (tests/sim/test_sim_link.py's ridge R^2 of the linked AMs fell from 0.08 to 0.00)
        "envelope_db": (ENVELOPE_SD_DB * (_ENV_MIX @ e[_TRAIT_DIMS])).T,
    }


AGE_MEAN, AGE_SD = 42.4, 11.8
"""Mean and sd (years) of the world's ages (``voiceface.sim.people.sample_ages``: 18 + 62 Beta(2.2, 3.4))."""


def _rate_deviation(e_rate: np.ndarray, age, age_cue: float) -> np.ndarray:
    """The speaker's habitual speaking-rate deviation in sd units (n,): ``sqrt(1 - a^2) e + a s``, where e is the
    identity draw and s = -(age - AGE_MEAN) / AGE_SD the standardised youth, so its spread is the same for every a.

    ``a = age_cue`` (``Preset.age_cue``): at 0 the habit is pure identity (ageing still slows speech,
    ``_age_factors``, and roughens the voice, but in cues a 64-band log-mel network does not resolve: it reads the
    age of unseen speakers at R^2 < 0); towards 1 the voice's most audible habit (a log-mel network reads the rate
    at R^2 ~0.9, ``bench/probe_cues.py``) follows age, so the network hears age at R^2 0.30 (a = 0.7) to 0.84
    (a = 1), about as well as the faces show it (0.59) and as listeners judge age from real voices. The channel is a
    simplification (real ageing spreads over F0, voice quality and rate; age explains far less of a real speaker's
    rate), the knob measures how strong a cue shared by voice and face DIMNet needs (``bench/age_cue.py``). No
    facial information: the face link and its ground truth do not depend on a."""
    youth = -(np.asarray(age, dtype=np.float64) - AGE_MEAN) / AGE_SD
    return np.sqrt(1.0 - age_cue ** 2) * e_rate + age_cue * youth


def _age_factors(age) -> dict[str, np.ndarray]:
    """Voice ageing beyond F0 (``f0_mean_hz``) and vocal tract length (``vtl_mean_cm``) for ages (n,).

    Speech slows over the whole adult life (from 25: ~25 % fewer syllables per second and ~40 % longer pauses by
    80); from 40 on, jitter, shimmer, breathiness and creak grow and the source darkens (tilt, dB/oct to subtract);
    from 50 on, a vocal tremor grows (peak extent 0.06 semitones plus 0.02 per year over 50, ~0.66 st at 80,
    times a speaker-specific factor). Listeners judge a speaker's age from such cues with errors of
    about a decade, so the voice carries age beside gender, as the face does (no facial information).
    """
    age = np.asarray(age, dtype=np.float64)
    a = np.maximum(age - 40.0, 0.0)
    adult = np.maximum(age - 25.0, 0.0)
    return {"jitter": np.exp(0.022 * a), "shimmer": np.exp(0.018 * a), "breath": np.exp(0.016 * a),
            "creak": 0.006 * a, "tilt": 0.03 * a, "rate": np.exp(-0.0055 * adult), "pause": np.exp(0.006 * adult),
            "tremor": 0.02 * np.maximum(age - 50.0, 0.0)}


ACCENT_SD = {"vowel": 0.06, "pref": 0.85, "rate": 0.11, "f0_range": 0.85, "decl": 0.85, "final": 2.1, "peak": 0.55,
             "pause": 0.21, "share": 0.056}
"""Between-nationality sd of each accent component (log units for vowel formants, rate and pauses; semitones for
F0 range and final movement; st/s for declination; peak position and vowel share in their own units)."""


def _accent(nationality: str) -> dict[str, np.ndarray]:
    """One nationality's accent (deterministic, ``ACCENT_SEED``): shifts of the vowel formant table (33,), vowel
    preferences (11,), and scalars for rate, F0 range, declination, final movement, accent peak, pauses and vowel
    share (each ~ N(0, ACCENT_SD))."""
    rng = np.random.default_rng([ACCENT_SEED, zlib.crc32(str(nationality).encode())])
    return {"vowel": rng.standard_normal(33) * ACCENT_SD["vowel"], "pref": rng.standard_normal(11) * ACCENT_SD["pref"],
            **{k: rng.standard_normal() * ACCENT_SD[k] for k in ("rate", "f0_range", "decl", "final", "peak",
                                                                  "pause", "share")}}


def _apply_accent(out: dict[str, np.ndarray], nationality) -> None:
    """Shift the voice parameters ``out`` (n people) in place by each person's nationality's accent (``_accent``);
    ``nationality`` (n,) of names, or None for no accent. Independent of the face and of face_z."""
    if nationality is None:
        return
    nat = np.asarray(nationality, dtype=str)
    names, inv = np.unique(nat, return_inverse=True)
    acc = [_accent(nm) for nm in names]
    pick = lambda k: np.array([a[k] for a in acc])[inv]  # noqa: E731     (n,) or (n, k)
    out["vowel_offsets"] = out["vowel_offsets"] * np.exp(pick("vowel"))
    out["vowel_pref"] = out["vowel_pref"] + pick("pref")
    out["rate_syl_s"] = np.clip(out["rate_syl_s"] * np.exp(pick("rate")), 2.6, 7.5)
    out["f0_range_st"] = np.clip(out["f0_range_st"] + pick("f0_range"), 0.8, 7.0)
    out["decl_st_s"] = out["decl_st_s"] + pick("decl")
    out["final_st"] = out["final_st"] + pick("final")
    out["accent_peak"] = np.clip(out["accent_peak"] + pick("peak"), -1.0, 1.0)
    out["pause_scale"] = out["pause_scale"] * np.exp(pick("pause"))
    out["vowel_share"] = np.clip(out["vowel_share"] + pick("share"), 0.3, 0.62)


# ---------------------------------------------------------------------------------------------------------------
# Phone sequence -> control tracks
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class _Tracks:
    """Per-millisecond control tracks (T ms) built from a phone sequence."""

    formants: np.ndarray       # (T, 4) target F1-F4 (reference tract), Hz
    rounded: np.ndarray        # (T,) rounding in [0, 1]
    voice: np.ndarray          # (T,) voicing amplitude
    asp: np.ndarray            # (T,) aspiration (through the tract) amplitude
    fric: np.ndarray           # (T,) frication amplitude
    fric_cf: np.ndarray        # (T,) frication centre frequency (Hz)
    fric_bw: np.ndarray        # (T,) frication bandwidth (Hz)
    nasal: np.ndarray          # (T,) nasal coupling in [0, 1]
    oral_zero: np.ndarray      # (T,) oral anti-resonance frequency during nasal murmurs (Hz; 0 none)
    damp: np.ndarray           # (T,) extra formant damping (murmurs, approximants) in [0, 1]
    accent: np.ndarray         # (T,) pitch accent in semitones
    phrase_pos: np.ndarray     # (T,) time since phrase start (s); -1 in pauses
    phones: list = field(default_factory=list)   # [(name, start_ms, dur_ms)]


def _phone_sequence(rng: np.random.Generator, n_ms: int, p: VoiceParams) -> list[tuple]:
    """Random babble: phrases of (C)(C)V(C) syllables separated by pauses, totalling ``n_ms`` ms, with the
    speaker's rate, vowel preferences, vowel share of the syllable and pause habit.

    Returns a list of (name, kind, dur_ms, stressed) with kind in vowel|approx|nasal|fric|stop|pause.
    """
    seq: list[tuple] = [("_", "pause", int(rng.uniform(80, 200)), False)]
    total = seq[0][2]
    syl_ms = 1000.0 / p.rate_syl_s
    vp = _VOWEL_P * np.exp(np.asarray(p.vowel_pref))
    vp = vp / vp.sum()
    share = p.vowel_share
    while total < n_ms:
        phrase_ms = rng.uniform(900, 2800)
        p_total = 0
        while p_total < phrase_ms and total + p_total < n_ms:
            stressed = bool(rng.random() < 0.35)
            parts: list[tuple] = []
            if rng.random() < 0.85:
                c = _ONSETS[rng.choice(len(_ONSETS), p=_ONSET_P / _ONSET_P.sum())]
                parts.append(c)
                if c in _STOPS and rng.random() < 0.15:
                    parts.append(["l", "r"][rng.integers(2)])
            v = _VOWEL_NAMES[rng.choice(len(_VOWEL_NAMES), p=vp)]
            parts.append(v)
            if rng.random() < 0.4:
                parts.append(_CODAS[rng.choice(len(_CODAS), p=_CODA_P / _CODA_P.sum())])
            # split the syllable duration: vowel ~45 %, consonants share the rest
            dur = syl_ms * rng.uniform(0.75, 1.3) * (1.3 if stressed else 1.0)
            n_c = len(parts) - 1
            for ph in parts:
                if ph in _VOWELS:
                    d, kind = dur * (share if n_c else 0.8), "vowel"
                else:
                    kind = ("stop" if ph in _STOPS else "nasal" if ph in _NASALS else
                            "fric" if ph in _FRICATIVES else "approx")
                    d = dur * (1.0 - share if n_c else 0.2) / max(n_c, 1)
                    d = max(d, 55.0 if kind == "stop" else 40.0)
                seq.append((ph, kind, int(round(d)), stressed and kind == "vowel"))
                p_total += int(round(d))
        total += p_total
        seq.append(("_", "pause", int(rng.uniform(150, 450) * p.pause_scale), False))
        total += seq[-1][2]
    return seq


def _build_tracks(rng: np.random.Generator, n_ms: int, p: VoiceParams) -> _Tracks:
    """Phone sequence -> per-ms tracks (targets held per phone; smoothed later for coarticulation). Vowel targets
    carry the speaker's vowel-space table (``p.vowel_offsets``); accents peak where the speaker's habit puts them."""
    seq = _phone_sequence(rng, n_ms, p)
    table = np.asarray(p.vowel_offsets).reshape(len(_VOWELS), 3)
    vowels = {v: tuple(np.asarray(f[:3]) * table[i]) + tuple(f[3:]) for i, (v, f) in enumerate(_VOWELS.items())}
    T = sum(d for _, _, d, _ in seq)
    tr = _Tracks(formants=np.zeros((T, 4)), rounded=np.zeros(T), voice=np.zeros(T), asp=np.zeros(T),
                 fric=np.zeros(T), fric_cf=np.full(T, 5000.0), fric_bw=np.full(T, 4000.0), nasal=np.zeros(T),
                 oral_zero=np.zeros(T), damp=np.zeros(T), accent=np.zeros(T), phrase_pos=np.full(T, -1.0))
    # formant targets of consonants borrow from the neighbouring vowel (filled below)
    t = 0
    phrase_start = None
    next_vowel = {}
    vowel_idx = None
    for i in range(len(seq) - 1, -1, -1):      # nearest following vowel of each phone
        if seq[i][1] == "vowel":
            vowel_idx = i
        next_vowel[i] = vowel_idx
    for i, (ph, kind, d, stressed) in enumerate(seq):
        s = slice(t, t + d)
        tr.phones.append((ph, t, d))
        if kind == "pause":
            phrase_start = None
            tr.formants[s] = _VOWELS["@"][:4]
            t += d
            continue
        if phrase_start is None:
            phrase_start = t
        tr.phrase_pos[s] = (np.arange(t, t + d) - phrase_start) / 1000.0
        nv = next_vowel.get(i)
        vt = vowels[seq[nv][0]] if nv is not None else vowels["@"]
        if kind == "vowel":
            f = vowels[ph]
            tr.formants[s] = f[:4]
            tr.rounded[s] = f[4]
            tr.voice[s] = 1.0 if stressed else 0.8
            if stressed:   # pitch accent: a rise-fall over the stressed vowel
                x = np.linspace(-1.2, 1.2, d) - 0.8 * p.accent_peak
                tr.accent[s] = np.exp(-x ** 2) * rng.uniform(0.6, 1.4)
        elif kind == "approx":
            f = _APPROX[ph]
            tr.formants[s] = f[:4]
            tr.rounded[s] = f[4]
            tr.voice[s] = 0.55
            tr.damp[s] = 0.3
        elif kind == "nasal":
            f = _NASALS[ph]
            tr.formants[s] = f[:4]
            tr.voice[s] = 0.45
            tr.nasal[s] = 1.0
            tr.oral_zero[s] = f[5]
            tr.damp[s] = 0.8
        elif kind == "fric":
            cf, bw, lvl, voiced = _FRICATIVES[ph]
            tr.formants[s] = vt[:4]
            tr.rounded[s] = vt[4]
            if ph == "h":
                tr.asp[s] = 0.5
            else:
                tr.fric[s] = lvl
                tr.fric_cf[s] = cf
                tr.fric_bw[s] = bw
                tr.voice[s] = 0.35 if voiced else 0.0
                tr.asp[s] = 0.05
        else:   # stop: closure, burst (~12 ms), aspiration for voiceless ones
            cf, bw, voiced = _STOPS[ph]
            closure = int(d * 0.6)
            burst = min(12, d - closure)
            tr.formants[s] = vt[:4]
            tr.rounded[s] = vt[4]
            if voiced:
                tr.voice[t:t + closure] = 0.12           # voice bar
            b = slice(t + closure, t + closure + burst)
            tr.fric[b] = 1.2
            tr.fric_cf[b] = cf if ph not in "kg" else 0.9 * vt[1] + 300.0
            tr.fric_bw[b] = bw
            tail = slice(t + closure + burst, t + d)
            if voiced:
                tr.voice[tail] = 0.6
            else:
                tr.asp[tail] = 0.55
        t += d
    # vowels next to nasal consonants are nasalised (anticipatory and carry-over coarticulation)
    nas = tr.nasal.copy()
    k = np.hanning(121)
    tr.nasal = np.maximum(nas, 0.6 * np.convolve(nas, k / k.max(), mode="same").clip(0, 1))
    return tr


def _smooth(x: np.ndarray, width_ms: int) -> np.ndarray:
    """Smooth a per-ms track (T,) or (T, K) with a normalised Hann kernel (edge-padded)."""
    k = np.hanning(width_ms + 2)[1:-1]
    k = k / k.sum()
    pad = width_ms // 2 + 1
    if x.ndim == 1:
        xp = np.pad(x, pad, mode="edge")
        return np.convolve(xp, k, mode="same")[pad:-pad]
    xp = np.pad(x, ((pad, pad), (0, 0)), mode="edge")
    return signal.fftconvolve(xp, k[:, None], mode="same", axes=0)[pad:-pad]


def _ms_to_samples(x: np.ndarray, n: int) -> np.ndarray:
    """Linear interpolation of a per-ms track (T,) to n samples."""
    t_ms = np.arange(n) * (1000.0 / SAMPLE_RATE)
    return np.interp(t_ms, np.arange(len(x)) + 0.5, x)


# ---------------------------------------------------------------------------------------------------------------
# Source and filters
# ---------------------------------------------------------------------------------------------------------------

def _glottal_source(rng: np.random.Generator, f0: np.ndarray, p: VoiceParams,
                    fry: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rosenberg pulse train with jitter and shimmer, and vocal fry where ``fry`` > 0 (irregular, alternating
    pulse amplitudes and a shorter open phase).

    Args:
        f0: (N,) instantaneous F0 (Hz).  fry: (N,) vocal fry strength in [0, 1].
    Returns:
        (dflow (N,), flow (N,)): glottal flow derivative (the excitation, lip radiation included) and flow.
    """
    phase0 = np.cumsum(f0) / SAMPLE_RATE
    n_cyc = int(phase0[-1]) + 2
    jit = 1.0 + p.jitter * rng.standard_normal(n_cyc)
    shim = np.exp(p.shimmer * rng.standard_normal(n_cyc))
    cyc0 = phase0.astype(np.int64)
    phase = np.cumsum(f0 * jit[cyc0]) / SAMPLE_RATE          # period jitter per cycle
    cyc = np.minimum(phase.astype(np.int64), n_cyc - 1)
    frac = phase - np.floor(phase)
    oq = p.open_quotient * (1.0 - 0.45 * fry)
    tp, tn = p.speed_quotient * oq, (1.0 - p.speed_quotient) * oq
    flow = np.where(frac < tp, 0.5 * (1.0 - np.cos(np.pi * frac / tp)),
                    np.where(frac < tp + tn, np.cos(0.5 * np.pi * (frac - tp) / tn), 0.0))
    irregular = np.exp(0.8 * rng.standard_normal(n_cyc))[cyc] * (1.0 - 0.5 * (cyc % 2))
    flow = flow * shim[cyc] * (1.0 + fry * (irregular - 1.0))
    dflow = np.diff(flow, prepend=flow[0])
    return dflow, flow


def _pulse_peak(p: VoiceParams) -> float:
    """Reference peak |flow derivative| (per sample) of the speaker's modal pulses at the median F0: the steeper of
    the opening (pi / 2 tp) and closing (pi / 2 tn) slopes, times 1.5 for accents, jitter and shimmer. A fixed
    per-speaker scale (not the utterance's own maximum, which creaky or accented utterances push up at random) keeps
    the voicing-to-noise balance of a speaker the same from utterance to utterance."""
    oq = p.open_quotient
    slope = 0.5 * np.pi / (oq * min(p.speed_quotient, 1.0 - p.speed_quotient))
    return 1.5 * slope * p.f0_hz / SAMPLE_RATE


def _resonator(freq: np.ndarray, bw: np.ndarray) -> np.ndarray:
    """Complex response of Klatt digital resonators on the STFT bins, unit gain at DC.

    Args:
        freq, bw: (T, ...) centre frequencies and bandwidths (Hz).
    Returns:
        (T, ..., 257) complex.
    """
    r = np.exp(-np.pi * bw / SAMPLE_RATE).astype(np.float32)[..., None]
    b = (2.0 * r * np.cos(2.0 * np.pi * freq / SAMPLE_RATE).astype(np.float32)[..., None])
    r2 = r * r
    return (1.0 - b + r2) / (1.0 - b * _ZINV + r2 * _ZINV2)                      # complex64


def _tract_response(formants: np.ndarray, damp: np.ndarray, nasal: np.ndarray, oral_zero: np.ndarray,
                    p: VoiceParams) -> np.ndarray:
    """Per-frame vocal tract transfer function: 5 oral formants (+ oral zero), nasal pole-zero-pole branch.

    Args:
        formants: (T, 4) speaker-scaled F1-F4 (Hz); damp, nasal, oral_zero: (T,).
    Returns:
        (T, 257) complex.
    """
    T = formants.shape[0]
    f5 = np.full((T, 1), 4500.0 * p.f5_offset * REF_VTL_CM / p.vtl_cm)
    freqs = np.concatenate([formants, f5], axis=1).clip(90.0, 7600.0)           # (T, 5)
    base_bw = np.array([60.0, 90.0, 140.0, 200.0, 280.0])
    bws = (base_bw * (1.0 + 2.0 * damp[:, None]) + 0.04 * freqs) * p.formant_bw_scale   # (T, 5)
    bws[:, 0] += 120.0 * nasal                                                   # F1 broadens when nasalised
    h = _resonator(freqs, bws).prod(axis=1)                                      # (T, 257)
    # nasal branch: pole-zero pair + second pole; strength -> pole and zero converge when coupling is 0
    pole = _resonator(np.full(T, p.nasal_pole_hz), np.full(T, p.nasal_bw_hz))
    zero_f = p.nasal_pole_hz + (p.nasal_zero_hz - p.nasal_pole_hz) * nasal       # the zero cancels the pole at 0
    h = h * pole / _resonator(zero_f, np.full(T, p.nasal_bw_hz * 1.2))
    pole2 = np.abs(_resonator(np.full(T, p.nasal_pole2_hz), np.full(T, 1.4 * p.nasal_bw_hz)))   # (T, 257)
    h = h * (1.0 + 0.8 * nasal[:, None] * (pole2 - 1.0))
    # piriform fossae: a fixed speaker-specific spectral dip at 4-5.5 kHz
    dip = 1.0 - p.piriform_depth * np.exp(-0.5 * ((_FREQS - p.piriform_hz) / 350.0) ** 2)   # (257,)
    h = h * dip.astype(np.float32)[None]
    sg = np.asarray(p.subglottal_hz)
    pz = np.abs(_resonator(sg, np.full(3, 180.0)) / _resonator(sg * 1.1, np.full(3, 200.0))).prod(0)   # (257,)
    h = h * (pz ** p.subglottal_depth).astype(np.float32)[None]
    # oral anti-resonance of the closed mouth cavity during nasal murmurs
    has_z = oral_zero > 0
    if has_z.any():
        zr = _resonator(np.where(has_z, oral_zero, 1000.0), np.full(T, 250.0))
        h = h / np.where(has_z[:, None], zr, 1.0)
    return h


def _envelope_gain(envelope_db) -> np.ndarray:
    """(257,) linear gain of a smooth high-frequency spectral envelope: w(f) sum_k c_k cos(k pi u) dB for
    coefficients c (K,) (``VoiceParams.envelope_db``), u = log-frequency position in [0, 1] between ``ENV_LO_HZ``
    and 8 kHz, w a smooth ramp from 0 at ``ENV_LO_HZ`` / 1.5 to 1 at ``ENV_LO_HZ``: the nasal and lip cues (the face
    link, below ~2 kHz) are left alone."""
    c = np.asarray(envelope_db, dtype=np.float64)
    f = np.clip(_FREQS, ENV_LO_HZ / 1.5, 8000.0)
    u = (np.log2(np.maximum(f, ENV_LO_HZ) / ENV_LO_HZ) / np.log2(8000.0 / ENV_LO_HZ))[:, None]   # (257, 1)
    w = np.sin(0.5 * np.pi * np.clip(np.log(f / (ENV_LO_HZ / 1.5)) / np.log(1.5), 0.0, 1.0)) ** 2  # (257,)
    db = w * (np.cos(np.pi * u * np.arange(len(c))[None, :]) @ c)                                # (257,)
    return (10.0 ** (db / 20.0)).astype(np.float32)


def _bandpass_response(cf: np.ndarray, bw: np.ndarray) -> np.ndarray:
    """(T, 257) Gaussian-shaped magnitude responses (frication noise spectra) with centre cf and bandwidth bw."""
    f = _FREQS[None, :]
    lo = np.exp(-0.5 * ((f - cf[:, None]) / (0.5 * bw[:, None])) ** 2)
    hi = (f > cf[:, None]) * np.exp(-((f - cf[:, None]) / (1.5 * bw[:, None])) ** 2)
    return np.maximum(lo, hi)


def _stft(x: np.ndarray) -> np.ndarray:
    return signal.stft(x, nperseg=NPERSEG, noverlap=NPERSEG - HOP, window="hann", boundary="zeros",
                       padded=True)[2]                                                # (257, F)


def _istft(z: np.ndarray, n: int) -> np.ndarray:
    y = signal.istft(z, nperseg=NPERSEG, noverlap=NPERSEG - HOP, window="hann", boundary=True)[1]
    return y[:n]


def synthesize(params: VoiceParams, duration_s: float, rng: np.random.Generator,
               session: SessionParams | None = None) -> np.ndarray:
    """Synthesise a babbled utterance of one speaker.

    Args:
        params: the speaker (``VoiceParams``).
        duration_s: length in seconds (the utterance is cut to exactly this length).
        rng: numpy Generator (the phone sequence, prosody and noises are drawn from it).
        session: the recording channel; ``None`` gives a clean, dry, -26 dBFS recording.
    Returns:
        (round(duration_s * 16000),) float32 samples at 16 kHz in [-1, 1].
    """
    n = int(round(duration_s * SAMPLE_RATE))
    if n < SAMPLE_RATE // 10:
        raise ValueError(f"duration must be at least 0.1 s, got {duration_s}")
    n_ms = n * 1000 // SAMPLE_RATE + 1
    tr = _build_tracks(rng, n_ms, params)

    # --- prosody: F0 in semitones around the speaker's median
    pos = tr.phrase_pos
    in_phrase = pos >= 0
    decl = np.where(in_phrase, params.decl_st_s * pos, 0.0)                      # declination (st/s)
    accent = _smooth(tr.accent, 41) * params.f0_range_st
    # the speaker's phrase-final fall or rise over the last 300 ms of each phrase, vocal fry over the last 200 ms
    ends = np.flatnonzero(np.diff(in_phrase.astype(int)) == -1)
    final, fry = np.zeros_like(pos), np.zeros_like(pos)
    for e_ in ends:
        lo = max(e_ - 300, 0)
        final[lo:e_ + 1] = np.linspace(0.0, params.final_st, e_ + 1 - lo)
        fry[max(e_ - 200, 0):e_ + 1] = params.creak
    wander = _smooth(rng.standard_normal(len(pos)), 301) * 12.0                 # slow drift (~0.7 st sd)
    tremor = np.sin(2.0 * np.pi * params.tremor_hz * np.arange(len(pos)) / 1000.0 + rng.uniform(0, 2 * np.pi))
    st = 1.5 + decl + accent + final + wander + params.tremor_st * tremor
    fry = _smooth(fry, 41)
    f0_ms = params.f0_hz * 2.0 ** (st / 12.0) * (1.0 - 0.45 * fry)
    f0 = _ms_to_samples(f0_ms, n).clip(30.0, 500.0)

    # --- sources at the sample rate
    dflow, flow = _glottal_source(rng, f0, params, _ms_to_samples(fry, n))
    voice = _ms_to_samples(_smooth(tr.voice, 15), n)
    asp = _ms_to_samples(_smooth(tr.asp, 9), n)
    fric = _ms_to_samples(_smooth(tr.fric, 5), n)
    loud = _smooth(np.where(tr.accent > 0.3, 1.25, 1.0), 61) * (1.0 + 0.1 * params.tremor_st * tremor)
    loud = _ms_to_samples(loud, n)
    g = dflow / _pulse_peak(params)
    noise_a = rng.standard_normal(n)
    breath = params.breathiness * noise_a * (0.25 + flow) * 0.35
    src_tract = loud * (voice * (g + breath)) + asp * 0.08 * noise_a
    src_fric = loud * fric * 0.08 * rng.standard_normal(n)

    # --- per-frame filters
    z_tract = _stft(src_tract)
    z_fric = _stft(src_fric)
    F = z_tract.shape[1]
    frame_ms = (np.arange(F) * HOP * 1000 // SAMPLE_RATE).clip(0, len(pos) - 1)
    form = _smooth(tr.formants, 45)[frame_ms]                                    # coarticulation (45 ms)
    rnd = _smooth(tr.rounded, 45)[frame_ms]
    scale = REF_VTL_CM / params.vtl_cm
    form = form * scale * np.asarray(params.formant_offsets)[None, :]
    form[:, :3] *= (1.0 - params.lip_rounding * rnd)[:, None]
    nasal = np.clip(_smooth(tr.nasal, 25)[frame_ms] * (1.0 - params.nasality) + params.nasality, 0.0, 1.0)
    h = _tract_response(form, _smooth(tr.damp, 25)[frame_ms], nasal, tr.oral_zero[frame_ms], params)
    tilt = 10.0 ** (params.tilt_db_oct * np.log2(np.maximum(_FREQS, 100.0) / 500.0) / 20.0)   # (257,)
    tilt = tilt * _envelope_gain(params.envelope_db)
    hf = _bandpass_response(_smooth(tr.fric_cf, 9)[frame_ms], _smooth(tr.fric_bw, 9)[frame_ms])
    z = z_tract * (h * tilt[None, :]).T + z_fric * hf.T
    y = _istft(z, n)
    y = y / (np.sqrt(np.mean(y ** 2)) + 1e-12)
    return apply_session(y, session or SessionParams(), rng)


def _channel_response(freqs: np.ndarray, s: SessionParams) -> np.ndarray:
    """Magnitude response of the channel: smooth EQ (log-frequency interpolation) and 2nd-order band limits."""
    centres = np.geomspace(100.0, 7000.0, len(s.eq_db))
    lf = np.log(np.maximum(freqs, 20.0))
    eq_db = np.interp(lf, np.log(centres), np.asarray(s.eq_db))
    f = np.maximum(freqs, 1e-3)
    hp = (f / s.highpass_hz) ** 2 / np.sqrt(1.0 + (f / s.highpass_hz) ** 4)
    lp = 1.0 / np.sqrt(1.0 + (f / s.lowpass_hz) ** 8)
    return 10.0 ** (eq_db / 20.0) * hp * lp


def room_impulse_response(rng: np.random.Generator, rt60_s: float, wet: float) -> np.ndarray:
    """Synthetic room impulse response: a unit direct path plus exponentially decaying noise (-60 dB at RT60)
    with energy ``wet`` relative to the direct path, a 1-3 ms pre-delay and high-frequency damping."""
    n = int(max(rt60_s, 0.05) * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / max(rt60_s, 1e-3))
    tail = signal.lfilter([0.6], [1.0, -0.4], tail)                               # air absorption
    delay = int(rng.uniform(0.001, 0.003) * SAMPLE_RATE)
    tail[:delay] = 0.0
    tail *= np.sqrt(wet / (np.sum(tail ** 2) + 1e-12))
    tail[0] = 1.0
    return tail


def apply_session(y: np.ndarray, s: SessionParams, rng: np.random.Generator) -> np.ndarray:
    """Room, channel, background noise at ``s.snr_db`` and level, in that order.

    Args:
        y: (N,) clean speech.
    Returns:
        (N,) float32 in [-1, 1].
    """
    n = len(y)
    if s.rt60_s > 0.02 and s.wet > 0:
        y = signal.fftconvolve(y, room_impulse_response(rng, s.rt60_s, s.wet))[:n]
    nfft = 1 << int(np.ceil(np.log2(n)))
    freqs = np.fft.rfftfreq(nfft, 1.0 / SAMPLE_RATE)
    y = np.fft.irfft(np.fft.rfft(y, nfft) * _channel_response(freqs, s), nfft)[:n]
    p_speech = np.mean(y ** 2) + 1e-12
    noise = np.fft.irfft(np.fft.rfft(rng.standard_normal(nfft)) / np.maximum(freqs, 50.0) ** (s.noise_tilt / 2),
                         nfft)[:n]
    noise *= np.sqrt(p_speech / (np.mean(noise ** 2) + 1e-12) * 10.0 ** (-s.snr_db / 10.0))
    y = y + noise
    y *= 10.0 ** (s.level_dbfs / 20.0) / np.sqrt(np.mean(y ** 2) + 1e-12)
    peak = np.abs(y).max()
    if peak > 0.99:
        y *= 0.99 / peak
    return y.astype(np.float32)


def write_wav(path, samples: np.ndarray) -> None:
    """Write 16 kHz mono float32 samples as 16-bit PCM WAV (atomically: temp file, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    sf.write(tmp, np.asarray(samples, dtype=np.float32), SAMPLE_RATE, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)


__all__ = ["FACE_LINKED_PARAMS", "LINKED_FEATURES", "N_VOICE_NOISE", "SAMPLE_RATE", "SessionParams", "VoiceParams", "apply_session",
           "f0_mean_hz", "room_impulse_response", "sample_session", "synthesize", "voice_param_arrays", "voice_params_from_person",
           "vtl_mean_cm", "write_wav"]
