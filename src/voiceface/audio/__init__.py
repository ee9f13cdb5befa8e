"""Audio front end (thesis preprocessing): loading and resampling (``io``), the authors' WebRTC VAD (``vad``),
the Sphinx-style 64-band log mel + CMVN (``features``) and the cached parallel batch extractor (``batch``)."""
from .batch import ExtractionResult, extract_manifest, load_cached_features
from .features import LogMelConfig, cmvn, extract_features, logmel, mel_filterbank
from .io import SAMPLE_RATE, load_audio, resample, to_float32, to_int16
from .vad import speech_segments, vad

__all__ = ["SAMPLE_RATE", "ExtractionResult", "LogMelConfig", "cmvn", "extract_features", "extract_manifest",
           "load_audio", "load_cached_features", "logmel", "mel_filterbank", "resample", "speech_segments",
           "to_float32", "to_int16", "vad"]
