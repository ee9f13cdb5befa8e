"""The speech synthesiser: shape of the output, determinism, speech-likeness, the face link and coupling."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from voiceface.audio import features
from voiceface.audio.vad import vad as run_vad
from voiceface.sim import voices


def _person(gender="m", age=35.0, z=None, seed=0):
    rng = np.random.default_rng(seed)
    return SimpleNamespace(gender=gender, age=age, face_z=np.zeros(len(voices.LINKED_FEATURES)) if z is None else np.asarray(z, float),
                           voice_noise=rng.standard_normal(voices.N_VOICE_NOISE))


def test_output_format_and_determinism():
    p = voices.voice_params_from_person(_person())
    a = voices.synthesize(p, 2.5, np.random.default_rng(3), voices.sample_session(np.random.default_rng(4)))
    b = voices.synthesize(p, 2.5, np.random.default_rng(3), voices.sample_session(np.random.default_rng(4)))
    c = voices.synthesize(p, 2.5, np.random.default_rng(5), voices.sample_session(np.random.default_rng(4)))
    assert a.dtype == np.float32 and a.shape == (40000,)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert 0.01 < np.abs(a).max() <= 1.0 and np.isfinite(a).all()


def test_vad_and_logmel_front_end_run_and_see_phrases():
    """The thesis front end runs on synthetic speech; the VAD keeps speech and drops the pauses."""
    p = voices.voice_params_from_person(_person("f", seed=1))
    y = voices.synthesize(p, 6.0, np.random.default_rng(0), voices.SessionParams(snr_db=30.0))
    kept = run_vad(y)
    assert 0.4 * len(y) < len(kept) < 0.99 * len(y)
    feat = features.cmvn(features.logmel(kept))
    assert feat.shape[1] == 64 and np.isfinite(feat).all()


def test_voiced_unvoiced_alternation():
    """Frame energy and zero-crossing rate alternate between voiced (low ZCR), fricative (high ZCR) and silence."""
    # vowel share, pauses, rate, source tilt and pulse skew are speaker habits (a dark, slow speaker has few loud
    # fricative frames): pin them to the population's typical values
    p = dataclasses.replace(voices.voice_params_from_person(_person(seed=2)), vowel_share=0.45, pause_scale=1.0,
                            rate_syl_s=4.6, tilt_db_oct=0.0, speed_quotient=0.75)
    y = voices.synthesize(p, 6.0, np.random.default_rng(1), None).astype(np.float64)
    fr = y[: len(y) // 320 * 320].reshape(-1, 320)                        # 20 ms frames
    energy = 10 * np.log10((fr ** 2).mean(1) + 1e-12)
    zcr = (np.abs(np.diff(np.sign(fr), axis=1)) > 0).mean(1)
    loud = energy > energy.max() - 30
    voiced = loud & (zcr < 0.12)
    fric = loud & (zcr > 0.25)
    assert voiced.mean() > 0.3 and fric.mean() > 0.03 and (~loud).mean() > 0.05
    changes = np.count_nonzero(np.diff(voiced.astype(int)))
    assert changes / 6.0 >= 2.0                                           # voicing toggles at consonants


def _formant_band_mean(vtl_scale: float) -> np.ndarray:
    p = voices.voice_params_from_person(_person(seed=3))
    p = dataclasses.replace(p, vtl_cm=p.vtl_cm * (1.0 + 0.06 * vtl_scale))
    y = voices.synthesize(p, 8.0, np.random.default_rng(2), None)
    lm = features.logmel(y)
    e = lm.mean(1)
    return lm[e > np.percentile(e, 50)].mean(0)                            # (64,) voiced-frame spectrum


def test_formant_bands_visible_and_follow_vocal_tract_length():
    """The voiced log-mel spectrum has formant peaks, and a longer vocal tract moves energy down."""
    long_, short = _formant_band_mean(2.0), _formant_band_mean(-2.0)
    fb = features.mel_filterbank()
    centres = (fb * np.arange(fb.shape[0])[:, None]).sum(0) / fb.sum(0) * 16000 / 1024
    band = (centres > 250) & (centres < 4000)
    peaks = [i for i in np.flatnonzero(band) if long_[i] > long_[i - 1] and long_[i] > long_[i + 1]]
    assert len(peaks) >= 2
    w = lambda s: (np.exp(s[band]) * centres[band]).sum() / np.exp(s[band]).sum()  # noqa: E731
    assert w(long_) < w(short)


def test_coupling_zero_removes_the_face_from_the_voice():
    a = _person("f", z=[2, 2, -1], seed=7)
    b = _person("f", z=[-2, -2, 1], seed=7)                               # same voice traits, other face
    for f in voices.FACE_LINKED_PARAMS:
        assert getattr(voices.voice_params_from_person(a, 0.0), f) == getattr(voices.voice_params_from_person(b, 0.0), f)
        assert getattr(voices.voice_params_from_person(a, 1.0), f) != getattr(voices.voice_params_from_person(b, 1.0), f)
    with pytest.raises(ValueError):
        voices.voice_params_from_person(a, 1.5)


def test_marginals_do_not_depend_on_coupling():
    rng = np.random.default_rng(0)
    n = 4000
    z, e = rng.standard_normal((n, len(voices.LINKED_FEATURES))), rng.standard_normal((n, voices.N_VOICE_NOISE))
    g, age = np.full(n, "f"), np.full(n, 40.0)
    for f in voices.FACE_LINKED_PARAMS:
        s1 = voices.voice_param_arrays(g, age, z, e, 1.0)[f].std()
        s0 = voices.voice_param_arrays(g, age, z, e, 0.0)[f].std()
        assert abs(s1 / s0 - 1) < 0.08, f


def test_f0_and_vtl_follow_gender():
    m = voices.voice_param_arrays(np.full(500, "m"), np.full(500, 30.0), np.zeros((500, len(voices.LINKED_FEATURES))),
                                  np.random.default_rng(0).standard_normal((500, voices.N_VOICE_NOISE)), 1.0)
    f = voices.voice_param_arrays(np.full(500, "f"), np.full(500, 30.0), np.zeros((500, len(voices.LINKED_FEATURES))),
                                  np.random.default_rng(0).standard_normal((500, voices.N_VOICE_NOISE)), 1.0)
    assert 100 < np.median(m["f0_hz"]) < 135 < 180 < np.median(f["f0_hz"]) < 240
    assert np.median(m["vtl_cm"]) > np.median(f["vtl_cm"]) * 1.1


def test_identity_traits_carry_no_face_and_vtl_ignores_the_face():
    """Only FACE_LINKED_PARAMS move with the face: every other voice parameter (vocal tract length included) is
    identical for two faces with the same voice draws, at coupling 1."""
    a = voices.voice_params_from_person(_person("f", z=[2, 2, 2], seed=4))
    b = voices.voice_params_from_person(_person("f", z=[-2, -2, -2], seed=4))
    for f in dataclasses.fields(voices.VoiceParams):
        if f.name not in voices.FACE_LINKED_PARAMS + ("face_z",):
            assert getattr(a, f.name) == getattr(b, f.name), f.name


def test_link_is_stronger_for_women():
    """The same face z moves women's nasal zero (nose width) further than men's (``LINK_GAIN``)."""
    z = [0.0, 2.0, 0.0]
    shift = {g: voices.voice_params_from_person(_person(g, z=z, seed=5)).nasal_zero_hz
             / voices.voice_params_from_person(_person(g, seed=5)).nasal_zero_hz for g in "mf"}
    assert shift["f"] > shift["m"] > 1.0


def test_accent_is_shared_by_a_nationality_and_ignores_the_face():
    """A nationality's accent moves everyone of that nationality the same way (vowel table, rate, prosody), differs
    between nationalities, and never reaches the face-linked parameters (coupling 0 stays face-free)."""
    n = 400
    rng = np.random.default_rng(3)
    z, e = rng.standard_normal((n, len(voices.LINKED_FEATURES))), rng.standard_normal((n, voices.N_VOICE_NOISE))
    g, age = np.full(n, "m"), np.full(n, 35.0)
    plain = voices.voice_param_arrays(g, age, z, e, 1.0)
    acc = {nat: voices.voice_param_arrays(g, age, z, e, 1.0, np.full(n, nat)) for nat in ("USA", "India")}
    for nat, a in acc.items():
        ratio = np.log(a["vowel_offsets"] / plain["vowel_offsets"])                  # (n, 33)
        assert np.allclose(ratio, ratio[:1]) and np.abs(ratio).max() > 0.02, nat     # one shift for all
        for f in voices.FACE_LINKED_PARAMS:
            assert np.array_equal(a[f], plain[f]), (nat, f)
    assert not np.allclose(acc["USA"]["vowel_offsets"], acc["India"]["vowel_offsets"])
    assert not np.allclose(acc["USA"]["rate_syl_s"], acc["India"]["rate_syl_s"])
    # a person's nationality reaches the voice through voice_params_from_person
    p = _person("f", seed=9)
    q = SimpleNamespace(**vars(p), nationality="Nigeria")
    assert voices.voice_params_from_person(p).vowel_offsets != voices.voice_params_from_person(q).vowel_offsets


def test_voice_ages():
    """Older voices: women's F0 lower, old men's higher than at 60, more jitter and breathiness, slower rate."""
    n = 2000
    e = np.random.default_rng(1).standard_normal((n, voices.N_VOICE_NOISE))
    z = np.zeros((n, len(voices.LINKED_FEATURES)))
    va = {(g, a): voices.voice_param_arrays(np.full(n, g), np.full(n, float(a)), z, e, 1.0)
          for g in "mf" for a in (25, 60, 78)}
    med = lambda g, a, k: np.median(va[(g, a)][k])  # noqa: E731
    assert med("f", 78, "f0_hz") < 0.85 * med("f", 25, "f0_hz")
    assert med("m", 78, "f0_hz") > 1.1 * med("m", 60, "f0_hz")
    for g in "mf":
        assert med(g, 78, "jitter") > 1.4 * med(g, 25, "jitter")
        assert med(g, 78, "breathiness") > 1.2 * med(g, 25, "breathiness")
        assert med(g, 78, "rate_syl_s") < 0.9 * med(g, 25, "rate_syl_s")
        assert med(g, 78, "tremor_st") > 5.0 * med(g, 25, "tremor_st")
        assert med(g, 78, "vtl_cm") > 1.04 * med(g, 25, "vtl_cm")


def test_voice_params_carry_age():
    """Age is readable from the voice parameters within each gender (a quadratic least-squares readout of the
    ageing-related parameters explains over half of the age variance), yet none of it comes from the face: at
    coupling 0 the readout is as good."""
    rng = np.random.default_rng(3)
    n = 4000
    age = 18.0 + 62.0 * rng.beta(2.2, 3.4, n)
    e = rng.standard_normal((n, voices.N_VOICE_NOISE))
    for g in "mf":
        for c in (1.0, 0.0):
            va = voices.voice_param_arrays(np.full(n, g), age, rng.standard_normal((n, 3)), e, c)
            x = np.log(np.stack([va[k] for k in ("f0_hz", "jitter", "shimmer", "breathiness", "rate_syl_s",
                                                   "vtl_cm", "pause_scale")] + [va["tremor_st"] + 1e-3], 1))
            design = np.concatenate([np.ones((n, 1)), x, x ** 2], 1)
            fit = design @ np.linalg.lstsq(design, age, rcond=None)[0]
            assert 1.0 - np.var(age - fit) / np.var(age) > 0.5, (g, c)


def test_tremor_modulates_the_voice():
    """A speaker's vocal tremor puts a slow wobble at its rate into the loudness: the utterance's frame-energy
    spectrum gains power near tremor_hz against the same draws without tremor."""
    base = voices.voice_params_from_person(_person("f", age=75.0, seed=4))
    power = {}
    for st in (0.0, 1.5):
        p = voices.VoiceParams(**{**vars(base), "tremor_hz": 6.0, "tremor_st": st})
        y = voices.synthesize(p, 4.0, np.random.default_rng(0))
        env = np.sqrt((y[: len(y) // 160 * 160].reshape(-1, 160) ** 2).mean(1))      # 10 ms frames -> (400,)
        spec = np.abs(np.fft.rfft(env - env.mean())) ** 2
        f = np.fft.rfftfreq(len(env), 0.01)
        power[st] = spec[(f > 5.5) & (f < 6.5)].sum() / spec[(f > 1) & (f < 20)].sum()
    assert power[1.5] > 2.5 * power[0.0], power


def test_age_cue_ties_the_speaking_rate_to_age_and_nothing_else():
    """``age_cue`` (``Preset.age_cue``, 1 in the world presets) moves only the speaking rate: at 0 nothing changes,
    at 1 age explains most of the rate's within-gender variance while its spread stays put, and no face-linked
    parameter or other field moves (so the ground truth of the face link is unchanged)."""
    from voiceface.sim.people import sample_ages

    n = 4000
    rng = np.random.default_rng(11)
    age = sample_ages(rng, n)
    z, e = rng.standard_normal((n, len(voices.LINKED_FEATURES))), rng.standard_normal((n, voices.N_VOICE_NOISE))
    g = np.full(n, "f")
    base = voices.voice_param_arrays(g, age, z, e, 1.0)
    zero, one = (voices.voice_param_arrays(g, age, z, e, 1.0, None, a) for a in (0.0, 1.0))
    for k in base:
        assert np.array_equal(base[k], zero[k]), k
        if k != "rate_syl_s":
            assert np.array_equal(base[k], one[k]), k
    r2 = lambda r: np.corrcoef(np.log(r), age)[0, 1] ** 2  # noqa: E731
    assert r2(base["rate_syl_s"]) < 0.15 < 0.8 < r2(one["rate_syl_s"])
    assert 0.8 < np.log(one["rate_syl_s"]).std() / np.log(base["rate_syl_s"]).std() < 1.25
    with pytest.raises(ValueError, match="age_cue"):
        voices.voice_param_arrays(g[:2], age[:2], z[:2], e[:2], 1.0, None, 1.5)
