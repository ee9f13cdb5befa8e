"""Presets of the simulated world (frozen dataclasses): how many people, utterances, images and clips.

* ``tiny``: for tests, builds in seconds (24 people).
* ``small``: for the demo, about three minutes on 2 idle cores (240 people, 8 utterances and 10 photos each: enough
  items per identity for identity supervision).
* ``paper``: the thesis's scale, 1,225 people split 924 / 112 / 189 (Tables 2.1 and 3.1: the VoxCeleb1 x VGGFace
  intersection), several utterances and images per person, for benchmarks.
* ``video``: faces only, 1,200 people with the small preset's clips (2 clips of 6-8 frames, 64x64) and meshes, no
  voices and no photos: more identities for CEST's encoders within a CPU build (build it with a seed other than
  the world CEST is evaluated on, so no evaluated person is trained on).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError


@dataclass(frozen=True)
class Preset:
    """Size and recording conditions of a world.

    Attributes:
        name: preset name.
        identities: number of people.  utterances, images or clips may be 0 (a world without that modality).
        split: (train, val, test) identity counts; they must sum to ``identities``.
        utterances: voice recordings per person.  sessions: recording sessions per person (utterances are spread
            over them; a session fixes level, channel, room and noise).
        duration_s: (min, max) utterance length in seconds (uniform).
        snr_db: (min, max) background noise SNR (uniform per session).  rt60_s: (min, max) reverberation time.
        images: aligned still photos per person.  render_size: side of the rendered photo before alignment.
        clips: video clips per person.  clip_frames: (min, max) frames per clip.  clip_size: clip frame side.
        age_cue: how closely the voice's speaking rate follows age, in [0, 1] (``voices._rate_deviation``): 1 in
            the presets with voices, so that voices carry the age the faces show; ``sim build ... age_cue=0``
            gives voices that age only through the realistic, finer cues, which DIMNet cannot hear.
    """

    name: str
    identities: int
    split: tuple[int, int, int]
    utterances: int
    sessions: int
    duration_s: tuple[float, float]
    snr_db: tuple[float, float]
    rt60_s: tuple[float, float]
    images: int
    render_size: int
    clips: int
    clip_frames: tuple[int, int]
    clip_size: int
    age_cue: float = 0.0

    def __post_init__(self):
        if sum(self.split) != self.identities:
            raise ConfigError(f"preset {self.name}: split {self.split} does not sum to {self.identities} identities")
        if not 2.0 <= self.duration_s[0] <= self.duration_s[1] <= 12.0:
            raise ConfigError(f"preset {self.name}: utterance durations must lie in 2-12 s, got {self.duration_s}")
        if not 4 <= self.clip_frames[0] <= self.clip_frames[1] <= 16:
            raise ConfigError(f"preset {self.name}: clips have 4-16 frames, got {self.clip_frames}")
        if not 0.0 <= self.age_cue <= 1.0:
            raise ConfigError(f"preset {self.name}: age_cue must be in [0, 1], got {self.age_cue}")


PRESETS: dict[str, Preset] = {
    "tiny": Preset("tiny", identities=24, split=(16, 4, 4), utterances=3, sessions=2, duration_s=(2.0, 3.0),
                   snr_db=(20.0, 40.0), rt60_s=(0.0, 0.4), images=3, render_size=112, clips=1, clip_frames=(4, 6),
                   clip_size=64, age_cue=1.0),
    "small": Preset("small", identities=240, split=(180, 24, 36), utterances=8, sessions=3, duration_s=(3.5, 7.0),
                    snr_db=(20.0, 40.0), rt60_s=(0.0, 0.35), images=10, render_size=160, clips=2, clip_frames=(6, 8),
                    clip_size=64, age_cue=1.0),
    "paper": Preset("paper", identities=1225, split=(924, 112, 189), utterances=6, sessions=3,
                    duration_s=(3.0, 10.0), snr_db=(10.0, 40.0), rt60_s=(0.0, 0.6), images=8, render_size=208,
                    clips=2, clip_frames=(8, 16), clip_size=128, age_cue=1.0),
    "video": Preset("video", identities=1200, split=(1140, 24, 36), utterances=0, sessions=1,
                    duration_s=(3.5, 7.0), snr_db=(20.0, 40.0), rt60_s=(0.0, 0.35), images=0, render_size=160,
                    clips=2, clip_frames=(6, 8), clip_size=64),
}


def get_preset(preset: str | Preset) -> Preset:
    """A preset by name (``tiny``, ``small``, ``paper``, ``video``) or the given ``Preset``."""
    if isinstance(preset, Preset):
        return preset
    if preset not in PRESETS:
        raise ConfigError(f"unknown world preset '{preset}' (known: {', '.join(PRESETS)})")
    return PRESETS[preset]
