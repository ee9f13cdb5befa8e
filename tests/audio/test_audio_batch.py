"""Batch extraction: parallel, cached, resumable, one bad file reported and skipped."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from voiceface.audio import extract_features, extract_manifest, load_cached_features
from voiceface.audio.batch import cache_path
from voiceface.data.manifest import Item, Manifest
from voiceface.errors import InputError


@pytest.fixture()
def files(tmp_path, voxceleb1_samples):
    good = []
    for name in ("Bingbing_Li", "Alan_Tudyk"):
        dst = tmp_path / "in" / name / "00001.wav"  # same stem in two folders: cache names must not collide
        dst.parent.mkdir(parents=True)
        shutil.copy(voxceleb1_samples / f"{name}.wav", dst)
        good.append(dst)
    corrupt = tmp_path / "in" / "corrupt.wav"
    corrupt.write_bytes(b"not audio at all" * 50)
    silent = tmp_path / "in" / "silent.flac"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    return good, corrupt, silent


def test_bad_files_are_reported_and_skipped_then_resumed(tmp_path, files):
    good, corrupt, silent = files
    cache = tmp_path / "cache"
    inputs = [good[0], corrupt, good[1], silent]
    res = extract_manifest(inputs, cache, workers=2, progress=False)
    assert set(res.paths) == {str(p) for p in good}
    assert [f[0] for f in res.failures] == [str(corrupt), str(silent)]
    assert "cannot decode audio" in res.failures[0][1] and str(corrupt) in res.failures[0][1]
    assert res.failures[1][1] == f"{silent}: no speech found by the VAD"
    assert res.computed == 2 and res.reused == 0
    assert len({p.name for p in res.paths.values()}) == 2
    for src, out in res.paths.items():
        assert np.array_equal(np.load(out), extract_features(src))
    assert not list(cache.glob("*.tmp")) and not list(cache.glob(".*"))

    stamps = {p: p.stat().st_mtime_ns for p in res.paths.values()}
    res.paths[str(good[1])].unlink()  # as if the first run was killed before this file
    again = extract_manifest(inputs, cache, workers=1, progress=False)
    assert again.reused == 1 and again.computed == 1 and len(again.failures) == 2
    kept = again.paths[str(good[0])]
    assert kept.stat().st_mtime_ns == stamps[kept]  # cached array reused, not rewritten


def test_manifest_voice_items_only(tmp_path, files):
    good, _, _ = files
    items = Manifest([Item(path=str(good[0]), modality="voice", identity="a"),
                      Item(path=str(tmp_path / "face.png"), modality="face", identity="a")])
    res = extract_manifest(items, tmp_path / "cache", workers=1, progress=False)
    assert list(res.paths) == [str(good[0])] and not res.failures


def test_load_cached_features_extracts_once(tmp_path, files):
    good, corrupt, _ = files
    cache = tmp_path / "cache"
    feat = load_cached_features(good[0], cache)
    assert feat.dtype == np.float32 and feat.shape[1] == 64
    assert cache_path(good[0], cache).is_file()
    assert np.array_equal(load_cached_features(good[0], cache), feat)
    assert cache_path(good[0], cache, standard=True) != cache_path(good[0], cache)
    with pytest.raises(InputError) as e:
        load_cached_features(corrupt, cache)
    assert str(e.value).startswith(str(corrupt)) and str(e.value).count(str(corrupt)) == 1
